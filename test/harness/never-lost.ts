/**
 * The shared test bed of the "never lost" files (issue 12): one real node (file storage) behind the fault-injecting
 * proxy, the operators' real age and gpg keys, and the two checks every critical section gets: a signal while the
 * irreversible answer is held back, and an answer later than `--timeout`. Both wait on observable state (the proxy's
 * events, the CLI's stderr), never on a clock.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { type ChildRun, waitUntil } from "./child-cli.js";
import { startNode, type TestNode } from "./cluster.js";
import { type FaultProxy, startFaultProxy } from "./fault-proxy.js";
import {
  type AgeOperator,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
  stopGpgAgent,
} from "./operators.js";

export const SIGNAL_CODES = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 } as const;
export type TestSignal = keyof typeof SIGNAL_CODES;
export const SIGNALS = Object.keys(SIGNAL_CODES) as TestSignal[];

export interface NeverLostBed {
  work: string;
  node: TestNode;
  proxy: FaultProxy;
  alice: AgeOperator;
  bob: AgeOperator;
  carol: PgpOperator;
  holder: AgeOperator;
  close(): Promise<void>;
}

/** One node (file storage) behind a fault proxy, and operators alice, bob (age), carol (gpg) and holder (age). */
export async function startNeverLostBed(prefix: string): Promise<NeverLostBed> {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const keys = join(work, "keys");
  mkdirSync(keys);
  const starting = startNode({ storage: "file" });
  const alice = makeAgeOperator(keys, "alice");
  const bob = makeAgeOperator(keys, "bob");
  const holder = makeAgeOperator(keys, "holder");
  const gnupg = makeGnupgHome(work);
  const carol = makePgpOperator(gnupg, keys, "carol");
  const node = await starting;
  const proxy = await startFaultProxy(node.apiPort);
  return {
    work,
    node,
    proxy,
    alice,
    bob,
    carol,
    holder,
    async close() {
      await proxy.close();
      await node.stop();
      stopGpgAgent(gnupg);
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * The armed answer has reached the proxy's hold: `sig` now (and again once announced), then the answer goes through.
 * Asserts the run deferred it: exit 128 + the signal's number, one notice saying what stopping would lose, and the
 * closing line naming the signal. Returns the run's output.
 */
export async function signalDuringHeldAnswer(run: ChildRun, proxy: FaultProxy, sig: TestSignal, wouldLose: string) {
  await proxy.triggered();
  run.child.kill(sig);
  await run.waitForStderr(new RegExp(`${sig} received while`));
  // a second signal is deferred silently
  run.child.kill(sig);
  proxy.release();
  const res = await run.exited;
  expect(res.code, res.stderr).toBe(SIGNAL_CODES[sig]);
  expect(res.stderr.match(/received while/g)).toHaveLength(1);
  expect(res.stderr).toContain(`stopping now would lose ${wouldLose}`);
  expect(res.stderr).toContain(`stopped after ${sig}`);
  return res;
}

/** The armed answer is held three times longer than the run's `--timeout 1s`: the run is still waiting, then ends. */
export async function answerLaterThanTimeout(run: ChildRun, proxy: FaultProxy) {
  await proxy.triggered();
  await waitUntil("the answer held for 3 s", () => proxy.heldForMs() > 3_000);
  expect(run.child.exitCode).toBeNull();
  proxy.release();
  const res = await run.exited;
  expect(res.stderr).not.toMatch(/did not answer within/);
  return res;
}
