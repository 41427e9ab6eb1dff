import { PassThrough, Readable } from "node:stream";
import type { CliIO } from "../../src/cli/io.js";
import { runCli } from "../../src/cli/main.js";

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured output. stdin: text/bytes piped in (stdin is then not a TTY). */
export async function runSealkeeper(
  argv: string[],
  opts: { env?: Record<string, string | undefined>; stdin?: string | Buffer; stdoutIsTTY?: boolean; cwd?: string } = {},
): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (c: Buffer) => out.push(c));
  stderr.on("data", (c: Buffer) => err.push(c));
  const io: CliIO = {
    stdout,
    stderr,
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    env: { HOME: "/nonexistent", NO_COLOR: "1", ...opts.env },
    stdinIsTTY: false,
    stdoutIsTTY: opts.stdoutIsTTY ?? false,
    stderrIsTTY: false,
    cwd: opts.cwd ?? process.cwd(),
  };
  const code = await runCli(argv, io);
  return { code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
}
