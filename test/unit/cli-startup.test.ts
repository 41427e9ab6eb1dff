import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
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

/**
 * The Node built-ins the BUILT CLI (bin/sealkeeper, the bundle `npm ci` builds) loads: node:https/node:tls only for
 * an https:// address (lazyBuiltin, src/util/lazy-builtin.ts). Each costs 5-7 ms of start-up here
 * (docs/benchmarks.md). node:crypto is loaded by the launcher itself since issue 34: it checks the bundle's SHA-256
 * before it uses the code cache (test/unit/code-cache-integrity.test.ts); the bundle's own code still does not load
 * it for `status` or `--help` (the "start-up imports" tests above, and the executable, which has no launcher).
 */
function builtinsOf(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "sk-builtins-"));
  const out = join(dir, "modules.txt");
  const preload = join(dir, "preload.cjs");
  writeFileSync(
    preload,
    `process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, process.moduleLoadList.join("\\n")));`,
  );
  const r = spawnSync(process.execPath, ["-r", preload, "bin/sealkeeper", ...args], {
    env: { ...process.env, NO_COLOR: "1", VAULT_ADDR: "", BAO_ADDR: "" },
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(r.error).toBeUndefined();
  expect(r.stderr).not.toMatch(/dist\/ is missing/);
  return readFileSync(out, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("NativeModule "))
    .map((l) => l.slice("NativeModule ".length));
}

describe("start-up built-ins of the built CLI", () => {
  it("status of an http:// node loads no TLS", () => {
    const mods = builtinsOf(["status", "-a", "http://127.0.0.1:1", "--timeout", "1s"]);
    expect(mods).toContain("http");
    expect(mods.filter((m) => m === "tls" || m === "https")).toEqual([]);
  });
  it("status of an https:// node loads TLS (the lazy load works)", () => {
    expect(builtinsOf(["status", "-a", "https://127.0.0.1:1", "--timeout", "1s"])).toContain("tls");
  });
  it("--help loads no HTTP or TLS", () => {
    const mods = builtinsOf(["--help"]);
    expect(mods.filter((m) => ["http", "https", "tls"].includes(m))).toEqual([]);
  });
});

/**
 * The npm launcher (bin/sealkeeper run through its #! line, as npm's bin link runs it) moves NODE_EXTRA_CA_CERTS aside
 * before Node starts (Node 20 parses the file in full at start: about 110 ms with Debian's bundle here), and puts it
 * back for child processes; the trust side is test/integration/status-tls.test.ts.
 */
function launch(env: Record<string, string>): { status: number | null; seen: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), "sk-launcher-"));
  const out = join(dir, "seen.json");
  const preload = join(dir, "preload.cjs");
  writeFileSync(
    preload,
    `const atStart = process.env.NODE_EXTRA_CA_CERTS ?? null;
process.on("exit", () => require("node:fs").writeFileSync(${JSON.stringify(out)}, JSON.stringify({
  atStart, atExit: process.env.NODE_EXTRA_CA_CERTS ?? null,
  deferredAtExit: process.env.SEALKEEPER_DEFERRED_EXTRA_CA_CERTS ?? null,
  tls: process.moduleLoadList.includes("NativeModule tls"),
})));`,
  );
  const r = spawnSync(
    join(process.cwd(), "bin", "sealkeeper"),
    ["status", "-a", "http://127.0.0.1:1", "--timeout", "1s"],
    {
      env: { PATH: process.env.PATH, NO_COLOR: "1", NODE_OPTIONS: `--require ${preload}`, ...env },
      encoding: "utf8",
      timeout: 30_000,
    },
  );
  expect(r.error).toBeUndefined();
  return { status: r.status, seen: JSON.parse(readFileSync(out, "utf8")) };
}

describe("the launcher defers NODE_EXTRA_CA_CERTS", () => {
  it("Node starts without it, the CLI's environment has it back, and an http:// status loads no TLS", () => {
    const extra = join(mkdtempSync(join(tmpdir(), "sk-extra-")), "extra.pem");
    writeFileSync(extra, "");
    const r = launch({ NODE_EXTRA_CA_CERTS: extra });
    expect(r.status).toBe(1); // nothing listens there
    expect(r.seen).toEqual({ atStart: null, atExit: extra, deferredAtExit: null, tls: false });
  });
  it("without the variable nothing is deferred, and a stale deferral from the environment is dropped", () => {
    const r = launch({ SEALKEEPER_DEFERRED_EXTRA_CA_CERTS: "/stale/from/a/parent" });
    expect(r.status).toBe(1);
    expect(r.seen).toEqual({ atStart: null, atExit: null, deferredAtExit: null, tls: false });
  });
});
