import { SealkeeperError } from "../errors.js";

/**
 * The ceremony output directory cannot be used or written: not writable, already holds a ceremony, a file exists and
 * would be overwritten, a manifest is invalid. Exit 1. Carries the errno code when one caused it.
 */
export class StoreError extends SealkeeperError {
  readonly code: string | undefined;
  constructor(message: string, opts: { cause?: unknown; hint?: string; code?: string } = {}) {
    super(message, opts);
    this.code = opts.code ?? (opts.cause as NodeJS.ErrnoException | undefined)?.code;
  }
}

/** The errno code of a Node fs error ("EACCES"), or "error". */
export function errnoCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? "error";
}
