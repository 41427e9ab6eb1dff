/**
 * Ceremony benchmarks, each a ratio measured side by side in one run:
 * - CLI start-up: `--help` and `status` (against a live dev server) of the npm CLI and of the executable, vs bare
 *   `node -e 0` (goal: 1.3x) and `vault status` (goal: 1.5x), 15 paired rounds (issue 15);
 * - scripted unseal of a 3-node raft cluster vs a 1-node one (goal: under 1.5x: shares go to nodes concurrently);
 * - the same unseal through the CLI (one `sealkeeper unseal` process, the quorum engine) vs what an operator does
 *   without it, the `vault operator unseal` (or `bao operator unseal`) loop: one process per share per node, 9 calls
 *   (goal: at least 5x faster).
 * Each start-up and the CLI unseal run in this environment and, when it sets NODE_EXTRA_CA_CERTS, without it too
 * (environments() below).
 * Run alone with `node --import tsx bench/ceremony.ts`; results and method in docs/benchmarks.md.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { packageCli } from "../scripts/package.js";
import { runUnseal } from "../src/ceremony/unseal.js";
import { parseKeyShare } from "../src/ceremony/unseal-key.js";
import { initAndUnseal, startCluster, startDevServer, type TestNode, waitForHa } from "../test/harness/cluster.js";
import { serverBinaryPath, serverKind } from "../test/harness/paths.js";
import { renderBenchTable } from "./shamir.js";
import type { BenchResult } from "./types.js";

const PAIRS = 15;

/** Wall time of one run of a fresh process, in ms. */
function wallMs(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { stdio: "ignore", env: { ...process.env, NO_COLOR: "1", ...env } });
  if (r.error) throw r.error;
  return performance.now() - t0;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Start-up, side by side: PAIRS rounds, each running every command once, one after the other (so a slow moment of
 * the shared machine hits every command of that round alike); medians per command, and the median of the per-round
 * ratios. The npm CLI is bin/sealkeeper run as an installed package's bin is (through its #! line), the
 * executable is built fresh from this tree (scripts/package.ts), `vault status` is the server's own Go CLI.
 */
