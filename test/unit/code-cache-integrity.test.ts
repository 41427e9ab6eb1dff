/**
 * Issue 34, item 5: the V8 code cache shipped beside the bundle runs only for the bundle it was made from. V8 checks a
 * cache against the source's length alone: before, with the bundle's VERSION changed to another string of the same
 * length, `--version` still printed the old one (the cached code ran, not the JavaScript on disk). Needs the built CLI
 * (`npm run build`, which `npm ci` runs).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VERSION } from "../../src/version.js";

const ROOT = join(import.meta.dirname, "..", "..");

/** A copy of the installed layout (bin/ and dist/bundle/) to tamper with. */
function copyInstall(): string {
  const dir = mkdtempSync(join(tmpdir(), "sk-cache-"));
  cpSync(join(ROOT, "bin"), join(dir, "bin"), { recursive: true });
  mkdirSync(join(dir, "dist"));
  cpSync(join(ROOT, "dist", "bundle"), join(dir, "dist", "bundle"), { recursive: true });
  return dir;
}

/** Runs `--version` of the copy; reports whether vm.Script got a cache and whether V8 took it. */
function version(dir: string): { out: string; cacheGiven: boolean; cacheRejected: boolean | undefined } {
  const seen = join(dir, "seen.json");
  const preload = join(dir, "preload.cjs");
  writeFileSync(
    preload,
    `const vm = require("node:vm"); const Orig = vm.Script; let s;
vm.Script = function (code, opts) { s = { given: Boolean(opts && opts.cachedData), script: new Orig(code, opts) }; return s.script; };
process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(seen)},
  JSON.stringify({ given: s.given, rejected: s.script.cachedDataRejected })));`,
  );
  const r = spawnSync(process.execPath, ["-r", preload, join(dir, "bin", "sealkeeper"), "--version"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(r.status, r.stderr).toBe(0);
  const s = JSON.parse(readFileSync(seen, "utf8"));
  return { out: r.stdout.trim(), cacheGiven: s.given, cacheRejected: s.rejected };
}

describe("the code cache beside the bundle", () => {
  it("is used, and accepted by V8, for the bundle the build made it from", () => {
    const r = version(copyInstall());
    expect(r).toEqual({ out: VERSION, cacheGiven: true, cacheRejected: false });
  });

  it("is not used for a bundle edited to other bytes of the same length: the JavaScript on disk runs", () => {
    const dir = copyInstall();
    const bundle = join(dir, "dist", "bundle", "sealkeeper.cjs");
    const text = readFileSync(bundle, "utf8");
    const forged = "9".repeat(VERSION.length);
    expect(text).toContain(`VERSION = "${VERSION}"`);
    const tampered = text.replace(`VERSION = "${VERSION}"`, `VERSION = "${forged}"`);
    expect(Buffer.byteLength(tampered)).toBe(Buffer.byteLength(text));
    writeFileSync(bundle, tampered);
    expect(version(dir)).toMatchObject({ out: forged, cacheGiven: false });
  });

  it("is not used without the recorded hash", () => {
    const dir = copyInstall();
    writeFileSync(join(dir, "dist", "bundle", "sealkeeper.cjs.cache.sha256"), "0".repeat(64));
    expect(version(dir)).toMatchObject({ out: VERSION, cacheGiven: false });
  });
});
