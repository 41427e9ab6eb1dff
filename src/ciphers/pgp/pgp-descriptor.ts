import { asText, decodeBase64OrHex, firstPacketTag, leadingText } from "../sniff.js";
import type { CipherDescriptor } from "../types.js";

/** Packet tags: 1 public-key encrypted session key, 3 symmetric-key encrypted session key, 5 secret key. */
const SESSION_KEY_TAGS = new Set([1, 3]);
const SECRET_KEY_TAG = 5;
/**
 * A base64/hex blob shorter than this cannot be a PGP message (the smallest PKESK + SEIPD is well over 100 bytes);
 * a plaintext share is 33 bytes (32 with one share), so its hex or base64 form is never taken for a sealed one.
 */
const MIN_MESSAGE_BYTES = 64;

/** OpenPGP: keys made by GnuPG (v4, RSA or cv25519), messages in the form Vault's own pgp_keys produce. */
export const pgpDescriptor: CipherDescriptor = {
  type: "pgp",
  label: "OpenPGP",
  fileExtension: ".asc",
  specForms: ["pgp:FILE"],
  classifySpecValue(value) {
    if (value.trim() === "") return { error: "pgp recipient needs a public key file: pgp:FILE" };
    if (value.startsWith("keybase:"))
      return { error: `keybase lookups are not supported ("${value}"): export the key to a file` };
    return "file";
  },
  looksSealed(sealed) {
    if (leadingText(sealed).startsWith("-----BEGIN PGP MESSAGE-----")) return true;
    const tag = firstPacketTag(sealed);
    if (tag !== null) return SESSION_KEY_TAGS.has(tag);
    // Vault returns server-sealed shares as base64 (keys_base64) and hex (keys) of the binary message
    const decoded = decodeBase64OrHex(asText(sealed));
    if (decoded === null || decoded.length < MIN_MESSAGE_BYTES) return false;
    const decodedTag = firstPacketTag(decoded);
    return decodedTag !== null && SESSION_KEY_TAGS.has(decodedTag);
  },
  looksLikeIdentity(identity) {
    if (leadingText(identity).startsWith("-----BEGIN PGP PRIVATE KEY BLOCK-----")) return true;
    return firstPacketTag(identity) === SECRET_KEY_TAG;
  },
};
