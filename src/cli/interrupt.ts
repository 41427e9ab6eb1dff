import type { Interrupted } from "../ceremony/quorum.js";
import { ExitWith } from "./exit.js";
import type { CliIO } from "./io.js";

/**
 * Ends a ceremony whose share prompt was interrupted (Ctrl-C, Ctrl-D, a signal), after its report was printed: one
 * line saying what stopped it and how many shares this run gave, the ceremony's own lines (what the server holds,
 * the exact commands to go on or to cancel), then the interrupt's exit code (130 Ctrl-C/Ctrl-D, 143 SIGTERM,
 * 129 SIGHUP).
 */
export function endInterrupted(io: CliIO, it: Interrupted, lines: string[]): never {
  io.stderr.write(
    `stopped by ${it.said} at the share prompt, after ${it.sharesGiven} share(s) given in this run\n${lines.map((l) => `${l}\n`).join("")}`,
  );
  throw new ExitWith(it.exitCode);
}

/** A command line to show: each argument quoted when the shell would need it. */
export function commandLine(args: string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}
