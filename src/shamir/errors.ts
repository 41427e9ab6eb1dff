import { SealkeeperError } from "../errors.js";

/**
 * Bad input to split, combine or verify. `shareIndex` (1-based, in the order the shares were given) names the share at
 * fault when there is one, so the CLI can point at its file and line. Messages never contain share or secret bytes.
 */
export class ShamirError extends SealkeeperError {
  readonly shareIndex: number | undefined;
  constructor(message: string, opts: { shareIndex?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts);
    this.shareIndex = opts.shareIndex;
  }
}
