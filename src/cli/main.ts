import { Command, CommanderError } from "commander";
import { ExitCode, SealkeeperError } from "../errors.js";
import { VERSION } from "../version.js";
import { registerCommands } from "./commands/index.js";
import { ExitWith } from "./exit.js";
import type { CliIO } from "./io.js";
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
  registerCommands(program, io);
  for (const cmd of program.commands) applyEdge(cmd, io);

  try {
    await program.parseAsync(argv, { from: "user" });
    return ExitCode.ok;
  } catch (err) {
    return reportError(err, io);
  }
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
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`${p.red("error:")} unexpected failure: ${message}\n`);
  if (io.env.SEALKEEPER_DEBUG === "1" && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
  return ExitCode.error;
}
