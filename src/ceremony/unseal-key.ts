import { UsageError } from "../errors.js";
import { decodeShare } from "../shamir/encoding.js";
import { ShamirError } from "../shamir/errors.js";
import { fingerprintShare } from "./transcript.js";

/** One key share as a ceremony holds it: bytes, the hex form the server accepts, and a public fingerprint. */
export interface KeyShare {
  bytes: Uint8Array;
  hex: string;
  fingerprint: string;
  /** Operator name when known (from a manifest or a file name). */
  operator?: string;
  /** Where it came from, for messages: "file alice.asc", "stdin line 2", "prompt". Never the share. */
  origin: string;
}

/**
 * Parses a share as the server would (hex first, else base64) and checks its length: 33 bytes for a Shamir share
 * (32 y-bytes and the x-byte), or the bare 16..32-byte key when the cluster was initialised with one share.
 * @throws UsageError naming the origin, never the share.
 */
export function parseKeyShare(text: string, origin: string, operator?: string): KeyShare {
  let bytes: Uint8Array;
  try {
    bytes = decodeShare(text, { label: `the share from ${origin}` });
  } catch (err) {
    if (err instanceof ShamirError) throw new UsageError(`${err.message} (expected a hex or base64 unseal share)`);
    throw err;
  }
  if (bytes.length < 16 || bytes.length > 33) {
    throw new UsageError(
      `the share from ${origin} is ${bytes.length} bytes; an unseal share is 33 bytes (or the 16-32-byte key itself when there is one share)`,
    );
  }
  return { bytes, hex: Buffer.from(bytes).toString("hex"), fingerprint: fingerprintShare(bytes), operator, origin };
}
