/**
 * Bootstrap benchmark: a generated spec of 100 apps (100 policies, 100 roles, plus the kubernetes auth method and its
 * config) applied to a fresh dev server, then re-applied; and the same configuration written by a shell loop of
 * `vault policy write` / `vault write auth/.../role/...` (one process per call, the way it is done by hand) against the
 * same server, under another auth path and policy prefix. Run alone with `node --import tsx bench/bootstrap.ts`;
 * method and results in docs/benchmarks.md ("## Bootstrap").
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import type { CliIO } from "../src/cli/io.js";
import { runCli } from "../src/cli/main.js";
import { startDevServer } from "../test/harness/cluster.js";
import { serverBinaryPath } from "../test/harness/paths.js";
import { writeAppsSpec } from "../test/integration/bootstrap-helpers.js";
import type { BenchResult } from "./types.js";

const APPS = 100;
/** Issue 16: a spec of 1,000 apps plans in under 3 s and re-applies with 0 writes. */
const APPS_LARGE = 1000;

async function runInProcess(argv: string[], env: Record<string, string>): Promise<{ code: number; out: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on("data", (c: Buffer) => chunks.push(c));
  stderr.resume();
  const io: CliIO = {
    stdout,
    stderr,
    stdin: Readable.from([]),
    env: { HOME: "/nonexistent", NO_COLOR: "1", ...env },
    stdinIsTTY: false,
    stdoutIsTTY: false,
    stderrIsTTY: false,
    cwd: process.cwd(),
  };
  const code = await runCli(argv, io);
  return { code, out: Buffer.concat(chunks).toString("utf8") };
}

/**
 * Runs a child process WITHOUT blocking the event loop: the dev server's log is piped through this process, and a
 * blocked loop would fill that pipe and stall the server (requests then time out).
 */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stderr }));
  });
}

/** The hand-written way: one `vault` process per policy and per role. */
function cliLoopScript(n: number): string {
  const lines = [
    "set -euo pipefail",
    "vault auth enable -path=kubernetes-cli kubernetes >/dev/null",
    "vault write auth/kubernetes-cli/config kubernetes_host=https://kubernetes.default.svc disable_local_ca_jwt=true >/dev/null",
    `for i in $(seq 0 ${n - 1}); do`,
    '  name=$(printf "app%03d" "$i")',
    '  printf \'path "secret/data/prod/%s" {\\n  capabilities = ["read"]\\n}\\n\' "$name" | vault policy write "cli-$name-prod-read" - >/dev/null',
    '  vault write "auth/kubernetes-cli/role/$name-prod" bound_service_account_names="$name" ' +
      'bound_service_account_namespaces="team-$((i % 10))" token_policies="cli-$name-prod-read" ' +
      "token_ttl=1h token_max_ttl=4h >/dev/null",
    "done",
  ];
  return lines.join("\n") + "\n";
}

/**
 * Plan, first apply and re-apply of an n-app spec against its own fresh dev server (side by side: 100 and 1,000
 * apps in one run). Plan and re-apply: median of 3 / 5 runs; the re-apply must write nothing.
 */
