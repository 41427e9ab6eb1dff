/**
 * Shared pieces of the parser fuzz tests (test/unit/fuzz/*.test.ts): input generators (junk, near-valid mutations,
 * secrets embedded in junk and slipped into YAML), the outcome check (a value, a documented null, or one of OUR typed
 * errors; never a TypeError/RangeError/library error), a time bound per case, and the no-echo check (an error never
 * repeats a secret-shaped substring of its input). Each file counts the cases it ran; the counts are printed and
 * copied into docs/security.md.
 *
 * Depth: the suite (`npm test`) runs RUNS_FAST. `npm run fuzz:deep` (scripts/fuzz-deep.ts) sets FUZZ_DEPTH=deep for
 * RUNS_DEEP, FUZZ_SCALE (a fraction of the deep depth; CI runs a slice) and FUZZ_SEED: every property's fast-check
 * seed and the share, manifest and transcript fixtures are derived from it, so `FUZZ_SEED=n npm run fuzz:deep`
 * replays those runs exactly. OpenPGP and age keys cannot be seeded (openpgp.js draws from Node's own generators):
 * ciphers.test.ts makes new ones each run, and a failure there is replayed from the counterexample fast-check prints
 * in full (the bytes of the damaged key or message).
 */
import { createHash, randomBytes } from "node:crypto";
import { fc } from "@fast-check/vitest";
import { expect, vi } from "vitest";
import { SealkeeperError } from "../../../src/errors.js";

/** The suite's depth: cases per property. Heavier (crypto) parsers run fewer. */
export const RUNS_FAST = { light: 2000, medium: 500, crypto: 300 } as const;
/** The deep run's depth (`npm run fuzz:deep`): every parser >= 100 000 cases; crypto as deep as ~20 min allows. */
export const RUNS_DEEP = { light: 100_000, medium: 100_000, crypto: 4000 } as const;

const deep = process.env.FUZZ_DEPTH === "deep";
/** True in `npm run fuzz:deep` (FUZZ_DEPTH=deep). */
export const DEEP = deep;
const scale = deep ? Number(process.env.FUZZ_SCALE ?? "1") : 1;
if (!(scale > 0 && scale <= 1)) throw new Error(`FUZZ_SCALE must be in (0, 1], got ${process.env.FUZZ_SCALE}`);
const base = deep ? RUNS_DEEP : RUNS_FAST;
/** How many cases each property runs at this depth. Printed by `reportCounts`. */
export const RUNS = {
  light: Math.max(1, Math.round(base.light * scale)),
  medium: Math.max(1, Math.round(base.medium * scale)),
  crypto: Math.max(1, Math.round(base.crypto * scale)),
};

/** The run's seed (FUZZ_SEED), or undefined: fast-check then picks one per property and prints it on failure. */
export const FUZZ_SEED: number | undefined =
  process.env.FUZZ_SEED === undefined || process.env.FUZZ_SEED === "" ? undefined : Number(process.env.FUZZ_SEED);
if (FUZZ_SEED !== undefined && !Number.isSafeInteger(FUZZ_SEED)) {
  throw new Error(`FUZZ_SEED must be an integer, got ${process.env.FUZZ_SEED}`);
}

// a property at deep depth runs for many minutes; at the suite's depth, generous for a loaded 2-core machine
vi.setConfig({ testTimeout: deep ? 4 * 3600_000 : 180_000, hookTimeout: deep ? 600_000 : 120_000 });

/** A 32-bit seed for one property (or fixture) derived from FUZZ_SEED and its name: properties do not share inputs. */
function derivedSeed(name: string): number {
  return createHash("sha256").update(`${FUZZ_SEED}\0${name}`).digest().readInt32LE(0);
}

/** fast-check parameters for a property named `name`: its runs, and its seed when FUZZ_SEED is set. */
export function params(name: string, numRuns: number): { numRuns: number; seed?: number } {
  return FUZZ_SEED === undefined ? { numRuns } : { numRuns, seed: derivedSeed(name) };
}

/**
 * Random bytes for fixtures (the seeds the mutations start from): derived from FUZZ_SEED and `name` when it is set,
 * so a replayed run mutates the same fixtures; else crypto-random. Test fixtures only: nothing made here protects
 * anything.
 */
