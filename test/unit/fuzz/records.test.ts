/**
 * Fuzz: the records a ceremony leaves behind and later reads back, possibly after someone edited them: manifest.json
 * (validateManifest, readManifest) and transcript.jsonl (verifyTranscriptText, Transcript.open).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc } from "@fast-check/vitest";
import { afterAll, describe, expect, it, vi } from "vitest";
import { fingerprintShare, Transcript, verifyTranscriptText } from "../../../src/ceremony/transcript.js";
import { UsageError } from "../../../src/errors.js";
import { StoreError } from "../../../src/store/errors.js";
import { buildManifest, readManifest, validateManifest } from "../../../src/store/manifest.js";
import {
  anySecretArb,
  attempt,
  DEEP,
  expectNoSecret,
  expectWellBehaved,
  fixtureBytes,
  junkString,
  mutated,
  mutatedText,
  params,
  RUNS,
  reportCounts,
  secretArb,
  slippedSecrets,
  tick,
} from "./fuzz-kit.js";

// seeds are made at load time: the arbitraries below are built from them when the file is collected
const dir = mkdtempSync(join(tmpdir(), "sk-fuzz-records-"));
let fileNo = 0;
const { manifestText, transcriptText } = makeSeeds();

/** The seed files; under FUZZ_SEED the same bytes every run (fixed shares and clock), so a replay mutates the same. */
function makeSeeds(): { manifestText: string; transcriptText: string } {
  vi.useFakeTimers({ toFake: ["Date"], now: Date.UTC(2026, 0, 1) });
  try {
    return writeSeeds();
  } finally {
    vi.useRealTimers();
  }
}

function writeSeeds(): { manifestText: string; transcriptText: string } {
  const share = (i: number) => new Uint8Array([...fixtureBytes(`records share ${i}`, 32), i]);
  const manifest = buildManifest({
    shareDigestSalt: fixtureBytes("records salt", 32).toString("hex"),
    node: "https://127.0.0.1:8200",
    kind: "unseal",
    threshold: 2,
    shares: 3,
    operators: ["alice", "bob", "carol"].map((name, i) => ({
      name,
      recipient: { type: i === 2 ? "age" : "pgp", fingerprint: i === 2 ? "age1qqqq" : "AB".repeat(20) },
      file: `${name}.${i === 2 ? "age" : "asc"}`,
      fileSha256: "0".repeat(64),
      sealedBy: i === 0 ? "server" : "client",
      share: i === 0 ? undefined : share(i + 1),
    })),
    rootToken: {
      file: "root-token.asc",
      fileSha256: "1".repeat(64),
      recipient: { type: "pgp", fingerprint: "CD".repeat(20) },
      sealedBy: "server",
    },
  });
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  const path = join(dir, "seed.jsonl");
  const t = Transcript.open(path);
  t.append({ action: "init-start", node: "https://127.0.0.1:8200", threshold: 2, detail: "unseal shares 2/3" });
  for (const op of ["alice", "bob"]) {
    t.append({ action: "unseal-share", operator: op, shareFingerprint: fingerprintShare(share(1)), progress: 1 });
  }
  t.append({ action: "unseal-end", node: "https://127.0.0.1:8200", detail: "unsealed" });
  return { manifestText, transcriptText: readFileSync(path, "utf8") };
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  reportCounts({ validateManifest: RUNS.light, readManifest: RUNS.medium, verifyTranscript: RUNS.light });
});

/** A JSON text with `secret` put where a field name or a value was (or anywhere): a hand edit gone wrong. */
function jsonSlip(text: string): fc.Arbitrary<Slipped> {
  return fc
    .tuple(fc.nat(), anySecretArb, fc.boolean(), fc.array(fc.nat(), { maxLength: 2 }))
    .map(([at, secret, raw, cuts]) => {
      const quoted = [...text.matchAll(/"(?:[^"\\]|\\.)*"|-?\b\d+\b/g)];
      let t: string;
      if (raw || quoted.length === 0) {
        const i = at % (text.length + 1);
        t = text.slice(0, i) + secret + text.slice(i);
      } else {
        // a string (a field name or a value) or a number replaced by the secret as a JSON string
        const m = quoted[at % quoted.length]!;
        t = text.slice(0, m.index!) + JSON.stringify(secret) + text.slice(m.index! + m[0].length);
      }
      // and sometimes a byte cut elsewhere, so the slipped file is damaged in a second place too
      for (const c of cuts) t = t.slice(0, c % (t.length + 1)) + t.slice((c % (t.length + 1)) + 1);
      return { text: t, secret };
    });
}

/**
 * A record's text, and the secret slipped into it if any: what an error must not repeat is that secret
 * (slippedSecrets), not the secret-shaped public hashes of the record itself. Junk (no structure) keeps the shapes.
 */