export async function runStartupBench(): Promise<BenchResult[]> {
  execFileSync("npm", ["run", "-s", "build"], { stdio: "ignore" });
  const out = mkdtempSync(join(tmpdir(), "sk-bench-exe-"));
  const dev = await startDevServer();
  try {
    const { exe } = await packageCli(out);
    const vault = serverBinaryPath();
    const goCli = serverKind() === "vault" ? "vault status" : "bao status";
    const bin = join(process.cwd(), "bin", "sealkeeper");
    const status = ["status", "-a", dev.address];
    const cmds: Record<string, () => number> = {};
    for (const { suffix, env } of environments()) {
      Object.assign(cmds, {
        [`node -e 0${suffix}`]: () => wallMs(process.execPath, ["-e", "0"], env),
        [`npm CLI --help${suffix}`]: () => wallMs(bin, ["--help"], env),
        [`npm CLI status${suffix}`]: () => wallMs(bin, status, env),
        [`executable --help${suffix}`]: () => wallMs(exe, ["--help"], env),
        [`executable status${suffix}`]: () => wallMs(exe, status, env),
        [`${goCli}${suffix}`]: () =>
          wallMs(vault, ["status"], { ...env, VAULT_ADDR: dev.address, BAO_ADDR: dev.address }),
      });
    }
    const names = Object.keys(cmds);
    for (const name of names) cmds[name]!(); // warm the page cache once
    const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < PAIRS; i++) for (const name of names) times[name]!.push(cmds[name]!());
    const med = (n: string) => median(times[n]!);
    const pairRatio = (a: string, b: string) => median(times[a]!.map((t, i) => t / times[b]![i]!));
    const goal = (a: string, b: string, limit: number): BenchResult => {
      const r = med(a) / med(b);
      return {
        name: `goal: ${a} <= ${limit}x ${b}`,
        msPerOp: Number.NaN,
        note: `${r.toFixed(2)}x (median of per-round ratios ${pairRatio(a, b).toFixed(2)}x): ${r <= limit ? "met" : "MISSED"}`,
      };
    };
    return [
      ...names.map((n) => ({ name: n, msPerOp: med(n), note: `median of ${PAIRS} paired runs` })),
      ...environments().flatMap(({ suffix: x }) => [
        goal(`npm CLI --help${x}`, `node -e 0${x}`, 1.3),
        goal(`npm CLI status${x}`, `node -e 0${x}`, 1.3),
        goal(`npm CLI status${x}`, `${goCli}${x}`, 1.5),
        goal(`executable status${x}`, `${goCli}${x}`, 1.5),
        goal(`executable --help${x}`, `node -e 0${x}`, 1.3),
      ]),
    ];
  } finally {
    await dev.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * The environments every start-up is measured in, side by side: this one as it is, and, when it sets
 * NODE_EXTRA_CA_CERTS (as this machine does, to Debian's 140-certificate bundle), the same without it (a ceremony
 * laptop's usual environment). Node 20 parses that file before running any JavaScript (about 110 ms here); the npm
 * launcher defers it (src/util/tls-trust.ts), `node -e 0` and the executable cannot.
 */
function environments(): { suffix: string; env: NodeJS.ProcessEnv }[] {
  const given = { suffix: "", env: {} };
  if (!process.env.NODE_EXTRA_CA_CERTS) return [given];
  return [given, { suffix: " [no NODE_EXTRA_CA_CERTS]", env: { NODE_EXTRA_CA_CERTS: undefined } }];
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

/** Runs one process to its end; rejects on a non-zero exit. */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env, NO_COLOR: "1" }, stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    p.on("error", reject);
    p.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err.slice(0, 300)}`)),
    );
    p.stdin.end(input ?? "");
  });
}

/** Until every node reports unsealed (a raft follower finishes unsealing once it has joined its leader). */
async function untilUnsealed(nodes: TestNode[]): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (const node of nodes) {
    const c = node.client();
    try {
      while ((await c.sealStatus()).sealed) {
        if (Date.now() > deadline) throw new Error(`${node.address} did not unseal`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await c.close();
    }
  }
}

/**
 * Scripted unseal of a 3-node cluster with 3 shares, side by side in one run, alternating per round: one
 * `sealkeeper unseal` process (shares on stdin, every node at once) against the loop an operator runs without it,
 * `<server> operator unseal SHARE` once per share per node (9 processes, one after the other). Both times run from
 * the first process started to every node reporting unsealed.
 */
export async function runCliUnsealBench(rounds = 5): Promise<BenchResult[]> {
  const cluster = await startCluster(3);
  const server = serverBinaryPath();
  const addrVar = serverKind() === "openbao" ? "BAO_ADDR" : "VAULT_ADDR";
  try {
    const { keys } = await initAndUnseal(cluster.nodes, { shares: 5, threshold: 3 });
    const three = keys.slice(0, 3);
    // one sealkeeper run per environment (see environments()), then the loop, alternating
    const variants = environments();
    const ours = variants.map(() => 0);
    let loop = 0;
    for (let r = 0; r < rounds * (variants.length + 1); r++) {
      await Promise.all(cluster.nodes.map((node) => node.restart()));
      const which = r % (variants.length + 1);
      const t0 = performance.now();
      if (which < variants.length) {
        // bin/sealkeeper through its #! line, as npm's bin link runs it
        const args = ["unseal", ...cluster.nodes.flatMap((n) => ["-a", n.address])];
        await run(
          "bin/sealkeeper",
          [...args, "--non-interactive", "--share-file", "-"],
          variants[which]!.env,
          `${three.join("\n")}\n`,
        );
      } else {
        for (const node of cluster.nodes) {
          for (const key of three) await run(server, ["operator", "unseal", key], { [addrVar]: node.address });
        }
      }
      await untilUnsealed(cluster.nodes);
      const ms = performance.now() - t0;
      if (which < variants.length) ours[which]! += ms;
      else loop += ms;
      await waitForHa(cluster.nodes);
    }
    loop /= rounds;
    const name = serverKind() === "openbao" ? "bao" : "vault";
    return [
      ...variants.flatMap(({ suffix }, i) => {
        const t = ours[i]! / rounds;
        return [
          {
            name: `sealkeeper unseal, 3 nodes x 3 shares (1 process)${suffix}`,
            msPerOp: t,
            note: `mean of ${rounds} rounds`,
          },
          {
            name: `goal: sealkeeper${suffix} >= 5x faster than the loop`,
            msPerOp: Number.NaN,
            note: `${(loop / t).toFixed(2)}x: ${loop / t >= 5 ? "met" : "MISSED"}`,
          },
        ];
      }),
      {
        name: `${name} operator unseal loop, 3 nodes x 3 shares (9 processes)`,
        msPerOp: loop,
        note: `mean of ${rounds} rounds, alternating with the rows above`,
      },
    ];
  } finally {
    await cluster.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = process.env.BENCH_ONLY_CLI_UNSEAL
    ? await runCliUnsealBench()
    : [...(await runStartupBench()), ...(await runUnsealBench()), ...(await runCliUnsealBench())];
  process.stdout.write(renderBenchTable(results));
  process.exit(0);
}
