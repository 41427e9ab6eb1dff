import { type Readable, Writable } from "node:stream";
import { isatty } from "node:tty";
import type { Env } from "../vault/env.js";

/** Everything a command may touch of the outside world. Injected, so tests run the CLI in-process. */
export interface CliIO {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
  env: Env;
  stdinIsTTY: boolean;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  cwd: string;
}

export function processIO(): CliIO {
  return {
    stdout: lossTolerant(process.stdout),
    stderr: lossTolerant(process.stderr),
    // process.stdin is built on first access (a ReadStream or socket, about 4 ms here): only commands that read
    // stdin pay for it; whether it is a terminal is asked of the descriptor
    get stdin() {
      return process.stdin;
    },
    env: process.env,
    stdinIsTTY: isatty(0),
    stdoutIsTTY: Boolean(process.stdout.isTTY),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    cwd: process.cwd(),
  };
}

/** Read all of stdin as bytes (empty when stdin is a terminal: we never block waiting on a person here). */
export async function readAllStdin(io: CliIO): Promise<Buffer> {
  if (io.stdinIsTTY) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of io.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * The output layer of a real run: a stream that forwards to `target` until writing to it fails once (EPIPE when the
 * reader went away, `| head -c 1`; EIO when the terminal of a dead ssh session is gone; a destroyed stream), and from
 * then on swallows every write for the rest of the run. A lost terminal must never interrupt a ceremony that is
 * writing sealed files: output is for people, the files are what matters. The target's own 'error' events are
 * swallowed too (unhandled, they would end the process), also for code that writes to process.stdout directly.
 */
export function lossTolerant(target: Writable): Writable {
  let lost = false;
  const markLost = () => {
    lost = true;
  };
  target.on("error", markLost);
  return new Writable({
    write(chunk, _encoding, callback) {
      if (!lost && !target.destroyed && target.writable) {
        try {
          target.write(chunk, (err) => {
            if (err) markLost();
          });
        } catch {
          markLost();
        }
      }
      callback();
    },
  });
}