interface Slipped {
  text: string;
  secret?: string;
  junk?: boolean;
}
const plain = (a: fc.Arbitrary<string>): fc.Arbitrary<Slipped> => a.map((text) => ({ text }));
const junk = (a: fc.Arbitrary<string>): fc.Arbitrary<Slipped> => a.map((text) => ({ text, junk: true }));
const forbidden = (s: Slipped, seed: string) =>
  s.junk ? { input: s.text } : { secrets: slippedSecrets(s.secret, seed) };

describe("manifest", () => {
  /** JSON values shaped like a manifest, with fields swapped for anything. */
  const jsonish = fc.jsonValue({ maxDepth: 4 });
  const shaped = fc
    .tuple(fc.constantFrom(...Object.keys(JSON.parse(manifestText))), jsonish)
    .map(([key, v]) => ({ ...JSON.parse(manifestText), [key]: v }));
  /** A manifest with one field's value, or an operator's field, replaced by a secret (or a key named by one). */
  const withSecret = fc.tuple(fc.nat(), secretArb, fc.boolean(), fc.boolean()).map(([i, secret, inOperator, asKey]) => {
    const m = JSON.parse(manifestText);
    const target = inOperator ? m.operators[i % m.operators.length] : m;
    const keys = Object.keys(target);
    const key = keys[i % keys.length]!;
    if (asKey) target[secret] = target[key];
    else target[key] = secret;
    return m;
  });
  it("validateManifest: a manifest or a StoreError, for any JSON value; never a secret repeated", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(jsonish, shaped, withSecret, fc.anything()), async (v) => {
        tick("validateManifest");
        let input: string;
        try {
          input = JSON.stringify(v) ?? "";
        } catch {
          input = String(v);
        }
        expectWellBehaved(await attempt(() => validateManifest(v)), { allowed: [StoreError], input });
      }),
      params("validateManifest", RUNS.light),
    );
  });

  it("readManifest: a manifest or a StoreError, for any file content", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(plain(mutatedText([manifestText])), jsonSlip(manifestText), junk(junkString)),
        async (s) => {
          tick("readManifest");
          const file = join(dir, `m${fileNo++ % 8}.json`);
          writeFileSync(file, s.text);
          const out = await attempt(() => readManifest(file));
          expectWellBehaved(out, { allowed: [StoreError], ...forbidden(s, manifestText) });
        },
      ),
      params("readManifest", RUNS.medium),
    );
  });

  it("the seed validates (mutations start from a working manifest)", () => {
    expect(validateManifest(JSON.parse(manifestText)).operators).toHaveLength(3);
  });
});

describe("transcript", () => {
  const nested = (depth: number) =>
    JSON.stringify({ action: "x", seq: 1, prev: "0".repeat(64), hash: "h" }).replace(
      '"x"',
      `${"[".repeat(depth)}${"]".repeat(depth)}`,
    );
  const text = fc.oneof(
    plain(mutatedText([transcriptText])),
    plain(mutated([new Uint8Array(Buffer.from(transcriptText))]).map((b) => Buffer.from(b).toString("latin1"))),
    junk(junkString),
    junk(fc.jsonValue({ maxDepth: 3 }).map((v) => `${JSON.stringify(v)}\n`)),
    { arbitrary: plain(fc.integer({ min: 1, max: 50_000 }).map(nested)), weight: 1 },
    jsonSlip(transcriptText),
  );
  it("verifyTranscriptText never throws: ok with a count, or the first bad line (never repeating a secret)", async () => {
    await fc.assert(
      fc.asyncProperty(
        text,
        fc.option(fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 })),
        async (s, last) => {
          tick("verifyTranscript");
          const out = await attempt(() => verifyTranscriptText(s.text, last ?? undefined));
          expectWellBehaved(out, { allowed: [] });
          if (out.ok && !out.value.ok) {
            expect(out.value.line).toBeGreaterThanOrEqual(0);
            expectNoSecret(out.value.error, forbidden(s, transcriptText));
          }
        },
      ),
      params("verifyTranscriptText", RUNS.light - (DEEP ? 0 : RUNS.medium)),
    );
  });

  it("Transcript.open refuses a damaged file with a UsageError and never extends it", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(plain(mutatedText([transcriptText])), jsonSlip(transcriptText)), async (s) => {
        tick("verifyTranscript");
        const file = join(dir, `t${fileNo++ % 8}.jsonl`);
        writeFileSync(file, s.text);
        const out = await attempt(() => Transcript.open(file));
        expectWellBehaved(out, { allowed: [UsageError], ...forbidden(s, transcriptText) });
        if (!out.ok) expect(readFileSync(file, "utf8")).toBe(s.text);
      }),
      params("Transcript.open", RUNS.medium),
    );
  });

  it("the seed verifies, and a line with 100 000 nested arrays does not crash the verifier", () => {
    expect(verifyTranscriptText(transcriptText)).toMatchObject({ ok: true, lines: 4 });
    expect(verifyTranscriptText(`${nested(100_000)}\n`)).toMatchObject({ ok: false, line: 1 });
  });
});
