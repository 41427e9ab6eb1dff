/**
 * Fuzz: the records a ceremony leaves behind and later reads back, possibly after someone edited them: manifest.json
 * (validateManifest, readManifest) and transcript.jsonl (verifyTranscriptText, Transcript.open).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { fingerprintShare, Transcript, verifyTranscriptText } from "../../../src/ceremony/transcript.js";
import { UsageError } from "../../../src/errors.js";
import { StoreError } from "../../../src/store/errors.js";
import { buildManifest, readManifest, validateManifest } from "../../../src/store/manifest.js";
import { attempt, expectWellBehaved, junkString, mutated, mutatedText, RUNS, reportCounts, tick } from "./fuzz-kit.js";

// seeds are made at load time: the arbitraries below are built from them when the file is collected
const dir = mkdtempSync(join(tmpdir(), "sk-fuzz-records-"));
let fileNo = 0;
const { manifestText, transcriptText } = makeSeeds();

function makeSeeds(): { manifestText: string; transcriptText: string } {
  const share = (i: number) => new Uint8Array([...randomBytes(32), i]);
  const manifest = buildManifest({
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

describe("manifest", () => {
  /** JSON values shaped like a manifest, with fields swapped for anything. */
  const jsonish = fc.jsonValue({ maxDepth: 4 });
  const shaped = fc
    .tuple(fc.constantFrom(...Object.keys(JSON.parse(manifestText))), jsonish)
    .map(([key, v]) => ({ ...JSON.parse(manifestText), [key]: v }));
  it("validateManifest: a manifest or a StoreError, for any JSON value", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(jsonish, shaped, fc.anything()), async (v) => {
        tick("validateManifest");
        expectWellBehaved(await attempt(() => validateManifest(v)), { allowed: [StoreError] });
      }),
      { numRuns: RUNS.light },
    );
  });

  it("readManifest: a manifest or a StoreError, for any file content", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutatedText([manifestText]), junkString), async (t) => {
        tick("readManifest");
        const file = join(dir, `m${fileNo++}.json`);
        writeFileSync(file, t);
        expectWellBehaved(await attempt(() => readManifest(file)), { allowed: [StoreError] });
      }),
      { numRuns: RUNS.medium },
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
    mutatedText([transcriptText]),
    mutated([new Uint8Array(Buffer.from(transcriptText))]).map((b) => Buffer.from(b).toString("latin1")),
    junkString,
    fc.jsonValue({ maxDepth: 3 }).map((v) => `${JSON.stringify(v)}\n`),
    fc.integer({ min: 1, max: 50_000 }).map(nested),
  );
  it("verifyTranscriptText never throws: ok with a count, or the first bad line", async () => {
    await fc.assert(
      fc.asyncProperty(
        text,
        fc.option(fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 })),
        async (t, last) => {
          tick("verifyTranscript");
          const out = await attempt(() => verifyTranscriptText(t, last ?? undefined));
          expectWellBehaved(out, { allowed: [] });
          if (out.ok && !out.value.ok) expect(out.value.line).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: RUNS.light - RUNS.medium },
    );
  });

  it("Transcript.open refuses a damaged file with a UsageError and never extends it", async () => {
    await fc.assert(
      fc.asyncProperty(mutatedText([transcriptText]), async (t) => {
        tick("verifyTranscript");
        const file = join(dir, `t${fileNo++}.jsonl`);
        writeFileSync(file, t);
        const out = await attempt(() => Transcript.open(file));
        expectWellBehaved(out, { allowed: [UsageError] });
        if (!out.ok) expect(readFileSync(file, "utf8")).toBe(t);
      }),
      { numRuns: RUNS.medium },
    );
  });

  it("the seed verifies, and a line with 100 000 nested arrays does not crash the verifier", () => {
    expect(verifyTranscriptText(transcriptText)).toMatchObject({ ok: true, lines: 4 });
    expect(verifyTranscriptText(`${nested(100_000)}\n`)).toMatchObject({ ok: false, line: 1 });
  });
});
