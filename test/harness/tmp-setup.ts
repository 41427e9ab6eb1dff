import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopGpgAgent } from "./operators.js";

/**
 * Vitest global setup of every project (vitest.config.ts), once per run: the run's temporary files go into one
 * directory of its own, removed when the run ends, so that nothing a test leaves behind (a node's data directory, a
 * GNUPGHOME, test shares and tokens in a file whose test forgot its afterAll, or whose worker was killed) outlives
 * the run. Before this, a day's runs left about a thousand sk-* and sealkeeper-* directories in /tmp.
 *
 * Set here in the main process before any worker starts, TMPDIR reaches every worker, every server and every CLI the
 * tests spawn with the environment. The port reservations stay in the machine's temporary directory
 * (SEALKEEPER_PORTS_DIR, test/harness/ports.ts): they are shared by every run on the machine, the point of them.
 * Every GNUPGHOME a worker makes is listed in SEALKEEPER_GPG_REGISTRY; the teardown stops their gpg-agents (also
 * after a crashed worker) before it removes the directory.
 */
export default function setup(): (() => void) | undefined {
  const g = globalThis as { sealkeeperRunTmp?: string };
  if (g.sealkeeperRunTmp) return undefined;
  const parent = tmpdir();
  process.env.SEALKEEPER_PORTS_DIR ??= join(parent, "sealkeeper-ports");
  const run = mkdtempSync(join(parent, "sealkeeper-test-run-"));
  g.sealkeeperRunTmp = run;
  process.env.TMPDIR = run;
  process.env.SEALKEEPER_GPG_REGISTRY ??= join(run, "gpg-homes");
  const registry = process.env.SEALKEEPER_GPG_REGISTRY;
  return () => {
    let homes: string[] = [];
    try {
      homes = readFileSync(registry, "utf8")
        .split("\n")
        .filter((h) => h !== "");
    } catch {
      // no test made a GNUPGHOME
    }
    for (const home of new Set(homes)) stopGpgAgent(home);
    if (process.env.SEALKEEPER_KEEP_TMP) {
      process.stderr.write(`test run: temporary files kept in ${run} (SEALKEEPER_KEEP_TMP)\n`);
      return;
    }
    rmSync(run, { recursive: true, force: true });
  };
}
