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
  const run = { code, stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") };
  assertNoSecretPrinted(argv, run);
  return run;
}

/**
 * Suite-wide secret scan: every CLI run of every test goes through here, and none may print something shaped like a
 * root token (Vault's `hvs.` tokens, and the legacy `s.` + 24 characters that OpenBao 2.6 hands out by default) or an unseal share (66 hex digits, or its 44-character base64) unless the run
 * asked for it: `--print-root-token` / `--print-token`, or the offline `shamir` tool whose job is to print shares.
 * (test/integration/secret-scan.test.ts checks exact known secrets, files included, for one whole ceremony.)
 */
export function assertNoSecretPrinted(argv: string[], run: { stdout: string; stderr: string }): void {
  const text = `${run.stdout}\n${run.stderr}`;
  const asked = argv.includes("--print-root-token") || argv.includes("--print-token");
  if (
    !asked &&
    (/\bhvs\.[A-Za-z0-9_-]{20,}/.test(text) || /(?<![A-Za-z0-9._-])s\.[A-Za-z0-9]{24}(?![A-Za-z0-9])/.test(text))
  ) {
    throw new Error(`secret scan: \`sealkeeper ${argv.join(" ")}\` printed something shaped like a root token`);
  }
  if (argv[0] !== "shamir" && /(?<![0-9a-fA-F])[0-9a-fA-F]{66}(?![0-9a-fA-F])/.test(text)) {
    throw new Error(`secret scan: \`sealkeeper ${argv.join(" ")}\` printed something shaped like an unseal share`);
  }
}
