import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const HEAVY = [
  "/node_modules/openpgp/",
  "/node_modules/age-encryption/",
  "/node_modules/@aws-sdk/",
  "/node_modules/@inquirer/",
];

describe("the library entry point", () => {
  it("exports the main functions", async () => {
    const lib = await import("../../src/index.js");
    for (const name of [
      "VaultClient",
      "splitSecret",
      "combineShares",
      "runInitCeremony",
      "runUnseal",
      "planBootstrap",
      "renderSealStanza",
    ]) {
      expect(typeof (lib as Record<string, unknown>)[name]).toBe("function");
    }
  });

  it("loads no heavy dependency on import (traced in a fresh process)", () => {
    const trace = join(mkdtempSync(join(tmpdir(), "sk-lib-trace-")), "imports.txt");
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "--import",
        "./test/harness/import-trace/register.mjs",
        "-e",
        'await import("./src/index.ts")',
      ],
      { env: { ...process.env, IMPORT_TRACE_FILE: trace }, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const urls = readFileSync(trace, "utf8").split("\n");
    // the trace saw the library itself: an empty trace would pass the check below without proving anything
    expect(urls.some((u) => u.includes("/src/index.ts"))).toBe(true);
    expect(urls.some((u) => u.includes("/src/vault/client.ts"))).toBe(true);
    for (const heavy of HEAVY) expect(urls.filter((u) => u.includes(heavy))).toEqual([]);
  });
});
