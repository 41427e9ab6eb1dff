/**
 * The BUILT CLI (bin/sealkeeper -> dist/) as a real child process: signals, closed pipes and dead terminals need a
 * real process, not the in-process runner. Output is captured; tests wait on lines of it, never on a clock.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { assertNoSecretPrinted } from "./run-cli.js";

export const REPO_ROOT = join(import.meta.dirname, "..", "..");
export const BIN = join(REPO_ROOT, "bin", "sealkeeper");

export interface ChildRun {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stderr matches (rejects after timeoutMs, with what stderr held). */
  waitForStderr(re: RegExp, timeoutMs?: number): Promise<void>;
  /** The exit: code, or the signal that ended it. Runs the suite-wide secret scan on the output. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** Environment for a child run: PATH only, plus what the test gives (HOME, NO_COLOR...). */
export function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, NO_COLOR: "1", AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true", ...extra };
}

export function spawnCli(args: string[], opts: { env: Record<string, string>; cwd?: string }): ChildRun {
  if (!existsSync(join(REPO_ROOT, "dist", "bundle", "sealkeeper.cjs")))
    throw new Error("dist/ is missing: npm run build");
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const waiters: (() => void)[] = [];
  child.stdout!.on("data", (c: Buffer) => {
    out += c.toString("utf8");
  });
  child.stderr!.on("data", (c: Buffer) => {
    err += c.toString("utf8");
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.on("close", (code, signal) => {
        for (const w of [...waiters]) w();
        assertNoSecretPrinted(args, { stdout: out, stderr: err });
        resolve({ code, signal, stdout: out, stderr: err });
      });
    },
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForStderr(re, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (re.test(err)) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            resolve();
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            waiters.splice(waiters.indexOf(check), 1);
            reject(new Error(`the CLI exited before stderr matched ${re}:\n${err}`));
          }
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`stderr did not match ${re} within ${timeoutMs} ms:\n${err}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    exited,
  };
}

/** Polls `cond` until it holds (every 100 ms, up to timeoutMs): waiting on observable state. */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
