/**
 * Ceremony benchmarks, each a ratio measured side by side in one run:
 * - CLI start-up: `sealkeeper --help` and `sealkeeper status` (against a live dev server) vs bare `node -e 0`
 *   (goal: under 2x: the PGP/age/KMS libraries must not load for these commands);
 * - scripted unseal of a 3-node raft cluster vs a 1-node one (goal: under 1.5x: shares go to nodes concurrently).
 * Run alone with `node --import tsx bench/ceremony.ts`; results and method in docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { runUnseal } from "../src/ceremony/unseal.js";
import { parseKeyShare } from "../src/ceremony/unseal-key.js";
import { initAndUnseal, startCluster, startDevServer, waitForHa } from "../test/harness/cluster.js";
import { renderBenchTable } from "./shamir.js";
import type { BenchResult } from "./types.js";

const RUNS = 21;

function medianMs(argv: string[], runs = RUNS): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, argv, { stdio: "ignore", env: { ...process.env, NO_COLOR: "1" } });
    if (r.error) throw r.error;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export async function runStartupBench(): Promise<BenchResult[]> {
  execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "ignore" });
  const dev = await startDevServer();
  try {
    const bare = medianMs(["-e", "0"]);
    const help = medianMs(["bin/sealkeeper", "--help"]);
    const status = medianMs(["bin/sealkeeper", "status", "-a", dev.address]);
    const row = (name: string, ms: number): BenchResult => ({
      name,
      msPerOp: ms,
      note: `median of ${RUNS}; ${(ms / bare).toFixed(2)}x node -e 0: ${ms / bare < 2 ? "met" : "MISSED"} (goal < 2x)`,
    });
    return [
      { name: "node -e 0", msPerOp: bare, note: `median of ${RUNS}` },
      row("sealkeeper --help", help),
      row("sealkeeper status (1 live node)", status),
    ];
  } finally {
    await dev.stop();
  }
}

/**
 * Time of a scripted unseal of every node of a cluster of `n`, with threshold 3 (mean of `rounds` reseal rounds).
 * `sequential` unseals one node after the other (what a loop of `vault operator unseal` per node does), for comparison.
 */
async function unsealTime(n: number, rounds: number, sequential = false): Promise<number> {
  const cluster = await startCluster(n);
  try {
    const { keys } = await initAndUnseal(cluster.nodes, { shares: 5, threshold: 3 });
    const shares = keys.slice(0, 3).map((k, i) => parseKeyShare(k, `bench share ${i + 1}`));
    let total = 0;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(cluster.nodes.map((node) => node.restart()));
      const clients = cluster.nodes.map((node) => node.client());
      const groups = sequential ? clients.map((c) => [c]) : [clients];
      const t0 = performance.now();
      for (const group of groups) {
        let i = 0;
        const report = await runUnseal({ clients: group, source: { next: async () => shares[i++] ?? null } });
        if (report.nodes.some((x) => x.state !== "unsealed")) throw new Error("bench unseal did not unseal every node");
      }
      total += performance.now() - t0;
      await Promise.all(clients.map((c) => c.close()));
      await waitForHa(cluster.nodes);
    }
    return total / rounds;
  } finally {
    await cluster.stop();
  }
}

export async function runUnsealBench(rounds = 5): Promise<BenchResult[]> {
  const one = await unsealTime(1, rounds);
  const three = await unsealTime(3, rounds);
  const threeSequential = await unsealTime(3, rounds, true);
  const ratio = three / one;
  return [
    { name: "scripted unseal, 1 node (3 shares)", msPerOp: one, note: `mean of ${rounds} rounds` },
    { name: "scripted unseal, 3 nodes (3 shares), concurrent", msPerOp: three, note: `mean of ${rounds} rounds` },
    {
      name: "scripted unseal, 3 nodes, one after the other",
      msPerOp: threeSequential,
      note: `mean of ${rounds} rounds; concurrent is ${(threeSequential / three).toFixed(2)}x faster`,
    },
    {
      name: "goal: 3-node unseal < 1.5x 1-node",
      msPerOp: Number.NaN,
      note: `${ratio.toFixed(2)}x: ${ratio < 1.5 ? "met" : "MISSED"}`,
    },
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = [...(await runStartupBench()), ...(await runUnsealBench())];
  process.stdout.write(renderBenchTable(results));
  process.exit(0);
}
