/**
 * Arithmetic in GF(2^8) with Vault's reduction polynomial x^8 + x^4 + x^3 + x + 1 (0x11b), written so that the time
 * taken never depends on the values: no table indexed by a value and no branch on one. Vault moved from log/exp tables
 * to exactly this bit loop for CVE-2023-25000 (shamir/shamir.go, `mult` and `inverse`, v1.13.1 onwards).
 */

/** Addition and subtraction are the same in characteristic 2. */
export function gfAdd(a: number, b: number): number {
  return a ^ b;
}

/**
 * Multiplies two field elements by the shift-and-add bit loop, MSB first, reducing with 0x1b whenever the top bit
 * falls off. Each step selects with masks instead of branching, as Vault's `mult` does:
 *   r = (-(b>>i & 1) & a) ^ (-(r>>7) & 0x1B) ^ (r + r)
 */
export function gfMultiply(a: number, b: number): number {
  let r = 0;
  for (let i = 7; i >= 0; i--) {
    r = (-((b >>> i) & 1) & a) ^ (-(r >>> 7) & 0x1b) ^ ((r << 1) & 0xff);
  }
  return r & 0xff;
}

/**
 * The multiplicative inverse as a^254 (Fermat: a^255 = 1 for a != 0), by Vault's fixed addition chain, so every input
 * costs the same eleven multiplications. gfInverse(0) is 0, which callers never rely on.
 */
export function gfInverse(a: number): number {
  let b = gfMultiply(a, a); // a^2
  let c = gfMultiply(a, b); // a^3
  b = gfMultiply(c, c); // a^6
  b = gfMultiply(b, b); // a^12
  c = gfMultiply(b, c); // a^15
  b = gfMultiply(b, b); // a^24
  b = gfMultiply(b, b); // a^48
  b = gfMultiply(b, c); // a^63
  b = gfMultiply(b, b); // a^126
  b = gfMultiply(a, b); // a^127
  return gfMultiply(b, b); // a^254
}

/**
 * Divides a by b. Throws when b is 0: divisors here are differences of distinct public x-coordinates, so a zero
 * divisor is a bug, not data (the branch is on a public value only).
 */
export function gfDivide(a: number, b: number): number {
  if (b === 0) throw new RangeError("division by zero in GF(256)");
  return gfMultiply(a, gfInverse(b));
}

/**
 * The eight multiples c*x^i (i = 0..7) of a public constant c, each broadcast to the four byte lanes of a 32-bit word.
 * They are indexed by bit position only, never by a secret value: see {@link mulWordByConstant}.
 */
export function spreadConstant(c: number, into: Uint32Array = new Uint32Array(8), offset = 0): Uint32Array {
  let m = c & 0xff;
  for (let i = 0; i < 8; i++) {
    into[offset + i] = Math.imul(m, 0x01010101) >>> 0;
    m = gfMultiply(m, 2);
  }
  return into;
}

/**
 * Multiplies four field elements packed in one 32-bit word (one per byte lane) by a public constant, given as the
 * output of {@link spreadConstant}. For every bit i of every lane, a mask of 0xff (bit set) or 0x00 (bit clear) is built
 * arithmetically and selects c*x^i: the same shift-and-add as {@link gfMultiply}, with the reduction folded into the
 * constant's multiples, four bytes at a time and with no branch or table lookup on the secret word.
 */
export function mulWordByConstant(w: number, k: Uint32Array): number {
  return (
    (Math.imul(w & 0x01010101, 0xff) & k[0]!) ^
    (Math.imul((w >>> 1) & 0x01010101, 0xff) & k[1]!) ^
    (Math.imul((w >>> 2) & 0x01010101, 0xff) & k[2]!) ^
    (Math.imul((w >>> 3) & 0x01010101, 0xff) & k[3]!) ^
    (Math.imul((w >>> 4) & 0x01010101, 0xff) & k[4]!) ^
    (Math.imul((w >>> 5) & 0x01010101, 0xff) & k[5]!) ^
    (Math.imul((w >>> 6) & 0x01010101, 0xff) & k[6]!) ^
    (Math.imul((w >>> 7) & 0x01010101, 0xff) & k[7]!)
  );
}

/**
 * Horner step over packed words: acc[w] = acc[w] * c + add[addOffset + w] for w < words, with c a public constant
 * given as the output of {@link spreadConstant} (at `kOffset`). The constant's eight multiples live in locals so the
 * loop body has no lookups.
 */
export function multiplyAddWords(
  acc: Uint32Array,
  k: Uint32Array,
  add: Uint32Array,
  addOffset: number,
  words: number,
  kOffset = 0,
): void {
  const [k0, k1, k2, k3, k4, k5, k6, k7] = constantLanes(k, kOffset);
  for (let w = 0; w < words; w++) {
    const a = acc[w]!;
    acc[w] =
      (Math.imul(a & 0x01010101, 0xff) & k0) ^
      (Math.imul((a >>> 1) & 0x01010101, 0xff) & k1) ^
      (Math.imul((a >>> 2) & 0x01010101, 0xff) & k2) ^
      (Math.imul((a >>> 3) & 0x01010101, 0xff) & k3) ^
      (Math.imul((a >>> 4) & 0x01010101, 0xff) & k4) ^
      (Math.imul((a >>> 5) & 0x01010101, 0xff) & k5) ^
      (Math.imul((a >>> 6) & 0x01010101, 0xff) & k6) ^
      (Math.imul((a >>> 7) & 0x01010101, 0xff) & k7) ^
      add[addOffset + w]!;
  }
}

/** Accumulates a scaled vector: acc[w] ^= src[w] * c for w < words, c public (see {@link spreadConstant}). */
export function accumulateScaledWords(
  acc: Uint32Array,
  src: Uint32Array,
  k: Uint32Array,
  words: number,
  kOffset = 0,
): void {
  const [k0, k1, k2, k3, k4, k5, k6, k7] = constantLanes(k, kOffset);
  for (let w = 0; w < words; w++) {
    const a = src[w]!;
    acc[w] =
      acc[w]! ^
      (Math.imul(a & 0x01010101, 0xff) & k0) ^
      (Math.imul((a >>> 1) & 0x01010101, 0xff) & k1) ^
      (Math.imul((a >>> 2) & 0x01010101, 0xff) & k2) ^
      (Math.imul((a >>> 3) & 0x01010101, 0xff) & k3) ^
      (Math.imul((a >>> 4) & 0x01010101, 0xff) & k4) ^
      (Math.imul((a >>> 5) & 0x01010101, 0xff) & k5) ^
      (Math.imul((a >>> 6) & 0x01010101, 0xff) & k6) ^
      (Math.imul((a >>> 7) & 0x01010101, 0xff) & k7);
  }
}

function constantLanes(k: Uint32Array, o: number): [number, number, number, number, number, number, number, number] {
  return [k[o]!, k[o + 1]!, k[o + 2]!, k[o + 3]!, k[o + 4]!, k[o + 5]!, k[o + 6]!, k[o + 7]!];
}
