/**
 * The harness's port reservations (test/harness/ports.ts): below the ephemeral range, never the same port twice
 * across processes, a dead process's reservation reclaimed. Real files, real processes, real sockets.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { reserveRun } from "../harness/ports.js";

const DIR = process.env.SEALKEEPER_PORTS_DIR ?? join(tmpdir(), "sealkeeper-ports");
const ROOT = join(import.meta.dirname, "..", "..");

describe("test port reservations", () => {
  it("hands out ports below the ephemeral range, each once, recorded with this pid", async () => {
    const start = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    const ports = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const p = await reserveRun(2);
      expect(p + 1).toBeLessThan(start);
      expect(ports.has(p) || ports.has(p + 1)).toBe(false);
      ports.add(p).add(p + 1);
      expect(readFileSync(join(DIR, String(p)), "utf8")).toBe(String(process.pid));
    }
  });

  it("another process never gets a port this one holds; its own are released when it exits", () => {
    const code = `
      import { reservePort } from "./test/harness/ports.ts";
      const got = [];
      for (let i = 0; i < 300; i++) got.push(await reservePort());
      process.stdout.write(JSON.stringify(got));
    `;
    const mine = readMine();
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(r.status, r.stderr).toBe(0);
    const theirs = JSON.parse(r.stdout) as number[];
    expect(new Set(theirs).size).toBe(300);
    for (const p of theirs) expect(mine.has(p)).toBe(false);
    // the child has exited: its reservations are gone
    for (const p of theirs) expect(existsSync(join(DIR, String(p)))).toBe(false);
  });

  it("reclaims a reservation whose process is gone", () => {
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
    const deadPid = Number(dead.stdout);
    // a registry of its own, every port of the range held by the dead process: whatever the child is handed must be
    // a reclaimed reservation. (In the machine-wide registry another test process releasing a port at that moment
    // made the port handed out a free one, not a reclaimed one: seen once in CI under load.)
    const dir = mkdtempSync(join(tmpdir(), "sk-ports-"));
    try {
      for (let p = 15_000; p < 32_000; p++) writeFileSync(join(dir, String(p)), String(deadPid));
      const code = `
        import { readFileSync } from "node:fs";
        import { reservePort } from "./test/harness/ports.ts";
        const port = await reservePort();
        process.stdout.write(JSON.stringify({ port, holder: readFileSync(process.env.SEALKEEPER_PORTS_DIR + "/" + port, "utf8"), pid: process.pid }));
      `;
      const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, SEALKEEPER_PORTS_DIR: dir },
      });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { port: number; holder: string; pid: number };
      expect(got.port).toBeGreaterThanOrEqual(15_000);
      expect(got.port).toBeLessThan(32_000);
      expect(got.holder).toBe(String(got.pid));
      // released at the child's exit; every other stale reservation is untouched
      expect(existsSync(join(dir, String(got.port)))).toBe(false);
      expect(readdirSync(dir).length).toBe(32_000 - 15_000 - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function readMine(): Set<number> {
  const out = new Set<number>();
  for (const name of readdirSync(DIR)) {
    try {
      if (readFileSync(join(DIR, name), "utf8") === String(process.pid)) out.add(Number(name));
    } catch {
      // released meanwhile
    }
  }
  return out;
}
