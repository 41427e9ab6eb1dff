import { ShamirError } from "./errors.js";

/**
 * Combines shares in the legacy secrets.js share-string format (secrets.js-grempe: GF(2^bits) with a different
 * polynomial, shares like "801..." = bits, id, data in hex). Read-only: sealkeeper never writes this format. The
 * library is loaded on first use. The secret is returned as the bytes of secrets.js's hex result (as produced by
 * `secrets.share(hex, ...)`; a secret made with `str2hex` comes back as those UTF-16 code units).
 *
 * Throws ShamirError naming the share (1-based) that secrets.js cannot parse, or when shares disagree on their bit
 * size or repeat an id. Like any Shamir combine, wrong shares give a wrong secret without an error.
 */
export async function combineSecretsJsShares(shareStrings: readonly string[]): Promise<Uint8Array> {
  const mod = (await import("secrets.js-grempe")) as unknown as { default?: SecretsJs } & SecretsJs;
  const secrets: SecretsJs = mod.default ?? mod;
  if (shareStrings.length < 2) {
    throw new ShamirError(`at least 2 shares are needed to combine, got ${shareStrings.length}`);
  }
  const ids = new Map<number, number>();
  let bits: number | undefined;
  shareStrings.forEach((raw, i) => {
    const n = i + 1;
    let parts: { bits: number; id: number; data: string };
    try {
      parts = secrets.extractShareComponents(raw.trim());
    } catch {
      throw new ShamirError(`share ${n} is not a secrets.js share`, { shareIndex: n });
    }
    if (bits === undefined) bits = parts.bits;
    else if (parts.bits !== bits) {
      throw new ShamirError(`share ${n} uses ${parts.bits} bits but share 1 uses ${bits}`, { shareIndex: n });
    }
    const earlier = ids.get(parts.id);
    if (earlier !== undefined) {
      throw new ShamirError(`share ${n} has the same id (${parts.id}) as share ${earlier}`, { shareIndex: n });
    }
    ids.set(parts.id, n);
  });
  const hex = secrets.combine(shareStrings.map((s) => s.trim()));
  return new Uint8Array(Buffer.from(hex.length % 2 === 1 ? `0${hex}` : hex, "hex"));
}

interface SecretsJs {
  extractShareComponents(share: string): { bits: number; id: number; data: string };
  combine(shares: string[]): string;
}
