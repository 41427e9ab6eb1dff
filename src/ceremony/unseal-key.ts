import { UsageError } from "../errors.js";
import { decodeShare } from "../shamir/encoding.js";
import { ShamirError } from "../shamir/errors.js";
import { SHARE_BYTES } from "../store/share-text.js";
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
 * Parses a share as the server would (hex first, else base64) and checks what can be checked without the server: its
 * length (33 bytes for a Shamir share, or the bare 16..32-byte key when the cluster was initialised with one share)
 * and, for a Shamir share, its x-coordinate (the last byte; 00 is never a share).
 * @throws UsageError naming the origin and what was seen (an empty line, spaces inside, two shares), never the share.
 */
export function parseKeyShare(text: string, origin: string, operator?: string): KeyShare {
  const seen = notAShare(text);
  if (seen) throw new UsageError(`the share from ${origin} ${seen}: nothing was sent`);
  let bytes: Uint8Array;
  try {
    bytes = decodeShare(text, { label: `the share from ${origin}` });
  } catch (err) {
    if (err instanceof ShamirError) throw new UsageError(`${err.message} (expected a hex or base64 unseal share)`);
    throw err;
  }
  if (bytes.length < 16 || bytes.length > SHARE_BYTES) {
    throw new UsageError(
      `the share from ${origin} is ${bytes.length} bytes; an unseal share is 33 bytes (or the 16-32-byte key itself when there is one share)`,
    );
  }
  if (bytes.length === SHARE_BYTES && bytes[SHARE_BYTES - 1] === 0) {
    bytes.fill(0);
    throw new UsageError(
      `the share from ${origin} has x-coordinate 00 (its last byte), which no share has: it is mistyped; nothing was sent`,
    );
  }
  return { bytes, hex: Buffer.from(bytes).toString("hex"), fingerprint: fingerprintShare(bytes), operator, origin };
}

/** What makes `text` plainly not one share, said without quoting it; undefined when it may be one. */
function notAShare(text: string): string | undefined {
  const t = text.trim();
  if (t === "") return "is empty (an empty line)";
  const lines = t.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length > 1) {
    return `holds ${lines.length} lines (${lines.length} shares in one file?): give one share per file or line`;
  }
  const words = t.split(/\s+/);
  if (words.length > 1) {
    return words.every((w) => /^[0-9a-fA-F]{66}$/.test(w) || /^[A-Za-z0-9+/]{43}=$/.test(w))
      ? `holds ${words.length} shares on one line: give one share per line`
      : `has ${words.length - 1} space(s) inside (a share is one word of hex or base64)`;
  }
  if (/^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 1) {
    return `is ${t.length} hex digits, an odd number: a digit was dropped or added`;
  }
  return undefined;
}
