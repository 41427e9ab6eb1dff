/**
 * The External Secrets Operator v0.16.2 (built by scripts/build-kube.sh) against a harness cluster (kube.ts): its CRDs
 * applied server-side, and the real controller run out-of-cluster as the admin (no leader election, metrics on
 * loopback). Used by eso-chain.test.ts and `npm run demo -- --kubernetes`.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { logChildOutput } from "./child-log.js";
import { freePort, sleep } from "./cluster.js";
import type { KubeCluster } from "./kube.js";
import { spawnOwned } from "./owned-spawn.js";
import { esoCrdDir, kubeBinaryPath } from "./paths.js";

/** Polls `fn` until it returns a value (not undefined), up to `ms`. */
export async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

/** ESO's CRDs from its module (config/crds/bases), server-side (they are large), then waited on until Established. */
export async function installEsoCrds(kube: KubeCluster): Promise<number> {
  if (!existsSync(esoCrdDir())) throw new Error(`${esoCrdDir()} is missing: run bash scripts/build-kube.sh all`);
  const crds = readdirSync(esoCrdDir()).filter((f) => f.endsWith(".yaml"));
  await kube.kubectlOk(["apply", "--server-side", ...crds.flatMap((f) => ["-f", join(esoCrdDir(), f)])]);
  await kube.kubectlOk(["wait", "--for=condition=Established", "crd", "--all", "--timeout=120s"]);
  return crds.length;
}

export interface EsoController {
  proc: ChildProcess;
  /** Launch to its controllers' "Starting workers". */
  readyMs: number;
  log: string;
  stop(): Promise<void>;
}

/** Starts the controller out-of-cluster with the admin kubeconfig and waits until its workers start. */
export async function startEso(kube: KubeCluster, dir: string): Promise<EsoController> {
  const bin = kubeBinaryPath("external-secrets");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run bash scripts/build-kube.sh all`);
  const t0 = Date.now();
  const log = join(dir, "eso.log");
  const proc = spawnOwned(
    bin,
    [`--metrics-addr=127.0.0.1:${await freePort()}`, "--enable-leader-election=false", "--loglevel=info"],
    { env: { PATH: process.env.PATH, HOME: dir, KUBECONFIG: kube.kubeconfig }, stdio: ["ignore", "pipe", "pipe"] },
  );
  logChildOutput(proc, log);
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  };
  try {
    await waitFor("ESO's controllers to start", 120_000, async () => {
      if (proc.exitCode !== null) throw new Error(`ESO exited:\n${readFileSync(log, "utf8").slice(-3000)}`);
      return /Starting workers/.test(readFileSync(log, "utf8")) ? true : undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { proc, readyMs: Date.now() - t0, log, stop };
}