export function fixtureBytes(name: string, n: number): Buffer {
  if (FUZZ_SEED === undefined) return randomBytes(n);
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; off += 32, i++) {
    createHash("sha256")
      .update(`${FUZZ_SEED}\0${name}\0${i}`)
      .digest()
      .copy(out, off, 0, Math.min(32, n - off));
  }
  return out;
}

/**
 * A case that takes longer than this is a hang for our purposes (inputs up to 1 MiB; generous because the fuzz files
 * run two at a time on a shared 2-core machine that other test suites and builds load too: at a load of 30, a
 * 4 MB YAML attack took over 5 s).
 */
export const CASE_BOUND_MS = 15_000;

const counts = new Map<string, number>();
/** Milliseconds spent per parser: from one tick of it to the next tick of any parser in this file (or the report). */
const spent = new Map<string, number>();
let lastTick: { parser: string; at: number } | undefined;

function charge(now: number): void {
  if (lastTick) spent.set(lastTick.parser, (spent.get(lastTick.parser) ?? 0) + (now - lastTick.at));
}

/** Counts one case of `parser`. */
export function tick(parser: string): void {
  const now = performance.now();
  charge(now);
  lastTick = { parser, at: now };
  counts.set(parser, (counts.get(parser) ?? 0) + 1);
}

/**
 * Prints `fuzz cases: parser=N ...` (the figures in docs/security.md) and `fuzz seconds: parser=S ...` (collected by
 * scripts/fuzz-deep.ts), and checks each parser ran at least `min` cases.
 */
export function reportCounts(min: Record<string, number>): void {
  charge(performance.now());
  lastTick = undefined;
  const line = [...counts.entries()].map(([k, v]) => `${k}=${v}`).join(" ");
  console.log(`fuzz cases: ${line}`);
  console.log(`fuzz seconds: ${[...spent.entries()].map(([k, v]) => `${k}=${(v / 1000).toFixed(1)}`).join(" ")}`);
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
 * SealkeeperError), within the time bound; and an error's message and hint repeat none of `secrets` nor any
 * secret-shaped substring of `input` (secretsIn), compared case-insensitively: bech32 and hex are case-insensitive,
 * so a lower-cased secret is still the secret.
 */
