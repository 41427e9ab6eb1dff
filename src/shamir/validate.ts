import { ShamirError } from "./errors.js";

/** True for Uint8Array and its subclasses (Buffer), also across realms. */
export function isBytes(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array || (ArrayBuffer.isView(value) && value.constructor?.name === "Uint8Array");
}

/**
 * Checks a set of shares as combine needs them and returns their x-coordinates. Throws ShamirError naming the share at
 * fault (1-based, in the order given): fewer than 2 shares, a non-byte-array, too short, unequal lengths, x = 0,
 * duplicate x.
 */
export function checkShares(shares: readonly Uint8Array[]): Uint8Array {
  if (!Array.isArray(shares)) throw new ShamirError("shares must be an array of Uint8Array or Buffer");
  if (shares.length < 2) {
    throw new ShamirError(`at least 2 shares are needed to combine, got ${shares.length}`, {
      hint:
        shares.length === 1
          ? "a server initialised with secret_shares=1 hands out the unseal key itself (no x-coordinate byte), " +
            "not a share: use it as it is, there is nothing to combine"
          : undefined,
    });
  }
  const first = shares[0];
  const xs = new Uint8Array(shares.length);
  // seen[x] = 1-based index of the share holding x (x is public: it is written in the clear in every share)
  const seen = new Uint8Array(256);
  for (let i = 0; i < shares.length; i++) {
    const share = shares[i];
    const n = i + 1;
    if (!isBytes(share)) throw new ShamirError(`share ${n} is not a Uint8Array or Buffer`, { shareIndex: n });
    if (share.length < 2) {
      throw new ShamirError(`share ${n} is ${share.length} byte(s): a share is at least 2 (data, then x-coordinate)`, {
        shareIndex: n,
      });
    }
    if (share.length !== first!.length) {
      throw new ShamirError(
        `share ${n} is ${share.length} bytes but share 1 is ${first!.length}: shares of one secret have equal lengths`,
        { shareIndex: n },
      );
    }
    const x = share[share.length - 1]!;
    if (x === 0) {
      throw new ShamirError(`share ${n} has x-coordinate 0, which no valid share has (it would be the secret)`, {
        shareIndex: n,
      });
    }
    const earlier = seen[x]!;
    if (earlier !== 0) {
      const copy = equalBytes(share, shares[earlier - 1]!);
      throw new ShamirError(
        copy
          ? `share ${n} is a copy of share ${earlier}`
          : `share ${n} has the same x-coordinate (${x}) as share ${earlier}`,
        { shareIndex: n },
      );
    }
    seen[x] = n;
    xs[i] = x;
  }
  return xs;
}

/** Compares two byte arrays without an early exit (the contents are secret). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
