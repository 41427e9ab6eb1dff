/**
 * Fuzz: every parser a share goes through on its way in. decodeShare/decodeShares (hex, base64; what /sys/unseal
 * accepts), parseKeyShare (what unseal, root generate and rekey take from files, stdin and prompts), and the legacy
 * secrets.js share format. Junk, near-valid mutations of real shares, huge inputs, and secrets pasted into junk.
 */
import { fc } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { UsageError } from "../../../src/errors.js";
import { decodeShare, decodeShares } from "../../../src/shamir/encoding.js";
import { ShamirError } from "../../../src/shamir/errors.js";
import { combineSecretsJsShares } from "../../../src/shamir/secretsjs.js";
import { splitSecret } from "../../../src/shamir/split.js";
import {
  anySecretArb,
  attempt,
  embedded,
  expectWellBehaved,
  fixtureBytes,
  junkString,
  mutatedText,
  params,
  RUNS,
  reportCounts,
  secretArb,
  tick,
} from "./fuzz-kit.js";

let drawn = 0;
const realShares = splitSecret(fixtureBytes("shares secret", 32), 5, 3, {
  random: (b) => b.set(fixtureBytes(`shares split ${drawn++}`, b.length)),
}).map((s) => Buffer.from(s));
const seeds = [
  ...realShares.map((s) => s.toString("hex")),
  ...realShares.map((s) => s.toString("base64")),
  ` ${realShares[0]!.toString("hex").toUpperCase()}\n`,
  fixtureBytes("shares key", 32).toString("hex"),
];
const shareText = fc.oneof(
  junkString,
  mutatedText(seeds),
  embedded(secretArb).map((e) => e.input),
  anySecretArb,
);

afterAll(() => {
  reportCounts({
    decodeShare: RUNS.light,
    decodeShares: RUNS.medium,
    parseKeyShare: RUNS.light,
    "secrets.js": RUNS.medium,
  });
});

describe("decodeShare / decodeShares", () => {
  it("bytes or ShamirError, for any text and every encoding option", async () => {
    await fc.assert(
      fc.asyncProperty(shareText, fc.constantFrom("auto", "hex", "base64") as fc.Arbitrary<"auto">, async (t, enc) => {
        tick("decodeShare");
        const out = await attempt(() => decodeShare(t, { encoding: enc }));
        expectWellBehaved(out, { allowed: [ShamirError], input: t });
        if (out.ok) expect(out.value).toBeInstanceOf(Uint8Array);
      }),
      params("decodeShare", RUNS.light),
    );
  });

  it("never repeats a secret-looking input in its error", async () => {
    await fc.assert(
      fc.asyncProperty(embedded(secretArb), async ({ input, secret }) => {
        tick("decodeShare");
        expectWellBehaved(await attempt(() => decodeShare(input, { encoding: "hex" })), {
          allowed: [ShamirError],
          secrets: [secret],
          input,
        });
      }),
      params("decodeShare secret", RUNS.medium),
    );
  });

  it("sets of shares: bytes or ShamirError naming the share (1-based)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(shareText, { maxLength: 8 }), async (texts) => {
        tick("decodeShares");
        const out = await attempt(() => decodeShares(texts));
        expectWellBehaved(out, { allowed: [ShamirError], input: texts });
        if (!out.ok) {
          const i = (out.error as ShamirError).shareIndex;
          expect(i).toBeGreaterThanOrEqual(1);
          expect(i).toBeLessThanOrEqual(texts.length);
        } else expect(out.value).toHaveLength(texts.length);
      }),
      params("decodeShares", RUNS.medium),
    );
  });

  it("1 MiB of near-hex is refused quickly", async () => {
    const big = `${"ab".repeat(1 << 19)}z`;
    tick("decodeShare");
    expectWellBehaved(await attempt(() => decodeShare(big)), { allowed: [ShamirError], boundMs: 2000 });
  });
});

describe("parseKeyShare", () => {
  it("a KeyShare of 16..33 bytes, or a UsageError naming the origin and never the share", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          shareText,
          embedded(secretArb).map((e) => e.input),
        ),
        async (t) => {
          tick("parseKeyShare");
          const out = await attempt(() => parseKeyShare(t, "stdin line 7", "alice"));
          expectWellBehaved(out, {
            allowed: [UsageError],
            secrets: t.trim().length >= 16 ? [t.trim()] : [],
            input: t,
          });
          if (out.ok) {
            expect(out.value.bytes.length).toBeGreaterThanOrEqual(16);
            expect(out.value.bytes.length).toBeLessThanOrEqual(33);
            expect(out.value.fingerprint).toMatch(/^[0-9a-f]{16}$/);
          } else expect((out.error as Error).message).toContain("stdin line 7");
        },
      ),
      params("parseKeyShare", RUNS.light),
    );
  });

  it("a real share with one character changed is refused without being echoed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 65 }), fc.constantFrom("g", "Z", "!", " ", "é", "\0"), async (at, ch) => {
        tick("parseKeyShare");
        const hex = realShares[1]!.toString("hex");
        const bad = hex.slice(0, at) + ch + hex.slice(at + 1);
        const out = await attempt(() => parseKeyShare(bad, "prompt"));
        // " " in the middle is not trimmed away: refused too
        expect(out.ok).toBe(false);
        expectWellBehaved(out, { allowed: [UsageError], secrets: [bad, hex.slice(0, 32), hex.slice(34)], input: bad });
      }),
      params("parseKeyShare corrupted", RUNS.medium),
    );
  });
});

describe("secrets.js shares", () => {
  it("a secret, or a ShamirError naming the share; never a library exception", async () => {
    const mod = (await import("secrets.js-grempe")) as unknown as {
      default: {
        share(hex: string, n: number, t: number): string[];
        setRNG(rng?: ((bits: number) => string) | string): boolean;
      };
    };
    // the library's own RNG draws the coefficients: seed it too (test fixture), then put its default back
    let drawn = 0;
    mod.default.setRNG((bits) =>
      Array.from(fixtureBytes(`secrets.js rng ${drawn++}`, bits), (b) => (b & 1 ? "1" : "0")).join(""),
    );
    const legit = mod.default.share(fixtureBytes("secrets.js secret", 32).toString("hex"), 5, 3);
    mod.default.setRNG();
    const one = fc.oneof(mutatedText(legit), junkString, fc.constantFrom(...legit));
    await fc.assert(
      fc.asyncProperty(fc.array(one, { maxLength: 6 }), async (shares) => {
        tick("secrets.js");
        const out = await attempt(() => combineSecretsJsShares(shares));
        expectWellBehaved(out, { allowed: [ShamirError], input: shares });
      }),
      params("secrets.js", RUNS.medium),
    );
  });
});
