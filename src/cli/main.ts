import { Command, CommanderError } from "commander";
import { ExitCode, SealkeeperError } from "../errors.js";
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
  }
  return afterDeferredSignal(code, io);
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
