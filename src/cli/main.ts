import { Command, CommanderError } from "commander";
import { ExitCode, SealkeeperError, VaultConnectionError, VaultHttpError } from "../errors.js";
import { deferredExitCode, deferredSignal } from "../util/critical-section.js";
import { redactSecrets } from "../util/redact.js";
import { VERSION } from "../version.js";
import { registerCommands } from "./commands/index.js";
import { ExitWith } from "./exit.js";
import type { CliIO } from "./io.js";
import { refuseSecretPaths } from "./options.js";
import { paint, useColor } from "./output.js";

/**
 * Runs the CLI in-process and returns the exit code. The only place that maps errors to exit codes:
 * 0 ok, 1 local/usage error, 2 remote error (or, for status-like commands, sealed).
 */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const program = new Command()
    .name("sealkeeper")
    .description("Take a Vault or OpenBao cluster from first boot to unsealed, least-privilege and root-revoked.")
    .version(VERSION, "-v, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    });
  registerCommands(program, io, argv);
  for (const cmd of program.commands) applyEdge(cmd, io);
  // a share or key given where a path goes is refused before any command reads it, naming the flag only
  program.hook("preAction", (_program, action) => refuseSecretPaths(action, io));

  let code: number;
  try {
    await program.parseAsync(argv, { from: "user" });
    code = ExitCode.ok;
  } catch (err) {
    code = reportError(err, io);
    if (jsonRequested(argv, io)) writeErrorDocument(err, code, io);
  }
  return afterDeferredSignal(code, io);
}

/**
 * Whether the run asked for machine output: `--format json` / `--format=json` on the line, else BAO_FORMAT or
 * VAULT_FORMAT. Read from argv rather than from the command's parsed options, so that a failure before the command
 * ran (a missing required flag, an unknown option) is reported in JSON too.
 */
export function jsonRequested(argv: string[], io: Pick<CliIO, "env">): boolean {
  for (let i = argv.length - 1; i >= 0; i--) {
    const a = argv[i]!;
    if (a === "--") continue;
    if (a.startsWith("--format=")) return a.slice("--format=".length) === "json";
    if (a === "--format") return argv[i + 1] === "json";
  }
  return (io.env.BAO_FORMAT ?? io.env.VAULT_FORMAT) === "json";
}

/** A stable word for the kind of failure, for scripts: usage, server, connection, interrupted, error. */
function errorCodeOf(err: unknown, exit: number): string {
  if (exit >= 128) return "interrupted";
  if (err instanceof CommanderError) return "usage";
  if (err instanceof VaultHttpError || (err instanceof Error && err.cause instanceof VaultHttpError)) return "server";
  if (err instanceof VaultConnectionError || (err instanceof Error && err.cause instanceof VaultConnectionError))
    return "connection";
  if (err instanceof SealkeeperError && err.name === "UsageError") return "usage";
  return "error";
}

/**
 * With `--format json`, a failure still prints one JSON document on stdout (the human line stays on stderr), so a
 * pipeline that parses stdout never reads an empty string: { error: { code, message, exitCode, hint?, step?,
 * applied?, total?, status? } }. A command that printed its own result before choosing its exit code (ExitWith, e.g.
 * verify's report with excess rights) and help/version print nothing more.
 */
function writeErrorDocument(err: unknown, exit: number, io: CliIO): void {
  if (err instanceof ExitWith || exit === ExitCode.ok) return;
  const message =
    err instanceof SealkeeperError
      ? err.message
      : err instanceof CommanderError
        ? err.message.replace(/^error: /, "")
        : redactSecrets(err instanceof Error ? err.message : String(err));
  const doc: Record<string, unknown> = { code: errorCodeOf(err, exit), message, exitCode: exit };
  if (err instanceof SealkeeperError) {
    if (err.hint) doc.hint = err.hint;
    if (err.progress) Object.assign(doc, err.progress);
    const http = err instanceof VaultHttpError ? err : err.cause instanceof VaultHttpError ? err.cause : undefined;
    if (http) doc.status = http.status;
  }
  try {
    io.stdout.write(`${JSON.stringify({ error: doc }, null, 2)}\n`);
  } catch {
    // stdout may be gone (a closed pipe): the exit code still says it
  }
}

/**
 * A signal deferred by a critical section (src/util/critical-section.ts) ends the run with 128 + its number once the
 * step is done, whatever the command's own outcome was; the command's code is kept in the message.
 */
function afterDeferredSignal(code: number, io: CliIO): number {
  const sig = deferredSignal();
  const signalCode = deferredExitCode();
  if (!sig || signalCode === undefined) return code;
  io.stderr.write(
    `sealkeeper: stopped after ${sig} (deferred until the step was done; it ${code === 0 ? "succeeded" : `ended with code ${code}`}): exit ${signalCode}\n`,
  );
  return signalCode;
}

function applyEdge(cmd: Command, io: CliIO): void {
  cmd.exitOverride().configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) });
  for (const sub of cmd.commands) applyEdge(sub, io);
}

function reportError(err: unknown, io: CliIO): number {
  if (err instanceof ExitWith) return err.code;
  if (err instanceof CommanderError) {
    // help and version "errors" are successful exits; commander already printed its usage message
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.error;
  }
  const p = paint(useColor(io, "stderr"));
  if (err instanceof SealkeeperError) {
    io.stderr.write(`${p.red("error:")} ${err.message}\n`);
    if (err.hint) io.stderr.write(`${p.dim("hint:")} ${err.hint}\n`);
    return err.exitCode;
  }
  // An unexpected failure: one line, no stack (which might hold values), unless debugging was asked for.
  // not ours, so neither cut nor escaped yet: a library's message may quote a value
  const message = redactSecrets(err instanceof Error ? err.message : String(err));
  io.stderr.write(`${p.red("error:")} unexpected failure: ${message}\n`);
  if (io.env.SEALKEEPER_DEBUG === "1" && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return ExitCode.error;
}
