/**
 * `npm run bench`: every benchmark, one after the other (they compete for two cores otherwise), printed as one
 * Markdown table per area. Copy the tables into docs/benchmarks.md with the date and the machine's load.
 * BENCH=shamir,ceremony,bootstrap selects areas (BENCH=startup: only the start-up part of ceremony).
 */
import { runBootstrapBench } from "./bootstrap.js";
import { runCliUnsealBench, runStartupBench, runUnsealBench } from "./ceremony.js";
import { renderBenchTable, runShamirBench } from "./shamir.js";
import type { BenchResult } from "./types.js";

const areas: Record<string, () => Promise<BenchResult[]>> = {
  shamir: runShamirBench,
  startup: runStartupBench,
  ceremony: async () => [...(await runStartupBench()), ...(await runUnsealBench()), ...(await runCliUnsealBench())],
  bootstrap: runBootstrapBench,
};

const wanted = (process.env.BENCH ?? "shamir,ceremony,bootstrap").split(",").map((s) => s.trim());
for (const name of wanted) {
  const run = areas[name];
  if (!run) throw new Error(`unknown benchmark area ${name}; known: ${Object.keys(areas).join(", ")}`);
  process.stdout.write(`\n## ${name}\n\n`);
  process.stdout.write(renderBenchTable(await run()));
}
process.exit(0);
