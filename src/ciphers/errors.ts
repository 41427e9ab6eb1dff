import { UsageError } from "../errors.js";

/**
 * A recipient spec or key that sealkeeper refuses: bad syntax, unreadable file, a key that cannot encrypt (expired,
 * revoked, sign-only, v6). Raised BEFORE any irreversible server call, so nothing is lost. Exit 1.
 */
export class RecipientError extends UsageError {}

/** Why a sealed share addressed to this identity could not be opened. */
export type OpenShareFailure =
  /** The identity is protected and no passphrase was given: the caller may ask for one and try again. */
  | "passphrase-required"
  /** The passphrase does not unlock the identity. */
  | "wrong-passphrase"
  /** The sealed share is addressed to this identity but is damaged or not in a form we accept. */
  | "corrupt"
  /** The identity file itself cannot be read or parsed. */
  | "bad-identity";

/**
 * Thrown by a ShareOpener when a sealed share IS addressed to the identity but cannot be opened (or the identity is
 * unusable). Never thrown for "not addressed to me": that is a `null` result. Exit 1.
 */
export class OpenShareError extends UsageError {
  readonly reason: OpenShareFailure;
  constructor(reason: OpenShareFailure, message: string, opts: { cause?: unknown; hint?: string } = {}) {
    super(message, opts);
    this.reason = reason;
  }
}
