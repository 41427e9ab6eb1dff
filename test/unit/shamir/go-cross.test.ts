import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { combineShares } from "../../../src/shamir/combine.js";
import { splitSecret } from "../../../src/shamir/split.js";
import { buildGoReference, type GoRequest, runGoReference } from "./go-reference.js";
import { seededRandom } from "./seeded-random.js";

/**
 * Cross-implementation, both directions, against Vault's own Go package (github.com/hashicorp/vault/shamir, v1.21.4;
 * OpenBao's sdk/v2 helper/shamir is the same algorithm but its module is refused by the proxy here: docs/shamir.md).
 * Set SHAMIR_WRITE_VECTORS=1 to regenerate test/vectors/shamir/*.json.
 */
const vectorsDir = fileURLToPath(new URL("../../vectors/shamir/", import.meta.url));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const fromHex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

interface Vector {
  secret: string;
  shares: number;
  threshold: number;
  keys: string[];
}

const cases: { length: number; shares: number; threshold: number }[] = [
  { length: 1, shares: 2, threshold: 2 },
  { length: 16, shares: 3, threshold: 2 },
  { length: 32, shares: 5, threshold: 3 },
  { length: 33, shares: 10, threshold: 7 },
  { length: 100, shares: 4, threshold: 4 },
  { length: 7, shares: 255, threshold: 255 },
  { length: 4099, shares: 6, threshold: 3 },
];

function secretFor(i: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  seededRandom(`secret-${i}`)(out);
  return out;
}

/** A few threshold-sized subsets: the first, the last, and one interleaved, in a shuffled order. */
function someQuorums(keys: string[], t: number): string[][] {
  const n = keys.length;
  const stride = Array.from({ length: n }, (_, i) => keys[(i * 2 + (i * 2 >= n ? 1 - (n % 2) : 0)) % n]!);
  return [keys.slice(0, t), keys.slice(n - t).reverse(), stride.slice(0, t)];
}

let bin: string;
beforeAll(() => {
  bin = buildGoReference();
}, 300_000);

describe("against Vault's Go shamir package", () => {
  it("TS combines Go's shares", () => {
    const requests: GoRequest[] = cases.map((c, i) => ({
      op: "split",
      secret: hex(secretFor(i, c.length)),
      parts: c.shares,
      threshold: c.threshold,
    }));
    const results = runGoReference(bin, requests);
    results.forEach((r, i) => {
      expect(r.error).toBeUndefined();
      for (const quorum of someQuorums(r.shares!, cases[i]!.threshold)) {
        expect(hex(combineShares(quorum.map(fromHex)))).toBe(requests[i]!.secret);
      }
    });
    if (process.env.SHAMIR_WRITE_VECTORS === "1") {
      writeVectors(
        "vault-go.json",
        results.map((r, i) => ({ ...cases[i]!, secret: requests[i]!.secret!, keys: r.shares! })),
      );
    }
  });

  it("Go combines TS's shares", () => {
    const splits = cases.map((c, i) => {
      const secret = secretFor(100 + i, c.length);
      return { c, secret, shares: splitSecret(secret, c.shares, c.threshold).map(hex) };
    });
    const requests: GoRequest[] = splits.flatMap((s) =>
      someQuorums(s.shares, s.c.threshold).map((q) => ({ op: "combine" as const, shares: q })),
    );
    const results = runGoReference(bin, requests);
    const expected = splits.flatMap((s) => [hex(s.secret), hex(s.secret), hex(s.secret)]);
    expect(results.map((r) => r.secret ?? r.error)).toEqual(expected);
  });

  it("Go and TS agree on the stored vectors (ours made with a seeded source, Go's with its own)", () => {
    if (process.env.SHAMIR_WRITE_VECTORS === "1") {
      writeVectors(
        "sealkeeper-seeded.json",
        cases.map((c, i) => {
          const secret = secretFor(200 + i, c.length);
          const keys = splitSecret(secret, c.shares, c.threshold, { random: seededRandom(`vector-${i}`) }).map(hex);
          return { ...c, secret: hex(secret), keys };
        }),
      );
    }
    const ours = readVectors("sealkeeper-seeded.json");
    const go = readVectors("vault-go.json");
    // Our split is reproducible from the seed: a change in how randomness is consumed shows up here.
    ours.forEach((v, i) => {
      const again = splitSecret(fromHex(v.secret), v.shares, v.threshold, { random: seededRandom(`vector-${i}`) });
      expect(again.map(hex)).toEqual(v.keys);
    });
    const all = [...ours, ...go];
    const requests = all.flatMap((v) =>
      someQuorums(v.keys, v.threshold).map((q) => ({ op: "combine" as const, shares: q })),
    );
    const results = runGoReference(bin, requests);
    let r = 0;
    for (const v of all) {
      for (const q of someQuorums(v.keys, v.threshold)) {
        expect(hex(combineShares(q.map(fromHex)))).toBe(v.secret);
        expect(results[r++]!.secret).toBe(v.secret);
      }
    }
  });

  it("Go, like the server, accepts an x-coordinate of 0 that we reject", () => {
    const shares = splitSecret(Uint8Array.of(1, 2), 2, 2).map(hex);
    const zeroX = `${shares[1]!.slice(0, -2)}00`;
    const [result] = runGoReference(bin, [{ op: "combine", shares: [shares[0]!, zeroX] }]);
    expect(result!.error).toBeUndefined();
    expect(() => combineShares([fromHex(shares[0]!), fromHex(zeroX)])).toThrow("share 2 has x-coordinate 0");
  });
});

function writeVectors(name: string, vectors: Vector[]): void {
  mkdirSync(vectorsDir, { recursive: true });
  writeFileSync(`${vectorsDir}${name}`, `${JSON.stringify(vectors, null, 1)}\n`);
}

function readVectors(name: string): Vector[] {
  const path = `${vectorsDir}${name}`;
  if (!existsSync(path)) throw new Error(`missing ${path}: run with SHAMIR_WRITE_VECTORS=1 once`);
  return JSON.parse(readFileSync(path, "utf8")) as Vector[];
}
