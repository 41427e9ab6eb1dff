/**
 * A child process's stdout and stderr into one log file. Both pipes write to the same stream, so neither may end it
 * (the default of pipe()): when stdout closed first, the server's last stderr lines were written after the end
 * (ERR_STREAM_WRITE_AFTER_END, an unhandled error that failed a CI run in ceremony.test.ts after a node restart).
 * The log ends once the process has closed both pipes.
 */
import type { ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";

export function logChildOutput(proc: ChildProcess, logPath: string): void {
  const log = createWriteStream(logPath, { flags: "a" });
  proc.stdout?.pipe(log, { end: false });
  proc.stderr?.pipe(log, { end: false });
  proc.once("close", () => log.end());
}
