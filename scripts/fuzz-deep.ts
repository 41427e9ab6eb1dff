/**
 * `npm run fuzz:deep`: the parser fuzz tests (test/unit/fuzz) at depth: every parser >= 100 000 cases, the crypto
 * parsers RUNS_DEEP.crypto (test/unit/fuzz/fuzz-kit.ts). Prints the seed first, so that any failure replays exactly
 * (`FUZZ_SEED=<seed> npm run fuzz:deep`), and a report of cases and seconds per parser at the end.
 *
 * Environment: FUZZ_SEED (replay; default a fresh random seed), FUZZ_SCALE (a fraction of the deep depth, e.g. 0.05:
 * CI runs such a slice), FUZZ_WORKERS (test files at a time, default 2: the machine's cores). Extra arguments go to
 * vitest (e.g. a file: `npm run fuzz:deep -- test/unit/fuzz/specs.test.ts`).
 */
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";

const seed = process.env.FUZZ_SEED?.trim() ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31);
if (!Number.isSafeInteger(seed)) {
  console.error(`fuzz:deep: FUZZ_SEED must be an integer, got ${process.env.FUZZ_SEED}`);
  process.exit(1);
}
const scale = process.env.FUZZ_SCALE ?? "1";
const workers = process.env.FUZZ_WORKERS ?? "2";
const files = process.argv.slice(2);
const replay = `FUZZ_SEED=${seed}${scale === "1" ? "" : ` FUZZ_SCALE=${scale}`} npm run fuzz:deep`;
console.log(`fuzz:deep: seed ${seed}, scale ${scale}, ${workers} worker(s); replay with: ${replay}`);

const start = performance.now();
const child = spawn(
  process.execPath,
  [
    "node_modules/vitest/vitest.mjs",
    "run",
    "--project",
    "unit",
    `--maxWorkers=${workers}`,
    ...(files.length > 0 ? files : ["test/unit/fuzz"]),
  ],
  {
    env: { ...process.env, FUZZ_DEPTH: "deep", FUZZ_SEED: String(seed), FUZZ_SCALE: scale },
    stdio: ["ignore", "pipe", "inherit"],
  },
);

const cases = new Map<string, number>();
const seconds = new Map<string, number>();
let pending = "";
child.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  pending += chunk.toString("utf8");
  const lines = pending.split("\n");
  pending = lines.pop()!;
  for (const line of lines) collect(line);
});

/** `fuzz cases: a=1 b=2` and `fuzz seconds: a=1.5` lines, printed by fuzz-kit's reportCounts. */
function collect(line: string): void {
  const m = /fuzz (cases|seconds): (.*)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, ""));
  if (!m) return;
  const into = m[1] === "cases" ? cases : seconds;
  for (const [, k, v] of m[2]!.matchAll(/(\S[^=]*?)=([\d.]+)(?= |$)/g)) into.set(k!, (into.get(k!) ?? 0) + Number(v));
}

const code: number = await new Promise((res) => child.on("close", (c, signal) => res(c ?? (signal ? 128 : 1))));
if (pending) collect(pending);
const total = (performance.now() - start) / 1000;
const width = Math.max(8, ...[...cases.keys()].map((k) => k.length));
console.log(`\nfuzz:deep report (seed ${seed}, scale ${scale}):`);
console.log(`  ${"parser".padEnd(width)}  ${"cases".padStart(9)}  ${"seconds".padStart(8)}`);
for (const [k, n] of [...cases.entries()].sort()) {
  console.log(`  ${k.padEnd(width)}  ${String(n).padStart(9)}  ${(seconds.get(k) ?? 0).toFixed(1).padStart(8)}`);
}
const sum = [...cases.values()].reduce((a, b) => a + b, 0);
console.log(`  ${"total".padEnd(width)}  ${String(sum).padStart(9)}  ${total.toFixed(1).padStart(8)} (wall clock)`);
console.log(`fuzz:deep: ${code === 0 ? "passed" : "FAILED"} in ${total.toFixed(0)}s; seed ${seed}; replay: ${replay}`);
process.exit(code);
