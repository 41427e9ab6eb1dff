/**
 * A child process's stdout and stderr into one log file. Both pipes write to the same stream, so neither may end it
 * (the default of pipe()): when stdout closed first, the server's last stderr lines were written after the end
 * (ERR_STREAM_WRITE_AFTER_END, an unhandled error that failed a CI run in ceremony.test.ts after a node restart).
 * The log ends once the process has closed both pipes. The file is opened before this returns (a stream opens its
 * path asynchronously: a caller that read the log right after spawning got ENOENT, CI's eso-chain.test.ts).
 */
import type { ChildProcess } from "node:child_process";
import { createWriteStream, openSync } from "node:fs";

export function logChildOutput(proc: ChildProcess, logPath: string): void {
  const log = createWriteStream("", { fd: openSync(logPath, "a") });
  proc.stdout?.pipe(log, { end: false });
  proc.stderr?.pipe(log, { end: false });
  proc.once("close", () => log.end());
}
