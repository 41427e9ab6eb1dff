/**
 * Fuzz: the YAML files people write and review, the ceremony file (`init --ceremony`) and the bootstrap spec
 * (`bootstrap plan/apply/verify -f`). Mutations of real files, YAML junk, and the classic YAML attacks (alias bombs,
 * unresolved aliases, deep nesting, tags, merge keys, __proto__ keys).
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc } from "@fast-check/vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseSpec } from "../../../src/bootstrap/spec.js";
import { readCeremonyFile } from "../../../src/ceremony/ceremony-file.js";
import { UsageError } from "../../../src/errors.js";
import {
  attempt,
  embedded,
  expectWellBehaved,
  junkString,
  mutatedText,
  params,
  RUNS,
  reportCounts,
  secretArb,
  tick,
  yamlSlip,
} from "./fuzz-kit.js";

let dir: string;
let fileNo = 0;
/** A file name for the next case: a few names reused (a deep run writes 100 000 cases; each overwrites one). */
const nextFile = (prefix: string) => join(dir, `${prefix}${fileNo++ % 8}.yaml`);
const AGE1 = "age1yyrpwdxa0q6dczmzvfgtqlkucdzkncsjertraj0zq2tfhrl249hqwz800q";
const ceremonySeeds = [
  `address: https://vault-0.example:8200\nshares: 3\nthreshold: 2\nout: ceremony-1\noperators:\n  - { name: alice, recipient: "pgp:keys/alice.asc" }\n  - { name: bob, recipient: "age:${AGE1}" }\n  - name: carol\n    recipient: age:${AGE1}\nrootToken: { recipient: "pgp:keys/root.asc" }\n`,
  "shares: 1\nthreshold: 1\nkind: recovery\nsealShares: client\noperators: [{name: a, recipient: 'age:x.txt'}]\ntranscript: t.jsonl\n",
];

/** The 4 MB and 1 MiB attacks take seconds on a loaded machine: a hang is what this bound catches. */
const ATTACK_BOUND_MS = 30_000;

/** YAML shapes that have broken parsers before. */
const attacks = [
  `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`,
  "version: 1\nmounts: *nope\n",
  "<<: *a\n",
  `version: 1\nmounts: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`,
  `version: 1\nmounts:\n${Array.from({ length: 2000 }, (_, i) => `${" ".repeat(i * 2 + 2)}- `).join("\n")}x\n`,
  "version: !!binary zz\n",
  "version: !<tag:yaml.org,2002:js/function> 'function(){}'\n",
  "? [a, b]\n: c\n",
  "version: 1\n__proto__: {polluted: 1}\nmounts: [{path: a, type: kv, options: {__proto__: 1}}]\n",
  "\ufeffversion: 1\n",
  "%YAML 9.9\n---\nversion: 1\n",
  "---\nversion: 1\n---\nversion: 1\n",
  `version: 1\npolicies: [{name: p, hcl: "${"x".repeat(1 << 20)}"}]\n`,
];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sk-fuzz-specs-"));
  for (const f of ["kubernetes-ca.pem", "token-reviewer.jwt"])
    copyFileSync(join("examples/reference", f), join(dir, f));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  reportCounts({ readCeremonyFile: RUNS.medium, parseSpec: RUNS.medium });
});

const bootstrapSeed = readFileSync("examples/reference/bootstrap.yaml", "utf8");

describe("ceremony file", () => {
  // the attacks are constants: each runs once below, so the depth goes to generated inputs
  const text = fc.oneof(
    { arbitrary: mutatedText(ceremonySeeds), weight: 4 },
    { arbitrary: yamlSlip(ceremonySeeds), weight: 4 },
    { arbitrary: junkString, weight: 2 },
    {
      arbitrary: embedded(secretArb).map(
        (e) => `shares: 1\nthreshold: 1\noperators: [{name: a, recipient: "${e.input}"}]\n`,
      ),
      weight: 2,
    },
  );
  it("a CeremonyFile or a UsageError with file:line, never a secret repeated", async () => {
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        tick("readCeremonyFile");
        const file = nextFile("c");
        writeFileSync(file, t);
        const out = await attempt(() => readCeremonyFile(file));
        expectWellBehaved(out, { allowed: [UsageError], input: t });
        if (!out.ok) expect((out.error as Error).message).toMatch(new RegExp(`^${file}:\\d+: `));
      }),
      params("readCeremonyFile", RUNS.medium),
    );
  });

  it("every attack in the list is refused with a line, quickly", async () => {
    for (const t of attacks) {
      tick("readCeremonyFile");
      const file = nextFile("a");
      writeFileSync(file, t);
      const out = await attempt(() => readCeremonyFile(file));
      expectWellBehaved(out, { allowed: [UsageError], input: t, boundMs: ATTACK_BOUND_MS });
      expect(out.ok, t.slice(0, 60)).toBe(false);
    }
  });
});

describe("bootstrap spec", () => {
  const text = fc.oneof(
    { arbitrary: mutatedText([bootstrapSeed]), weight: 4 },
    { arbitrary: yamlSlip([bootstrapSeed]), weight: 4 },
    { arbitrary: junkString, weight: 2 },
  );
  it("a spec or a SpecError (file:line: key: problem); never a library exception, never a secret repeated", async () => {
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        tick("parseSpec");
        const out = await attempt(() => parseSpec(t, join(dir, "bootstrap.yaml"), { env: {} }));
        expectWellBehaved(out, { allowed: [UsageError], input: t });
      }),
      params("parseSpec", RUNS.medium),
    );
  });

  it("every attack in the list is refused with a line, or parses; quickly, never a library exception", async () => {
    for (const t of attacks) {
      tick("parseSpec");
      const out = await attempt(() => parseSpec(t, join(dir, "bootstrap.yaml"), { env: {} }));
      expectWellBehaved(out, { allowed: [UsageError], input: t, boundMs: ATTACK_BOUND_MS });
    }
  });

  it("the seed itself parses (mutations start from a working file)", () => {
    expect(parseSpec(bootstrapSeed, join(dir, "bootstrap.yaml")).roles.length).toBeGreaterThan(0);
  });
});
