/** Cheap byte-level sniffing shared by the descriptors. No crypto library is loaded here. */

const decoder = new TextDecoder("utf-8", { fatal: false });

/** The bytes as text with leading whitespace removed (only the first `max` bytes are looked at). */
export function leadingText(bytes: Uint8Array, max = 256): string {
  return decoder.decode(bytes.subarray(0, max)).trimStart();
}

/** The whole input as text, when it is short enough to be a sealed share or key (1 MiB), else "". */
export function asText(bytes: Uint8Array): string {
  return bytes.length > 1 << 20 ? "" : decoder.decode(bytes);
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const HEX = /^(?:[0-9a-fA-F]{2})+$/;

/** Decodes text that is entirely standard base64 or entirely hex (whitespace ignored); null otherwise. */
export function decodeBase64OrHex(text: string): Uint8Array | null {
  const compact = text.replace(/\s+/g, "");
  if (compact.length === 0) return null;
  // hex first: a hex string is also valid base64, and Vault's `keys` field is hex
  if (HEX.test(compact)) return Uint8Array.from(Buffer.from(compact, "hex"));
  if (compact.length % 4 === 0 && BASE64.test(compact)) return Uint8Array.from(Buffer.from(compact, "base64"));
  return null;
}

/** The OpenPGP packet tag of the first packet (old or new format header), or null when the first byte is not one. */
export function firstPacketTag(bytes: Uint8Array): number | null {
  const b = bytes[0];
  if (b === undefined || (b & 0x80) === 0) return null;
  return b & 0x40 ? b & 0x3f : (b >> 2) & 0x0f;
}

export function toBytes(input: string | Uint8Array): Uint8Array {
  return typeof input === "string" ? new TextEncoder().encode(input) : input;
}