export function expectWellBehaved<T>(
  outcome: Outcome<T>,
  opts: {
    secrets?: string[];
    input?: string | Uint8Array | (string | Uint8Array)[];
    allowed?: (abstract new (...args: never[]) => Error)[];
    boundMs?: number;
  } = {},
): void {
  expect(outcome.ms).toBeLessThan(opts.boundMs ?? CASE_BOUND_MS);
  if (outcome.ok) return;
  const err = outcome.error;
  const allowed = opts.allowed ?? [SealkeeperError];
  if (!allowed.some((cls) => err instanceof cls)) {
    throw new Error(`untyped error escaped: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err });
  }
  const text = `${(err as SealkeeperError).message}\n${(err as SealkeeperError).hint ?? ""}`;
  expectNoSecret(text, opts);
  // a control character from the input, echoed raw, would act on the terminal that shows the error
  expect(
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(text),
    `raw control character: ${JSON.stringify(text)}`,
  ).toBe(false);
}

/** `text` (an error message, a returned error string) repeats none of `secrets` nor a secret-shaped part of `input`. */
export function expectNoSecret(
  text: string,
  opts: { secrets?: string[]; input?: string | Uint8Array | (string | Uint8Array)[] },
): void {
  const lower = text.toLowerCase();
  const inputs = opts.input === undefined ? [] : Array.isArray(opts.input) ? opts.input : [opts.input];
  const found = [...(opts.secrets ?? []), ...inputs.flatMap((i) => secretsIn(i))];
  for (const s of found) {
    if (s.length >= 16) expect(lower.includes(s.toLowerCase()), `error repeats a secret (${s}): ${text}`).toBe(false);
  }
}

/**
 * What an error about a record (a manifest, a transcript: files that hold no secret, only public hashes, fingerprints
 * and sequence numbers) must not repeat when `secret` was slipped into it: the secret itself and its secret-shaped
 * parts (secretsIn), minus any part the unmodified `seed` already holds. Those are the record's own public structure
 * (a zero hash, a fingerprint), which a message may quote; searching the whole input's secret shapes instead flagged
 * "0000000000000000", a mutated sequence number, as a secret (fuzz:deep seed 68079496).
 */
export function slippedSecrets(secret: string | undefined, seed: string): string[] {
  if (secret === undefined) return [];
  const structure = seed.toLowerCase();
  return [secret, ...secretsIn(secret)].filter((s) => !structure.includes(s.toLowerCase()));
}

/**
 * Every secret-shaped substring of `input` (text, or bytes read as UTF-8 and as latin1): age secret keys in any case,
 * Vault/OpenBao tokens (hvs./hvb./hvr. and the legacy s./b./r.), shares and keys in hex (32+ digits) and base64
 * (40+ characters, mixed case), and the body of a PGP private key block. What an error must never repeat; the same
 * shapes src/util/redact.ts cuts. For a long run, each part of 16 characters is searched (a cut that kept 40 of 66
 * hex digits would be half the share).
 */
export function secretsIn(input: string | Uint8Array): string[] {
  const raw =
    typeof input === "string" ? [input] : [Buffer.from(input).toString("utf8"), Buffer.from(input).toString("latin1")];
  // age1... recipients are public, also when a mutation mangled them ("age1^Aj8c...")
  const texts = raw.map((t) => t.replace(/age1\S*/gi, " "));
  const out = new Set<string>();
  for (const t of texts) {
    for (const re of SECRET_SHAPES) {
      for (const m of t.matchAll(re)) {
        const s = m[0];
        const isB64 = re === B64_SHAPE;
        if (isB64 && !mixedCase(s)) continue; // random base64 is mixed case
        out.add(s);
        // the parts around the recognisable (public) prefixes, in windows: none of them may be repeated. A window of
        // a token or base64 run counts when it looks random (mixed case, no run of 5 lower-case letters), so a
        // secret run into a word ("hvs.AAAAsealkeeper-ceremony-manifest", "...recipientFingerprint") does not make
        // the word a secret
        const random = isB64 || re === TOKEN_SHAPE ? randomLooking : () => true;
        for (const part of s.split(/AGE-SECRET-KEY-1|hv[sbr]\.|\b[sbr]\./i)) {
          for (let i = 0; i + 16 <= part.length; i += 8) addWindow(part.slice(i, i + 16), random);
          if (part.length >= 16) addWindow(part.slice(-16), random);
        }
      }
    }
    for (const m of t.matchAll(
      /-----BEGIN PGP PRIVATE KEY BLOCK-----([\s\S]*?)(?:-----END PGP PRIVATE KEY BLOCK-----|$)/g,
    )) {
      for (const line of m[1]!.split(/\r?\n/))
        if (line.trim().length >= 16) addWindow(line.trim().slice(0, 16), randomLooking);
    }
  }
  return [...out];

  function addWindow(w: string, random: (w: string) => boolean): void {
    if (random(w)) out.add(w);
  }
}
const mixedCase = (s: string) => /[a-z]/.test(s) && /[A-Z]/.test(s);
// ...and varied: 16 random base64 characters have about 14 distinct ones; "qqqqQQQQQQQQqqqq" is one letter, which
// case-folded matches any run of 16 q's (a false positive seen at fuzz:deep seed 904836828)
const randomLooking = (w: string) => mixedCase(w) && !/[a-z]{5}/.test(w) && new Set(w.toLowerCase()).size >= 6;
const B64_SHAPE = /[A-Za-z0-9+/_-]{40,}={0,2}/g;
// a legacy s./b./r. token starts a word; after a backslash the letter is an escape in the raw text (YAML's "\\b.A"
// is a backspace and ".A", not a batch token), so it is not one there
const TOKEN_SHAPE = /(?:hv[sbr]|(?<!\\)\b[sbr])\.[A-Za-z0-9_-]{16,}/g;
const SECRET_SHAPES = [
  // the bech32 alphabet only (case-insensitive): a key run into a word ("...QQQrecipientFingerprint") stops there
  /AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{16,}/gi,
  TOKEN_SHAPE,
  /[0-9a-fA-F]{32,}/g,
  B64_SHAPE,
];

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

const b64 = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString("base64"));
const b64url = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString("base64url"));
const bech32 = fc.array(fc.constantFrom(...BECH32.split("")), { minLength: 58, maxLength: 58 }).map((c) => c.join(""));

/** A PGP private key block's shape: armor header, base64 lines of 64, a checksum, the footer. */
export const pgpPrivateBlockArb: fc.Arbitrary<string> = fc
  .tuple(fc.uint8Array({ minLength: 100, maxLength: 400 }), fc.uint8Array({ minLength: 3, maxLength: 3 }))
  .map(([body, crc]) => {
    const lines = Buffer.from(body)
      .toString("base64")
      .match(/.{1,64}/g)!;
    return `-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n${lines.join("\n")}\n=${Buffer.from(crc).toString("base64")}\n-----END PGP PRIVATE KEY BLOCK-----\n`;
  });

/**
 * One secret-looking string on one line, drawn by fast-check (so shrinking works): an unseal share in hex and base64,
 * an age secret key (upper, lower or mixed case), a Vault/OpenBao token (hvs./hvb./s./b.).
 */
export const secretArb: fc.Arbitrary<string> = fc.oneof(
  fc.uint8Array({ minLength: 33, maxLength: 33 }).map((b) => Buffer.from(b).toString("hex")),
  b64(33),
  fc
    .tuple(bech32, fc.constantFrom("upper", "lower", "mixed"))
    .map(([c, k]) =>
      k === "upper"
        ? `AGE-SECRET-KEY-1${c.toUpperCase()}`
        : k === "lower"
          ? `age-secret-key-1${c}`
          : `AGE-SECRET-KEY-1${c}`,
    ),
  b64url(18, 24).map((t) => `hvs.${t}`),
  b64url(18, 24).map((t) => `hvb.${t}`),
  b64url(18, 18).map((t) => `s.${t}`),
  b64url(18, 18).map((t) => `b.${t}`),
);

/** Any secret, including multi-line ones (a PGP private key block). */
export const anySecretArb: fc.Arbitrary<string> = fc.oneof(
  { arbitrary: secretArb, weight: 6 },
  { arbitrary: pgpPrivateBlockArb, weight: 1 },
);

/**
 * A YAML slip: `secret` put into one line of `text` (a valid file) where the parser does not expect it: as a
 * mapping key, a value, a tag, an anchor, an alias, a comment, a block scalar header, a directive, a flow item,
 * or a whole line. Multi-line secrets go in as a block or a comment block.
 */
export function yamlSlip(seeds: string[]): fc.Arbitrary<string> {
  const forms = [
    (s: string, ind: string) => `${ind}${s}: x`,
    (s: string, ind: string) => `${ind}${s}:`,
    (s: string, ind: string) => `${ind}? ${s}\n${ind}: x`,
    (s: string, ind: string) => `${ind}x: ${s}`,
    (s: string, ind: string) => `${ind}x: !${s} y`,
    (s: string, ind: string) => `${ind}x: !<${s}> y`,
    (s: string, ind: string) => `${ind}x: &${s} y`,
    (s: string, ind: string) => `${ind}x: *${s}`,
    (s: string, ind: string) => `${ind}&${s} x: y`,
    (s: string, ind: string) => `${ind}# ${s}`,
    (s: string, ind: string) => `${ind}x: y # ${s}`,
    (s: string, ind: string) => `${ind}x: |${s}\n${ind}  y`,
    (s: string, ind: string) => `${ind}x: >-${s}`,
    (s: string, ind: string) => `${ind}- ${s}`,
    (s: string, ind: string) => `${ind}- {${s}: 1}`,
    (s: string, ind: string) => `${ind}[${s}]`,
    (s: string, ind: string) => `${ind}x: "${s}`,
    (s: string, ind: string) => `${ind}x: '${s}' z`,
    (s: string, ind: string) => `${ind}${s}`,
    (s: string) => `%${s} 1`,
    (s: string) => `%TAG !${s}! tag:x,2000:\n---`,
    (s: string) => `--- !${s}`,
  ];
  return fc
    .tuple(
      fc.nat({ max: seeds.length - 1 }),
      fc.nat(),
      fc.nat({ max: forms.length - 1 }),
      anySecretArb,
      fc.constantFrom("", "  ", "    ", "      ", "\t"),
      fc.boolean(),
    )
    .map(([i, at, f, secret, ind, replace]) => {
      const lines = seeds[i]!.split("\n");
      const n = at % (lines.length + 1);
      const one = secret.includes("\n")
        ? // a block: as a block scalar value, or commented out line by line
          f % 2 === 0
          ? `${ind}x: |\n${secret
              .trimEnd()
              .split("\n")
              .map((l) => `${ind}  ${l}`)
              .join("\n")}`
          : secret
              .trimEnd()
              .split("\n")
              .map((l) => `${ind}# ${l}`)
              .join("\n")
        : forms[f]!(secret, ind);
      lines.splice(n, replace ? 1 : 0, one);
      return lines.join("\n");
    });
}

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
