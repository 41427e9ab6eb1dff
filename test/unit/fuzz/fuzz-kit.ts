/**
 * Shared pieces of the parser fuzz tests (test/unit/fuzz/*.test.ts): input generators (junk, near-valid mutations,
 * secrets embedded in junk), the outcome check (a value, a documented null, or one of OUR typed errors; never a
 * TypeError/RangeError/library error), a time bound per case, and the no-echo check (an error never repeats a
 * secret-looking input in full). Each file counts the cases it ran; the counts are printed and copied into
 * docs/security.md.
 */
import { randomBytes } from "node:crypto";
import { fc } from "@fast-check/vitest";
import { expect } from "vitest";
import { SealkeeperError } from "../../../src/errors.js";

/** How many cases each property runs. Heavier (crypto) parsers run fewer. Printed by `reportCounts`. */
export const RUNS = { light: 2000, medium: 500, crypto: 300 } as const;

/** A case that takes longer than this is a hang for our purposes (inputs up to 1 MiB; generous because unit files run in parallel on 2 cores). */
export const CASE_BOUND_MS = 5000;

const counts = new Map<string, number>();

/** Counts one case of `parser`. */
export function tick(parser: string): void {
  counts.set(parser, (counts.get(parser) ?? 0) + 1);
}

/** Prints `fuzz cases: parser=N ...` (the figures in docs/security.md) and checks each ran at least `min` cases. */
export function reportCounts(min: Record<string, number>): void {
  const line = [...counts.entries()].map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`fuzz cases: ${line}`);
  for (const [parser, n] of Object.entries(min)) expect(counts.get(parser) ?? 0, parser).toBeGreaterThanOrEqual(n);
}

export type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; error: unknown; ms: number };

/** Runs `fn`, never letting an exception escape; times it. */
export async function attempt<T>(fn: () => T | Promise<T>): Promise<Outcome<T>> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ok: true, value, ms: performance.now() - start };
  } catch (error) {
    return { ok: false, error, ms: performance.now() - start };
  }
}

/**
 * The property every parser must keep: it returned, or threw one of our typed errors (`allowed`, default any
 * SealkeeperError), within the time bound; and an error's message and hint contain none of `secrets` (compared
 * case-insensitively: bech32 and hex are case-insensitive, so a lower-cased secret is still the secret).
 */
export function expectWellBehaved<T>(
  outcome: Outcome<T>,
  opts: { secrets?: string[]; allowed?: (abstract new (...args: never[]) => Error)[]; boundMs?: number } = {},
): void {
  expect(outcome.ms).toBeLessThan(opts.boundMs ?? CASE_BOUND_MS);
  if (outcome.ok) return;
  const err = outcome.error;
  const allowed = opts.allowed ?? [SealkeeperError];
  if (!allowed.some((cls) => err instanceof cls)) {
    throw new Error(`untyped error escaped: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
  }
  const text = `${(err as SealkeeperError).message}\n${(err as SealkeeperError).hint ?? ""}`.toLowerCase();
  for (const s of opts.secrets ?? []) {
    if (s.length >= 16) expect(text.includes(s.toLowerCase()), `error echoes a secret: ${text}`).toBe(false);
  }
}

// ---- secrets -----------------------------------------------------------------------------------------------------

const BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/** A fresh random 33-byte unseal share in the forms the server accepts, an age secret key, a Vault token, an OTP. */
export function freshSecrets(): { shareHex: string; shareB64: string; ageSecret: string; token: string; otp: string } {
  const share = randomBytes(33);
  const bech = Array.from(randomBytes(58), (b) => BECH32[b % 32]).join("");
  return {
    shareHex: share.toString("hex"),
    shareB64: share.toString("base64"),
    ageSecret: `AGE-SECRET-KEY-1${bech.toUpperCase()}`,
    token: `hvs.${randomBytes(18).toString("base64url")}`,
    otp: randomBytes(21).toString("base64url").slice(0, 28),
  };
}

/** One secret-looking string, drawn by fast-check (so shrinking works) from the shapes above. */
export const secretArb: fc.Arbitrary<string> = fc.oneof(
  fc.uint8Array({ minLength: 33, maxLength: 33 }).map((b) => Buffer.from(b).toString("hex")),
  fc.uint8Array({ minLength: 33, maxLength: 33 }).map((b) => Buffer.from(b).toString("base64")),
  fc
    .array(fc.constantFrom(...BECH32.split("")), { minLength: 58, maxLength: 58 })
    .map((c) => `AGE-SECRET-KEY-1${c.join("").toUpperCase()}`),
  fc.uint8Array({ minLength: 18, maxLength: 24 }).map((b) => `hvs.${Buffer.from(b).toString("base64url")}`),
);

// ---- junk and mutations ------------------------------------------------------------------------------------------

/** Strings likely to break naive parsers: control characters, unicode, NUL, long runs, separators. */
export const junkString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.string({ unit: "binary", maxLength: 80 }),
  fc.constantFrom("", " ", "\n", "\r\n", "\0", "=", ":", "-", "#", "\ufeff", "%00", "../", "\\", "'", '"', "{", "["),
  fc.string({ unit: fc.constantFrom("0", "f", "A", "=", "+", "/", " ", "\n", "-", ":"), maxLength: 120 }),
);

type Edit = { at: number; kind: "flip" | "delete" | "insert" | "truncate" | "duplicate"; byte: number; len: number };
const editArb: fc.Arbitrary<Edit> = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("flip", "delete", "insert", "truncate", "duplicate"),
  byte: fc.integer({ min: 0, max: 255 }),
  len: fc.integer({ min: 1, max: 16 }),
});

/** Applies byte-level edits to a valid input: near-valid inputs reach the deep branches that junk never does. */
export function applyEdits(input: Uint8Array, edits: Edit[]): Uint8Array {
  let b = Buffer.from(input);
  for (const e of edits) {
    if (b.length === 0) break;
    const at = e.at % b.length;
    if (e.kind === "flip") b[at] = b[at]! ^ (e.byte || 1);
    else if (e.kind === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
    else if (e.kind === "insert") b = Buffer.concat([b.subarray(0, at), Buffer.alloc(e.len, e.byte), b.subarray(at)]);
    else if (e.kind === "truncate") b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at + e.len), b.subarray(at)]);
  }
  return new Uint8Array(b);
}

/** Mutations of one of `seeds` (bytes), 1-4 edits each; sometimes the seed itself. */
export function mutated(seeds: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.nat({ max: seeds.length - 1 }), fc.array(editArb, { minLength: 0, maxLength: 4 }))
    .map(([i, edits]) => applyEdits(seeds[i]!, edits));
}

/** Same, for text seeds (mutations may produce invalid UTF-8, decoded with replacement characters). */
export function mutatedText(seeds: string[]): fc.Arbitrary<string> {
  return mutated(seeds.map((s) => new Uint8Array(Buffer.from(s, "utf8")))).map((b) => Buffer.from(b).toString("utf8"));
}

/** `secret` buried in junk: what a user pastes in the wrong place. */
export function embedded(secret: fc.Arbitrary<string>): fc.Arbitrary<{ input: string; secret: string }> {
  return fc
    .tuple(fc.string({ maxLength: 12 }), secret, fc.string({ maxLength: 12 }))
    .map(([a, s, b]) => ({ input: `${a}${s}${b}`, secret: s }));
}
