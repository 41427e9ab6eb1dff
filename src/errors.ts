/**
 * The error types every layer throws. Only src/cli/ turns them into exit codes and one line of text.
 * Messages are short, lowercase, name the bad value, and never contain a secret.
 */

import { escapeControl } from "./util/redact.js";

/**
 * Exit codes follow Vault's CLI: 0 ok, 1 local or usage error, 2 remote error or sealed. bootstrap plan/apply/verify
 * narrow 2 to `drift` (changes pending, excess rights) and report every error as 1 (docs/bootstrap.md, "Exit codes").
 */
export const ExitCode = { ok: 0, error: 1, remote: 2, drift: 2 } as const;

/** Base class: `exitCode` tells the CLI how to exit; `hint` is an optional second line telling the user what to do. */
export class SealkeeperError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** How far the command got when it failed (for the JSON error document): e.g. { step, applied, total }. */
  readonly progress: ErrorProgress | undefined;
  constructor(
    message: string,
    opts: { cause?: unknown; exitCode?: number; hint?: string; progress?: ErrorProgress } = {},
  ) {
    // a value quoted in a message (from a file, a prompt, the environment, a server) may carry control characters
    super(escapeControl(message), opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? ExitCode.error;
    this.hint = opts.hint === undefined ? undefined : escapeControl(opts.hint);
    this.progress = opts.progress;
  }
}

/** Where a long command stood when it stopped: the step it was on and how many of its steps were done. */
export interface ErrorProgress {
  step?: string;
  applied?: number;
  total?: number;
}

/**
 * The same error with another exit code (and optionally another hint): for commands whose exit codes mean something
 * narrower than Vault's, e.g. bootstrap plan/apply/verify, where 2 means "drift" only and a server's refusal is 1.
 */
export function withExitCode(err: SealkeeperError, exitCode: number): SealkeeperError {
  if (err.exitCode === exitCode) return err;
  const copy = new SealkeeperError(err.message, { cause: err, exitCode, hint: err.hint, progress: err.progress });
  copy.name = err.name;
  return copy;
}

/** Bad flags, bad files, bad input: the user's to fix. Exit 1. */
export class UsageError extends SealkeeperError {}

/** The server answered with an error status. Carries the status and the server's own `errors[]`. Exit 2. */
export class VaultHttpError extends SealkeeperError {
  readonly status: number;
  readonly errors: string[];
  readonly address: string;
  readonly path: string;
  constructor(address: string, method: string, path: string, status: number, errors: string[]) {
    const detail = errors.length > 0 ? errors.join("; ") : "no error message";
    super(`${method} ${path} on ${address}: ${status} ${detail}`, { exitCode: ExitCode.remote });
    this.status = status;
    this.errors = errors;
    this.address = address;
    this.path = path;
  }
}

/** The server could not be reached or did not speak the Vault API (refused, DNS, TLS, timeout, garbage). Exit 1. */
export class VaultConnectionError extends SealkeeperError {
  readonly address: string;
  /** A stable reason code: refused, dns, timeout, tls, protocol, reset, redirect, other. */
  readonly reason: string;
  /**
   * Whether the whole request had been handed to a connected socket when the connection failed: false means the
   * server never got it (refused, name or TLS failure, a timeout while connecting, a redirect: not processed there);
   * true means it may have acted on it and its answer is unknown.
   */
  requestSent = false;
  constructor(address: string, reason: string, message: string, opts: { cause?: unknown; hint?: string } = {}) {
    super(message, { ...opts, exitCode: ExitCode.error });
    this.address = address;
    this.reason = reason;
  }
}

/** Render an error as one line for a person: the message, and the first cause's message when it adds something. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
