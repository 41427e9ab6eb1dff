import { spawn } from "node:child_process";
import { assertNoSecretPrinted } from "./run-cli.js";

export interface ProcessRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a built sealkeeper (an executable, or `npx sealkeeper`) as a real process: stdin written and closed, output
 * captured, and the suite-wide secret scan applied to `argv` (the sealkeeper arguments, without the command prefix).
 */
export function spawnSealkeeper(
  command: string,
  prefix: string[],
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; stdin?: string },
): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...prefix, ...argv], {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => err.push(c));
    child.on("error", reject);
    child.on("close", (code) => {
      const r = { code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
      try {
        assertNoSecretPrinted(argv, r);
        resolve(r);
      } catch (e) {
        reject(e);
      }
    });
    child.stdin.end(opts.stdin ?? "");
  });
}
