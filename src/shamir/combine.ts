import { accumulateScaledWords, gfDivide, gfMultiply, spreadConstant } from "./gf256.js";
import { checkShares } from "./validate.js";

/** Shares are copied to aligned word buffers this many bytes at a time. */
const BLOCK_BYTES = 64 * 1024;

/**
 * Reconstructs the secret from shares in Vault's format (y-bytes then one x byte) by Lagrange interpolation at 0.
 * Any `threshold` or more shares of one split give the secret; fewer, or shares of different splits, give unrelated
 * bytes without any error (that is what verifyShares is for). The result is a fresh Uint8Array.
 *
 * Throws ShamirError, naming the share at fault, for: fewer than 2 shares, a share that is not a byte array or shorter
 * than 2 bytes, unequal lengths, an x-coordinate of 0 (Vault and shamir-secret-sharing accept it and return that
 * share's bytes as the "secret"), duplicate x-coordinates.
 */
export function combineShares(shares: readonly Uint8Array[]): Uint8Array {
  const xs = checkShares(shares);
  return interpolateAt(shares, xs, 0);
}

/**
 * The Lagrange basis at `at` for the public points `xs`: basis[i] = prod over j != i of (at - x_j) / (x_i - x_j).
 * Computed once per call rather than once per byte as Vault does: it depends only on the public coordinates.
 */
export function lagrangeBasis(xs: Uint8Array, at: number): Uint8Array {
  const basis = new Uint8Array(xs.length);
  for (let i = 0; i < xs.length; i++) {
    let num = 1;
    let den = 1;
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue;
      num = gfMultiply(num, at ^ xs[j]!);
      den = gfMultiply(den, xs[i]! ^ xs[j]!);
    }
    basis[i] = gfDivide(num, den);
  }
  return basis;
}

/**
 * Evaluates, at x = `at`, the polynomial through the given shares (already checked, `xs` their x-coordinates), for
 * every byte position: sum over i of y_i * basis_i. Returns the y-bytes only (no x byte).
 */
export function interpolateAt(shares: readonly Uint8Array[], xs: Uint8Array, at: number): Uint8Array {
  const length = shares[0]!.length - 1;
  const basis = lagrangeBasis(xs, at);
  const constants = new Uint32Array(8 * shares.length);
  for (let i = 0; i < shares.length; i++) spreadConstant(basis[i]!, constants, 8 * i);
  const out = new Uint8Array(length);
  const blockBytes = Math.min(BLOCK_BYTES, (length + 3) & ~3);
  const blockWords = blockBytes / 4;
  // One allocation for both word buffers: this runs per combine, and for a 32-byte key allocation is the cost.
  const scratch = new Uint32Array(2 * blockWords);
  const acc = scratch.subarray(0, blockWords);
  const tmp = scratch.subarray(blockWords);
  const accBytes = new Uint8Array(scratch.buffer, 0, blockBytes);
  const tmpBytes = new Uint8Array(scratch.buffer, blockBytes, blockBytes);
  try {
    for (let off = 0; off < length; off += blockBytes) {
      const n = Math.min(blockBytes, length - off);
      const words = (n + 3) >>> 2;
      if (off > 0) acc.fill(0);
      for (let i = 0; i < shares.length; i++) {
        if (n < blockBytes) tmp.fill(0);
        tmpBytes.set(shares[i]!.subarray(off, off + n));
        accumulateScaledWords(acc, tmp, constants, words, 8 * i);
      }
      out.set(accBytes.subarray(0, n), off);
    }
  } finally {
    scratch.fill(0);
  }
  return out;
}
