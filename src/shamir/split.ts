import { ShamirError } from "./errors.js";
import { multiplyAddWords, spreadConstant } from "./gf256.js";
import { cryptoRandom, type RandomSource } from "./random.js";
import { isBytes } from "./validate.js";

export interface SplitOptions {
  /** Test vectors only: a seeded source. Default: crypto.getRandomValues. */
  random?: RandomSource;
}

/**
 * The most random bytes drawn for coefficients at once. A 1 MiB secret at threshold 3 needs 2 MiB, so typical
 * secrets take one draw; larger ones are split into blocks so memory stays bounded.
 */
const RANDOM_BUDGET = 4 * 1024 * 1024;

/**
 * Splits `secret` into `shares` shares, any `threshold` of which reconstruct it, in Vault's format: each share is
 * the y-bytes (one per secret byte) followed by one x-coordinate byte. Byte-compatible with Vault's and OpenBao's
 * `shamir.Combine`.
 *
 * - Coefficients are drawn uniformly from all 256 values, zero included: forcing them non-zero (as secrets.js does)
 *   makes a share byte never equal the secret byte at t = 2, a measurable bias.
 * - x-coordinates are the first `shares` entries of a uniform crypto-random permutation of 1..255 (Vault uses
 *   math/rand for this; the coordinates are public, but there is no reason to make them predictable).
 * - Randomness is drawn in bulk: one fill for the coordinates and the first block of up to 4 MiB of coefficients
 *   (so one call for any secret up to 4 MiB / (threshold - 1)), then one fill per further block.
 * - Arithmetic is constant time: see gf256.ts.
 *
 * Throws ShamirError on bad arguments, with the messages tested in test/unit/shamir.
 */
export function splitSecret(
  secret: Uint8Array,
  shares: number,
  threshold: number,
  opts: SplitOptions = {},
): Uint8Array[] {
  checkSplitArguments(secret, shares, threshold);
  const random = opts.random ?? cryptoRandom;
  const length = secret.length;
  const degree = threshold - 1;

  // Block size in bytes, a multiple of 4 so that blocks start on word boundaries of the output copies.
  const blockBytes = Math.max(4, Math.min(roundUp4(length), Math.floor(RANDOM_BUDGET / degree / 4) * 4));
  const blockWords = blockBytes / 4;
  // One buffer, one fill, for the coordinate pool and the first block's coefficients: a 32-byte key costs a single
  // getRandomValues call. The pool comes first, padded to a word boundary so the coefficients can be read as words.
  const poolBytes = (shares + 64 + 3) & ~3;
  const draw = new ArrayBuffer(poolBytes + degree * blockBytes);
  const pool = new Uint8Array(draw, 0, poolBytes);
  const coefficients = new Uint32Array(draw, poolBytes, degree * blockWords);
  const coefficientBytes = new Uint8Array(draw, poolBytes);
  random(new Uint8Array(draw));
  const xs = drawCoordinates(shares, random, pool);
  const out = Array.from(xs, (x) => {
    const share = new Uint8Array(length + 1);
    share[length] = x;
    return share;
  });
  const constants = Array.from(xs, (x) => spreadConstant(x));
  const secretWords = new Uint32Array(blockWords);
  const secretBytes = new Uint8Array(secretWords.buffer);
  const acc = new Uint32Array(blockWords);
  const accBytes = new Uint8Array(acc.buffer);
  try {
    for (let off = 0; off < length; off += blockBytes) {
      const n = Math.min(blockBytes, length - off);
      const words = (n + 3) >>> 2;
      // Coefficient k (1..degree) of the polynomial for secret byte `off + i` is byte i of row k-1.
      if (off > 0) random(coefficientBytes);
      secretBytes.fill(0);
      secretBytes.set(secret.subarray(off, off + n));
      for (let s = 0; s < shares; s++) {
        const k = constants[s]!;
        // Horner: start from the top coefficient, then acc = acc * x + next, ending with the secret byte.
        acc.set(coefficients.subarray((degree - 1) * blockWords, (degree - 1) * blockWords + words));
        for (let row = degree - 2; row >= 0; row--) multiplyAddWords(acc, k, coefficients, row * blockWords, words);
        multiplyAddWords(acc, k, secretWords, 0, words);
        out[s]!.set(accBytes.subarray(0, n), off);
      }
    }
  } finally {
    // The coefficients and the copy of the secret would let anyone holding this memory recover the secret.
    new Uint8Array(draw).fill(0);
    secretWords.fill(0);
    acc.fill(0);
  }
  return out;
}

/** Throws ShamirError unless 2 <= threshold <= shares <= 255 and the secret is a non-empty byte array. */
export function checkSplitArguments(secret: Uint8Array, shares: number, threshold: number): void {
  if (!isBytes(secret)) throw new ShamirError("secret must be a Uint8Array or Buffer");
  if (secret.length === 0) throw new ShamirError("secret must not be empty");
  if (!Number.isInteger(shares) || shares < 2 || shares > 255) {
    throw new ShamirError(`shares must be an integer from 2 to 255, got ${shares}`);
  }
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > 255) {
    throw new ShamirError(`threshold must be an integer from 2 to 255, got ${threshold}`);
  }
  if (threshold > shares) throw new ShamirError(`threshold (${threshold}) must not exceed shares (${shares})`);
}

/**
 * The first `count` values of a uniform random permutation of 1..255: a partial Fisher-Yates shuffle whose indices
 * come from bytes by rejection sampling (no modulo bias). The coordinates are public, so branching on them is fine.
 */
export function drawCoordinates(count: number, random: RandomSource, filledPool?: Uint8Array): Uint8Array {
  const values = new Uint8Array(255);
  for (let i = 0; i < 255; i++) values[i] = i + 1;
  const pool = filledPool ?? new Uint8Array(count + 64);
  if (filledPool === undefined) random(pool);
  let p = 0;
  for (let i = 0; i < count; i++) {
    const range = 255 - i;
    const limit = 256 - (256 % range);
    let r: number;
    do {
      if (p === pool.length) {
        random(pool);
        p = 0;
      }
      r = pool[p++]!;
    } while (r >= limit);
    const j = i + (r % range);
    const tmp = values[i]!;
    values[i] = values[j]!;
    values[j] = tmp;
  }
  return values.slice(0, count);
}

function roundUp4(n: number): number {
  return (n + 3) & ~3;
}
