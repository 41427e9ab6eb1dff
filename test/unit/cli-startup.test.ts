import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// The CLI must start fast: the heavy libraries load only in the commands that use them.
const HEAVY = [
  "/node_modules/openpgp/",
  "/node_modules/age-encryption/",
  "/node_modules/@aws-sdk/",
  "/node_modules/@inquirer/",
];

function importsOf(args: string[]): string[] {
  const trace = join(mkdtempSync(join(tmpdir(), "sk-trace-")), "imports.txt");
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "--import", "./test/harness/import-trace/register.mjs", "src/cli/entry.ts", ...args],
    { env: { ...process.env, IMPORT_TRACE_FILE: trace, NO_COLOR: "1" }, encoding: "utf8", timeout: 30_000 },
  );
  expect(r.error).toBeUndefined();
  try {
    return readFileSync(trace, "utf8").split("\n");
  } catch {
    return [];
  }
}

describe("start-up imports", () => {
  it("--help loads no crypto, prompt or KMS library, nor the HTTP client", () => {
    const urls = importsOf(["--help"]);
    expect(urls.some((u) => u.includes("/src/cli/main.ts"))).toBe(true);
    for (const heavy of HEAVY) expect(urls.filter((u) => u.includes(heavy))).toEqual([]);
    expect(urls.filter((u) => u.includes("/src/vault/client.ts") || u.includes("/src/shamir/split.ts"))).toEqual([]);
  });
  it("status loads the HTTP client but no crypto, prompt or KMS library", () => {
    const urls = importsOf(["status", "-a", "http://127.0.0.1:1", "--timeout", "1s"]);
    expect(urls.some((u) => u.includes("/src/vault/client.ts"))).toBe(true);
    for (const heavy of HEAVY) expect(urls.filter((u) => u.includes(heavy))).toEqual([]);
  });
});
