/**
 * A program the harness starts dies with the test process that started it, however that process dies (SIGTERM of a
 * cancelled CI job, SIGKILL): test/harness/owned-spawn.ts. Real processes, real signals.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function waitUntil(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`${what} within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(process.platform === "linux")("spawnOwned", () => {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`a started program dies when its starter is ended by ${signal} (no exit hook runs)`, async () => {
      // the starter: spawns a long sleep the way the harness spawns a server, reports its pid, then waits forever
      const code = `
        import { spawnOwned } from "./test/harness/owned-spawn.ts";
        const child = spawnOwned("sleep", ["600"], { stdio: "ignore" });
        process.stdout.write(String(child.pid) + "\\n");
        setInterval(() => {}, 1000);
      `;
      const starter = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      starter.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      await waitUntil("the starter reported its child", () => out.includes("\n"));
      const pid = Number(out.trim());
      expect(alive(pid)).toBe(true);
      // the pid is the program's own (setpriv execs it): signals sent to it reach the program
      const comm = spawnSync("ps", ["-o", "comm=", "-p", String(pid)], { encoding: "utf8" }).stdout.trim();
      expect(comm).toBe("sleep");
      starter.kill(signal);
      await waitUntil(`the child ${pid} was not gone`, () => !alive(pid));
    });
  }
});
