import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { combineShares } from "../../../src/shamir/combine.js";
import { checkSecretDigest, createSecretDigest } from "../../../src/shamir/digest.js";
import { ShamirError } from "../../../src/shamir/errors.js";
import { splitSecret } from "../../../src/shamir/split.js";
import { binomial, verifyShares } from "../../../src/shamir/verify.js";

/** Every k-subset of the items. */
function subsets<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [head!, ...s]), ...subsets(rest, k)];
}

/** The brute-force definition: do all threshold-sized subsets combine to the same bytes? */
function allSubsetsAgree(shares: Uint8Array[], t: number): boolean {
  const results = subsets(shares, t).map((s) => Buffer.from(combineShares(s)).toString("hex"));
  return new Set(results).size === 1;
}

function tamper(share: Uint8Array, at: number, xor: number): Uint8Array {
  const copy = Uint8Array.from(share);
  copy[at % (copy.length - 1)]! ^= xor;
  return copy;
}

describe("verifyShares", () => {
  it("reports consistent shares and counts the subsets", async () => {
    const shares = splitSecret(Uint8Array.of(1, 2, 3, 4), 5, 3);
    const report = await verifyShares(shares, 3);
    expect(report).toMatchObject({ consistent: true, subsets: "10", culprits: [], culpritSearch: "not-needed" });
    expect(binomial(255, 128).toString()).toHaveLength(76);
  });

  test.prop([
    fc.uint8Array({ minLength: 1, maxLength: 8 }),
    fc.integer({ min: 2, max: 4 }),
    fc.integer({ min: 0, max: 3 }),
    fc.nat(),
    fc.integer({ min: 1, max: 255 }),
    fc.boolean(),
  ])("agrees with combining every subset (tampered or not)", async (secret, t, extra, where, xor, doTamper) => {
    const n = t + extra;
    const shares = splitSecret(secret, n, t);
    if (doTamper) shares[where % n] = tamper(shares[where % n]!, where, xor);
    const report = await verifyShares(shares, t);
    expect(report.consistent).toBe(allSubsetsAgree(shares, t));
  });

  test.prop([
    fc.uint8Array({ minLength: 1, maxLength: 40 }),
    fc.integer({ min: 2, max: 5 }),
    fc.integer({ min: 2, max: 5 }),
    fc.nat(),
    fc.integer({ min: 1, max: 255 }),
  ])("names a single tampered share whenever n >= t + 2", async (secret, t, extra, where, xor) => {
    const n = t + extra;
    const shares = splitSecret(secret, n, t);
    const bad = where % n;
    shares[bad] = tamper(shares[bad]!, where, xor);
    const report = await verifyShares(shares, t);
    expect(report.consistent).toBe(false);
    expect(report.culpritSearch).toBe("found");
    expect(report.culprits).toEqual([bad + 1]);
  });

  it("names two tampered shares when n >= t + 4", async () => {
    const shares = splitSecret(new Uint8Array(32).fill(9), 7, 3);
    shares[1] = tamper(shares[1]!, 3, 0x40);
    shares[5] = tamper(shares[5]!, 30, 0x01);
    const report = await verifyShares(shares, 3);
    expect(report.culprits).toEqual([2, 6]);
  });

  it("detects a changed x-coordinate", async () => {
    const shares = splitSecret(Uint8Array.of(5, 6, 7), 5, 3);
    const used = new Set(shares.map((s) => s[3]));
    const x = [...Array(255).keys()].map((i) => i + 1).find((v) => !used.has(v))!;
    shares[2] = Uint8Array.from([...shares[2]!.subarray(0, 3), x]);
    expect((await verifyShares(shares, 3)).culprits).toEqual([3]);
  });

  it("says it cannot name the culprit with n = t + 1", async () => {
    const shares = splitSecret(Uint8Array.of(5, 6, 7), 4, 3);
    shares[0] = tamper(shares[0]!, 0, 1);
    const report = await verifyShares(shares, 3);
    expect(report).toMatchObject({ consistent: false, culprits: [], culpritSearch: "too-few-shares" });
    expect(report.notes[0]).toContain("needs at least 5 shares");
  });

  it("says when the threshold given is lower than the real one", async () => {
    const shares = splitSecret(new Uint8Array(16).fill(1), 6, 4);
    const report = await verifyShares(shares, 2);
    expect(report.consistent).toBe(false);
    expect(report.culpritSearch).toBe("not-found");
    expect(report.notes[0]).toContain("threshold may be higher");
  });

  it("checks a digest, also after setting a culprit aside", async () => {
    const secret = Buffer.from("correct horse battery staple");
    const digest = await createSecretDigest(secret);
    const shares = splitSecret(secret, 5, 3);
    expect((await verifyShares(shares, 3, { digest })).digest).toBe("match");
    shares[4] = tamper(shares[4]!, 2, 0x80);
    const report = await verifyShares(shares, 3, { digest });
    expect(report).toMatchObject({ culprits: [5], digest: "match" });
    const other = await createSecretDigest(Buffer.from("another"));
    expect((await verifyShares(shares.slice(0, 3), 3, { digest: other })).digest).toBe("mismatch");
  });

  it("rejects bad arguments", async () => {
    const shares = splitSecret(Uint8Array.of(1), 3, 2);
    await expect(verifyShares(shares, 1)).rejects.toThrow("threshold must be an integer from 2 to 255, got 1");
    await expect(verifyShares(shares, 4)).rejects.toThrow("verify needs at least threshold (4) shares, got 3");
    await expect(verifyShares([shares[0]!, shares[0]!], 2)).rejects.toThrow(ShamirError);
  });
});

describe("digest", () => {
  it("is salted (two digests of one secret differ) and checks only the right secret", async () => {
    const secret = Buffer.from("1234");
    const a = await createSecretDigest(secret);
    const b = await createSecretDigest(secret);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    expect(a).not.toContain(secret.toString("base64").replace(/=+$/, ""));
    expect(await checkSecretDigest(secret, a)).toBe(true);
    expect(await checkSecretDigest(Buffer.from("1235"), a)).toBe(false);
  });

  it("rejects malformed digests and hostile parameters", async () => {
    await expect(checkSecretDigest(Uint8Array.of(1), "sha256:abc")).rejects.toThrow(
      "digest is not a sealkeeper digest",
    );
    const hostile = `$scrypt$ln=30,r=8,p=1$${"A".repeat(22)}$${"A".repeat(43)}`;
    await expect(checkSecretDigest(Uint8Array.of(1), hostile)).rejects.toThrow("digest parameters out of range");
  });
});
