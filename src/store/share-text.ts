/**
 * The plaintext inside a sealed share file: the share as a hex string, the form /sys/unseal accepts and the one Vault
 * itself encrypts under pgp_keys. Messages never repeat the input: it may be a share.
 */
import { createHash, randomBytes } from "node:crypto";
import { UsageError } from "../errors.js";

/** Vault's shares: the 32-byte root key plus one byte, the x coordinate (vault/shamir: out[idx][len(secret)] = x). */
export const SHARE_BYTES = 33;
/** With a single share Vault hands out the 32-byte root key itself, not a Shamir share (vault/init.go). */
export const SINGLE_KEY_BYTES = 32;

/**
 * Decodes and checks a share's plaintext (surrounding whitespace ignored).
 * @param keyShares the ceremony's number of shares when known: 1 expects the 32-byte key, more expects 33 bytes;
 *   unknown accepts either.
 * @returns the raw share bytes.
 * @throws UsageError saying what is wrong (length, not hex) without repeating the input.
 */
export function decodeShareText(plaintext: Uint8Array | string, keyShares?: number): Uint8Array {
  const text = (typeof plaintext === "string" ? plaintext : new TextDecoder().decode(plaintext)).trim();
  if (!/^[0-9a-fA-F]*$/.test(text) || text.length % 2 !== 0) {
    throw new UsageError(`not a well-formed share: expected a hex string, got ${text.length} characters that are not`);
  }
  const bytes = Uint8Array.from(Buffer.from(text, "hex"));
  const expected =
    keyShares === undefined ? [SHARE_BYTES, SINGLE_KEY_BYTES] : keyShares === 1 ? [SINGLE_KEY_BYTES] : [SHARE_BYTES];
  if (!expected.includes(bytes.length)) {
    throw new UsageError(
      `not a well-formed share: expected ${expected.map((n) => `${n} bytes (${2 * n} hex digits)`).join(" or ")}, got ${bytes.length} bytes`,
    );
  }
  if (bytes.length === SHARE_BYTES && bytes[SHARE_BYTES - 1] === 0) {
    throw new UsageError("not a well-formed share: its x coordinate (last byte) is 0");
  }
  return bytes;
}

/** The share's x coordinate (Vault appends it as the last byte), or null for a single-share root key. */
export function shareIndexOf(share: Uint8Array): number | null {
  return share.length === SHARE_BYTES ? share[SHARE_BYTES - 1]! : null;
}

/** A fresh random salt for a manifest's share digests: 32 bytes, hex. */
export function createDigestSalt(): string {
  return randomBytes(32).toString("hex");
}

/**
 * The manifest's digest of a share: hex SHA-256 over salt || share bytes. It identifies a share without revealing it
 * (a 33-byte random share cannot be guessed anyway; the per-manifest salt keeps digests from matching across
 * ceremonies).
 */
export function computeShareDigest(saltHex: string, share: Uint8Array): string {
  return createHash("sha256").update(Buffer.from(saltHex, "hex")).update(share).digest("hex");
}

/** Hex SHA-256 of a file's exact bytes, as recorded in the manifest. */
export function sha256Hex(content: string | Uint8Array): string {
  return createHash("sha256").update(content).digest("hex");
}