async function sizeRows(n: number, dir: string): Promise<BenchResult[]> {
  const server = await startDevServer();
  try {
    const spec = join(dir, `apps-${n}.yaml`);
    writeAppsSpec(spec, n);
    const env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
    const rows: BenchResult[] = [];
    const plans: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const r = await runInProcess(["bootstrap", "plan", "-f", spec], env);
      plans.push(performance.now() - t);
      if (r.code !== 0 && r.code !== 2) throw new Error(`plan failed (exit ${r.code})`);
    }
    plans.sort((a, b) => a - b);
    rows.push({
      name: `sealkeeper bootstrap plan, ${n} apps, fresh server (in-process)`,
      msPerOp: plans[1]!,
      note: `median of 3; spec parse + ${n * 2 + 5} reads + plan of ${n * 2 + 2} creates`,
    });
    const t0 = performance.now();
    const first = await runInProcess(["bootstrap", "apply", "-f", spec], env);
    const firstMs = performance.now() - t0;
    if (first.code !== 0) throw new Error(`first apply failed (exit ${first.code})`);
    rows.push({
      name: `sealkeeper bootstrap apply, ${n} apps, fresh server (in-process)`,
      msPerOp: firstMs,
      note: `${first.out.match(/(\d+) write request/)?.[1] ?? "?"} writes, concurrency 8, 1 run`,
    });
    const reapply: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const r = await runInProcess(["bootstrap", "apply", "-f", spec], env);
      reapply.push(performance.now() - t);
      if (r.code !== 0 || r.out.includes("Apply complete")) throw new Error("re-apply changed something");
    }
    reapply.sort((a, b) => a - b);
    rows.push({
      name: `sealkeeper bootstrap apply, ${n} apps, re-apply (no changes)`,
      msPerOp: reapply[2]!,
      note: `median of 5; reads only (${n * 2 + 5} GET/LIST), 0 writes`,
    });
    return rows;
  } finally {
    await server.stop();
  }
}

/** Runs the benchmark and returns one result per workload. */
export async function runBootstrapBench(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), "sealkeeper-bench-bootstrap-"));
  const server = await startDevServer();
  const root = server.client();
  try {
    const results: BenchResult[] = [];
    for (const n of [APPS, APPS_LARGE]) results.push(...(await sizeRows(n, dir)));
    const firstMs = results.find((r) => r.name.startsWith(`sealkeeper bootstrap apply, ${APPS} apps, fresh`))!.msPerOp;
    const env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };

    // a first apply as one fresh process on its own fresh server (what a user or CI job pays, Node and tsx included)
    const entry = fileURLToPath(new URL("../src/cli/entry.ts", import.meta.url));
    const spec2 = join(dir, "apps-2h.yaml");
    writeAppsSpec(spec2, APPS, { ttl: "2h" });
    const tp = performance.now();
    const procStatus = await run(process.execPath, ["--import", "tsx", entry, "bootstrap", "apply", "-f", spec2], {
      ...process.env,
      ...env,
      NO_COLOR: "1",
    });
    const procMs = performance.now() - tp;
    if (procStatus.code !== 0) throw new Error(`process apply failed: ${procStatus.stderr.slice(0, 500)}`);
    results.push({
      name: `sealkeeper bootstrap apply, ${APPS} apps, fresh server, one new process (tsx)`,
      msPerOp: procMs,
      note: "includes Node + tsx start-up and transpiling",
    });

    const script = join(dir, "loop.sh");
    writeFileSync(script, cliLoopScript(APPS));
    const vaultDir = serverBinaryPath().replace(/\/vault$/, "");
    const tc = performance.now();
    const loop = await run("bash", [script], {
      PATH: `${vaultDir}:${process.env.PATH}`,
      HOME: dir,
      VAULT_ADDR: server.address,
      VAULT_TOKEN: server.rootToken,
    });
    if (loop.code !== 0) throw new Error(`shell loop failed: ${loop.stderr.slice(-500)}`);
    const cliMs = performance.now() - tc;
    results.push({
      name: `shell loop of vault policy write + vault write role, ${APPS} apps`,
      msPerOp: cliMs,
      note: `${APPS * 2 + 2} vault processes, sequential`,
    });
    results.push({
      name: "speed-up of first apply over the shell loop",
      msPerOp: cliMs / firstMs,
      note: "ratio (not ms): shell loop time / sealkeeper first apply time",
    });
    return results;
  } finally {
    await root.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await runBootstrapBench();
  for (const r of results) {
    process.stdout.write(`${r.name}: ${r.msPerOp.toFixed(r.msPerOp < 100 ? 2 : 0)}${r.note ? ` (${r.note})` : ""}\n`);
  }
  process.exit(0);
}
