import { ShamirError } from "./errors.js";

/** How a share is written as text. Vault's init returns both: `keys` (hex) and `keys_base64`. */
export type ShareEncoding = "hex" | "base64";

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Writes a share (or any bytes) as lowercase hex or padded standard base64, as Vault does. */
export function encodeShare(share: Uint8Array, encoding: ShareEncoding): string {
  return Buffer.from(share.buffer, share.byteOffset, share.byteLength).toString(encoding);
}

/** Decodes hex, or returns null when `text` is not hex (even length, 0-9a-f in either case). */
export function decodeHex(text: string): Uint8Array | null {
  return HEX.test(text) ? new Uint8Array(Buffer.from(text, "hex")) : null;
}

/**
 * Decodes padded standard base64, or returns null when `text` is not canonical padded base64: Go's
 * base64.StdEncoding (which the server uses) requires the padding, and so do we. Stricter than
 * Buffer.from(text, "base64"), which skips junk characters silently.
 */
export function decodeBase64(text: string): Uint8Array | null {
  if (!BASE64.test(text) || text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, "base64");
  // Non-canonical trailing bits would decode to the same bytes as another string: reject them.
  if (bytes.toString("base64") !== text) return null;
  return new Uint8Array(bytes);
}

/**
 * Decodes one share written as text, the way Vault's unseal endpoint does: hex first, else base64. Surrounding
 * whitespace is ignored. `encoding` forces one of the two. Throws ShamirError (no share bytes in the message) when the
 * text is neither; `label` says which share, e.g. "share 3 (line 4 of stdin)".
 */
export function decodeShare(
  text: string,
  opts: { encoding?: ShareEncoding | "auto"; label?: string } = {},
): Uint8Array {
  const t = text.trim();
  const label = opts.label ?? "share";
  const encoding = opts.encoding ?? "auto";
  const bytes =
    encoding === "hex" ? decodeHex(t) : encoding === "base64" ? decodeBase64(t) : (decodeHex(t) ?? decodeBase64(t));
  if (bytes === null) {
    const what = encoding === "auto" ? "hex nor base64" : encoding;
    // secrets.js shares are hex digits behind a one-character bit-size prefix, so usually of odd length.
    const hint =
      /^[0-9a-zA-Z]+$/.test(t) && /^[0-9a-fA-F]+$/.test(t.slice(1)) && t.length % 2 === 1
        ? "odd-length hex looks like a legacy secrets.js share: use --share-format secretsjs"
        : undefined;
    throw new ShamirError(encoding === "auto" ? `${label} is neither ${what}` : `${label} is not ${what}`, { hint });
  }
  return bytes;
}

/**
 * Decodes a set of shares of one secret. Like Vault, each is read as hex first, else base64; but where a string is
 * valid as both (possible for base64 made only of hex characters) and the hex reading has a different length from the
 * shares that can only be base64, the base64 reading is taken, since shares of one secret have equal lengths.
 * Throws ShamirError with `shareIndex` (1-based) set.
 */
export function decodeShares(
  texts: readonly string[],
  opts: { encoding?: ShareEncoding | "auto"; labels?: readonly string[] } = {},
): Uint8Array[] {
  const encoding = opts.encoding ?? "auto";
  const label = (i: number) => opts.labels?.[i] ?? `share ${i + 1}`;
  const decoded = texts.map((text, i) => {
    try {
      return decodeShare(text, { encoding, label: label(i) });
    } catch (err) {
      if (err instanceof ShamirError) throw new ShamirError(err.message, { shareIndex: i + 1, hint: err.hint });
      throw err;
    }
  });
  if (encoding !== "auto") return decoded;
  const base64Only = texts.map((t) => decodeHex(t.trim()) === null);
  const reference = decoded.find((_, i) => base64Only[i])?.length;
  if (reference === undefined) return decoded;
  return decoded.map((bytes, i) => {
    if (base64Only[i] || bytes.length === reference) return bytes;
    const alt = decodeBase64(texts[i]!.trim());
    return alt !== null && alt.length === reference ? alt : bytes;
  });
}
