import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  accumulateScaledWords,
  gfAdd,
  gfDivide,
  gfInverse,
  gfMultiply,
  mulWordByConstant,
  spreadConstant,
} from "../../../src/shamir/gf256.js";

/** Textbook multiplication with branches, as an independent reference (test only: not constant time). */
function naiveMultiply(a: number, b: number): number {
  let p = 0;
  while (b) {
    if (b & 1) p ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11b;
    b >>= 1;
  }
  return p;
}

describe("GF(256) with x^8+x^4+x^3+x+1", () => {
  it("gives the known answers", () => {
    expect(gfMultiply(3, 7)).toBe(9);
    expect(gfMultiply(0x57, 0x83)).toBe(0xc1); // FIPS-197 section 4.2
    expect(gfMultiply(0x57, 0x13)).toBe(0xfe); // FIPS-197 section 4.2.1
    expect(gfMultiply(0, 0xff)).toBe(0);
    expect(gfMultiply(1, 0xab)).toBe(0xab);
    expect(gfAdd(0x57, 0x83)).toBe(0xd4);
    expect(gfInverse(0x53)).toBe(0xca); // FIPS-197 section 5.1.1 example
  });

  it("matches a checksum of the full 256x256 multiplication table, and the textbook algorithm", () => {
    const table = new Uint8Array(65536);
    const reference = new Uint8Array(65536);
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        table[a * 256 + b] = gfMultiply(a, b);
        reference[a * 256 + b] = naiveMultiply(a, b);
      }
    }
    expect(Buffer.from(table).equals(Buffer.from(reference))).toBe(true);
    expect(createHash("sha256").update(table).digest("hex")).toBe(
      "14a1e7e77ca8a30b5bb53e6310748ce0498eb9e04ab78a44dbefb6ebfac8a84b",
    );
  });

  it("inverts every non-zero element", () => {
    for (let a = 1; a < 256; a++) {
      expect(gfMultiply(a, gfInverse(a))).toBe(1);
      expect(gfDivide(a, a)).toBe(1);
    }
    expect(gfDivide(0, 7)).toBe(0);
    expect(() => gfDivide(5, 0)).toThrow("division by zero in GF(256)");
  });

  it("multiplies four packed lanes by a constant exactly as the scalar loop does", () => {
    for (let c = 0; c < 256; c++) {
      const k = spreadConstant(c);
      for (let a = 0; a < 256; a += 1) {
        const w = (a | ((255 - a) << 8) | (((a * 7) & 0xff) << 16) | (((a ^ 0x5a) & 0xff) << 24)) >>> 0;
        const got = mulWordByConstant(w, k) >>> 0;
        const lanes = [a, 255 - a, (a * 7) & 0xff, (a ^ 0x5a) & 0xff].map((v) => gfMultiply(v, c));
        expect(got).toBe((lanes[0]! | (lanes[1]! << 8) | (lanes[2]! << 16) | (lanes[3]! << 24)) >>> 0);
      }
    }
    const acc = new Uint32Array([0x01020304]);
    accumulateScaledWords(acc, new Uint32Array([0x01010101]), spreadConstant(2), 1);
    expect(acc[0]).toBe(0x01020304 ^ 0x02020202);
  });
});
