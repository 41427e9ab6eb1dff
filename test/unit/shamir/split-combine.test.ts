import { fc, test } from "@fast-check/vitest";
import { describe, expect, it, vi } from "vitest";
import { combineShares, interpolateAt } from "../../../src/shamir/combine.js";
import { ShamirError } from "../../../src/shamir/errors.js";
import { cryptoRandom } from "../../../src/shamir/random.js";
import { drawCoordinates, splitSecret } from "../../../src/shamir/split.js";
import { seededRandom } from "./seeded-random.js";

const quorum = fc
  .tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 0, max: 10 }))
  .map(([threshold, extra]) => ({ threshold, shares: Math.min(255, threshold + extra) }));

/** A random subset of `k` of the items, in random order. */
function pick<T>(items: T[], k: number, order: number[]): T[] {
  const copy = items.slice();
  for (let i = copy.length - 1; i > 0; i--) {
    const j = order[i % order.length]! % (i + 1);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy.slice(0, k);
}

describe("split and combine", () => {
  test.prop([fc.uint8Array({ minLength: 1, maxLength: 300 }), quorum, fc.array(fc.nat(), { minLength: 1 })])(
    "any threshold-or-more shares reconstruct the secret",
    (secret, q, order) => {
      const shares = splitSecret(secret, q.shares, q.threshold);
      expect(shares).toHaveLength(q.shares);
      for (const s of shares) expect(s.length).toBe(secret.length + 1);
      const k = q.threshold + ((order[0] ?? 0) % (q.shares - q.threshold + 1));
      expect(combineShares(pick(shares, k, order))).toEqual(secret);
    },
  );

  test.prop([fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), quorum])(
    "threshold-1 shares are consistent with every other secret (they determine nothing)",
    (secretA, other, q) => {
      const secretB = other.subarray(0, secretA.length);
      const shares = splitSecret(secretA, q.shares, q.threshold);
      const known = shares.slice(0, q.threshold - 1);
      // The polynomial through the known shares and (0, secretB) exists and has degree < threshold: evaluate it at an
      // unused x to forge the missing share, then the known shares plus the forgery combine to secretB.
      const used = new Set(shares.map((s) => s[s.length - 1]!));
      const free = [...Array(255).keys()].map((i) => i + 1).find((x) => !used.has(x));
      if (free === undefined) return;
      const points = [...known, Uint8Array.from([...secretB, 0])];
      const xs = Uint8Array.from(points, (p) => p[p.length - 1]!);
      const forged = Uint8Array.from([...interpolateAt(points, xs, free), free]);
      expect(combineShares([...known, forged])).toEqual(secretB);
    },
  );

  it("accepts Buffer and Uint8Array, including Buffers at odd offsets in a shared pool", () => {
    const pool = Buffer.alloc(100, 7);
    const secret = pool.subarray(3, 40);
    const shares = splitSecret(secret, 3, 2).map((s) => {
      const b = Buffer.alloc(s.length + 5);
      b.set(s, 5);
      return b.subarray(5);
    });
    expect(Buffer.from(combineShares(shares.slice(1))).equals(secret)).toBe(true);
  });

  it("handles 1-byte, 255-share and large secrets", () => {
    const one = Uint8Array.of(0x42);
    expect(combineShares(splitSecret(one, 255, 255))).toEqual(one);
    const big = new Uint8Array(5 * 1024 * 1024 + 3).map((_, i) => (i * 31) & 0xff);
    const shares = splitSecret(big, 5, 3);
    expect(Buffer.from(combineShares([shares[4]!, shares[0]!, shares[2]!])).equals(Buffer.from(big))).toBe(true);
  });

  it("is deterministic with an injected source, and uses distinct x-coordinates 1..255", () => {
    const secret = Uint8Array.of(1, 2, 3);
    const a = splitSecret(secret, 5, 3, { random: seededRandom("x") });
    const b = splitSecret(secret, 5, 3, { random: seededRandom("x") });
    expect(a).toEqual(b);
    const xs = drawCoordinates(255, seededRandom("perm"));
    expect([...xs].sort((p, q) => p - q)).toEqual([...Array(255).keys()].map((i) => i + 1));
  });

  it("draws all its randomness at once: one fill for a key, one getRandomValues call per 64 KiB for 1 MiB", () => {
    const sizes: number[] = [];
    const counting = (bytes: Uint8Array) => {
      sizes.push(bytes.length);
      cryptoRandom(bytes);
    };
    splitSecret(new Uint8Array(32), 5, 3, { random: counting });
    expect(sizes).toHaveLength(1);
    const original = globalThis.crypto.getRandomValues.bind(globalThis.crypto);
    let calls = 0;
    const spy = vi.spyOn(globalThis.crypto, "getRandomValues").mockImplementation((a) => {
      calls++;
      return original(a);
    });
    try {
      splitSecret(new Uint8Array(1 << 20), 5, 3);
    } finally {
      spy.mockRestore();
    }
    // 2 MiB of coefficients plus the coordinate pool, in 65536-byte calls
    expect(calls).toBe(33);
  });

  it("draws x-coordinates uniformly (each of 1..255 first about equally often)", () => {
    const counts = new Array(256).fill(0);
    const random = seededRandom("coords");
    for (let i = 0; i < 25500; i++) counts[drawCoordinates(1, random)[0]!]++;
    expect(counts[0]).toBe(0);
    // chi-square with 254 degrees of freedom; 370 is far beyond the 0.9999 quantile (~350)
    const chi = counts.slice(1).reduce((s, c) => s + (c - 100) ** 2 / 100, 0);
    expect(chi).toBeLessThan(370);
  });
});

