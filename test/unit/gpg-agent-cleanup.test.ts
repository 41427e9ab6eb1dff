/**
 * Defect 5c (issue 12): gpg-agent daemons outlived the demo and test files. The harness now stops the agent of every
 * GNUPGHOME a process made when that process exits (normally, on failure, on process.exit after Ctrl-C), and
 * stopGpgAgent finds an agent whose home was already removed. Real gpg, real processes, checked with pgrep.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { makeGnupgHome, makePgpOperator, stopGpgAgent } from "../harness/operators.js";

const ROOT = join(import.meta.dirname, "..", "..");

function agentsFor(home: string): string[] {
  try {
    return execFileSync("pgrep", ["-a", "gpg-agent"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(`--homedir ${home} `) || l.endsWith(`--homedir ${home}`));
  } catch {
    return [];
  }
}

describe("gpg-agent cleanup", () => {
  it("stopGpgAgent stops an agent even after its GNUPGHOME was removed", () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-agent-"));
    const home = makeGnupgHome(dir);
    makePgpOperator(home, dir, "tess");
    expect(agentsFor(home)).toHaveLength(1);
    rmSync(dir, { recursive: true, force: true });
    stopGpgAgent(home);
    expect(agentsFor(home)).toEqual([]);
  });

  for (const how of ["exits normally", "fails (uncaught error)", "is stopped by SIGINT (Ctrl-C) and exits"] as const) {
    it(`a process that made a GNUPGHOME leaves no agent behind when it ${how}`, async () => {
      const dir = mkdtempSync(join(tmpdir(), "sk-agent-"));
      const code = `
        import { makeGnupgHome, makePgpOperator } from "./test/harness/operators.ts";
        const home = makeGnupgHome(${JSON.stringify(dir)});
        makePgpOperator(home, ${JSON.stringify(dir)}, "tess");
        process.on("SIGINT", () => process.exit(130));
        process.stdout.write("ready\\n");
        ${how === "exits normally" ? "" : how.startsWith("fails") ? 'throw new Error("boom");' : "setInterval(() => {}, 1000);"}
      `;
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { cwd: ROOT });
      let out = "";
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out.includes("ready") && how.includes("SIGINT")) child.kill("SIGINT");
      });
      child.stderr.resume();
      await new Promise((r) => child.on("close", r));
      expect(out).toContain("ready");
      expect(agentsFor(join(dir, "gnupg"))).toEqual([]);
      rmSync(dir, { recursive: true, force: true });
    });
  }
});