describe("statistics", () => {
  it("a share byte equals the secret byte about 1 time in 256 at threshold 2 (no zero-coefficient bias)", () => {
    const n = 1 << 20;
    const secret = new Uint8Array(n).map((_, i) => (i * 13) & 0xff);
    const [share] = splitSecret(secret, 2, 2);
    let equal = 0;
    for (let i = 0; i < n; i++) if (share![i] === secret[i]) equal++;
    // expected 4096, standard deviation ~64: six sigma either way. Forcing non-zero coefficients gives exactly 0.
    expect(equal).toBeGreaterThan(4096 - 6 * 64);
    expect(equal).toBeLessThan(4096 + 6 * 64);
  });

  it("one share of a constant secret is uniform whatever the secret byte", () => {
    for (const byte of [0x00, 0xab]) {
      const [share] = splitSecret(new Uint8Array(256 * 400).fill(byte), 3, 2);
      const counts = new Array(256).fill(0);
      for (let i = 0; i < share!.length - 1; i++) counts[share![i]!]++;
      const chi = counts.reduce((s, c) => s + (c - 400) ** 2 / 400, 0);
      expect(chi).toBeLessThan(370);
    }
  });
});

describe("rejections", () => {
  const secret = Uint8Array.of(1, 2, 3);
  it.each([
    [() => splitSecret(new Uint8Array(0), 3, 2), "secret must not be empty"],
    [() => splitSecret("abc" as unknown as Uint8Array, 3, 2), "secret must be a Uint8Array or Buffer"],
    [() => splitSecret(secret, 1, 2), "shares must be an integer from 2 to 255, got 1"],
    [() => splitSecret(secret, 256, 2), "shares must be an integer from 2 to 255, got 256"],
    [() => splitSecret(secret, 2.5, 2), "shares must be an integer from 2 to 255, got 2.5"],
    [() => splitSecret(secret, 5, 1), "threshold must be an integer from 2 to 255, got 1"],
    [() => splitSecret(secret, 5, 0), "threshold must be an integer from 2 to 255, got 0"],
    [() => splitSecret(secret, 3, 4), "threshold (4) must not exceed shares (3)"],
  ])("split %#", (fn, message) => {
    expect(fn).toThrow(ShamirError);
    expect(fn).toThrow(message);
  });

  const shares = splitSecret(secret, 4, 2);
  const withX = (s: Uint8Array, x: number) => Uint8Array.from([...s.subarray(0, -1), x]);
  it.each([
    [[], "at least 2 shares are needed to combine, got 0", undefined],
    [[shares[0]!], "at least 2 shares are needed to combine, got 1", undefined],
    [[shares[0]!, shares[1]!.subarray(1)], "share 2 is 3 bytes but share 1 is 4", 2],
    [[Uint8Array.of(9), Uint8Array.of(8)], "share 1 is 1 byte(s): a share is at least 2", 1],
    [[shares[0]!, withX(shares[1]!, 0)], "share 2 has x-coordinate 0", 2],
    [[shares[0]!, shares[1]!, shares[0]!], "share 3 is a copy of share 1", 3],
    [
      [shares[0]!, shares[1]!, withX(shares[2]!, shares[1]![3]!)],
      `share 3 has the same x-coordinate (${shares[1]![3]}) as share 2`,
      3,
    ],
    [[shares[0]!, [1, 2, 3, 4] as unknown as Uint8Array], "share 2 is not a Uint8Array or Buffer", 2],
  ])("combine %#", (input, message, index) => {
    let caught: unknown;
    try {
      combineShares(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ShamirError);
    expect((caught as ShamirError).message).toContain(message);
    expect((caught as ShamirError).shareIndex).toBe(index);
  });

  it("explains the secret_shares=1 case when given one share", () => {
    try {
      combineShares([new Uint8Array(32)]);
      expect.unreachable();
    } catch (err) {
      expect((err as ShamirError).hint).toContain("secret_shares=1");
    }
  });
});
