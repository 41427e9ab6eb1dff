/**
 * Two operators unsealing the same 3-node raft cluster from two processes at the same moment (issue 12): the BUILT
 * CLI twice as real child processes, started together, each with its own share files. With the same shares, both end
 * with every node unsealed and say so (the other's copies are duplicates, never counted twice). With different shares
 * that only reach the threshold together, the cluster unseals and each process reports what it saw truthfully: a
 * process that ends first says which nodes still wait and for how many shares, never that a node failed or lost its
 * progress. The followers join their leader during the run (retry_join), the case where the other process's shares
 * make a follower reach its threshold unseen.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Transcript } from "../../src/ceremony/transcript.js";
import { runUnseal } from "../../src/ceremony/unseal.js";
import { type KeyShare, parseKeyShare } from "../../src/ceremony/unseal-key.js";
import { spawnCli, waitUntil } from "../harness/child-cli.js";
import { startCluster, type TestCluster, waitForHa } from "../harness/cluster.js";

let cluster: TestCluster;
let work: string;
let shareFiles: string[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-unseal-concurrent-"));
  cluster = await startCluster(3);
  const c = cluster.nodes[0]!.client();
  const init = await c.init({ secret_shares: 5, secret_threshold: 3 });
  await c.close();
  shareFiles = init.keys.map((k, i) => {
    const f = join(work, `share${i + 1}.txt`);
    writeFileSync(f, `${k}\n`, { mode: 0o600 });
    return f;
  });
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

interface UnsealJson {
  nodes: { address: string; state: string; progress: number; threshold: number; message?: string }[];
}

/** Starts one operator's `sealkeeper unseal` of every node with these shares (1-based numbers). */
function operator(...shares: number[]) {
  return spawnCli(
    [
      "unseal",
      ...cluster.nodes.flatMap((n) => ["-a", n.address]),
      "--non-interactive",
      "--format",
      "json",
      ...shares.flatMap((i) => ["--share-file", shareFiles[i - 1]!]),
    ],
    { env: { HOME: work }, cwd: work },
  );
}

async function sealedNodes(): Promise<string[]> {
  const sealed: string[] = [];
  for (const n of cluster.nodes) {
    const c = n.client();
    try {
      if ((await c.sealStatus()).sealed) sealed.push(n.address);
    } catch {
      sealed.push(n.address);
    } finally {
      await c.close();
    }
  }
  return sealed;
}

/** Every node restarted: all sealed again, initialised, their raft membership kept. */
async function resealAll(): Promise<void> {
  for (const n of cluster.nodes) await n.restart();
  await waitUntil("every node sealed", async () => (await sealedNodes()).length === 3);
}

/** Nothing in a report may claim a fault that did not happen. */
function assertTruthful(r: UnsealJson, stderr: string): void {
  for (const n of r.nodes) {
    expect(["unsealed", "sealed"], `${n.address}: ${n.state} (${n.message})`).toContain(n.state);
    expect(n.message ?? "").not.toMatch(/rejected|went back|lost its progress|did not unseal|reset/);
  }
  expect(stderr).not.toMatch(/rejected|went back|error:/);
}

/** Share `i` (1-based) as an operator gives it. */
function operatorShare(i: number, name: string): KeyShare {
  return parseKeyShare(readFileSync(shareFiles[i - 1]!, "utf8").trim(), `share ${i}`, name);
}

/** The transcript's unseal-share lines: node and outcome. */
function shareLines(path: string): { node: string; operator?: string; detail: string }[] {
  return readFileSync(path, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { action: string; node: string; operator?: string; detail: string })
    .filter((e) => e.action === "unseal-share");
}

describe("two operators unseal the same cluster at once", () => {
  it("the same three shares in both processes: both end with every node unsealed, no share counted twice", async () => {
    const a = operator(1, 2, 3);
    const b = operator(1, 2, 3);
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    for (const r of [ra, rb]) {
      expect(r.code, `${r.stderr}\n${r.stdout}`).toBe(0);
      const report = JSON.parse(r.stdout) as UnsealJson;
      expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
      assertTruthful(report, r.stderr);
    }
    await waitForHa(cluster.nodes, 120_000);
    expect(await sealedNodes()).toEqual([]);
  });

  it("alice+bob and carol+dave, bob's share completes: carol+dave's run says so, lists its own share, transcript true (issue 27)", async () => {
    await resealAll();
    const clients = () => cluster.nodes.map((n) => n.client());
    const [ca, cc] = [clients(), clients()];
    const [ta, tc] = [join(work, "alice-bob.transcript"), join(work, "carol-dave.transcript")];
    let carolGiven: () => void = () => undefined;
    const carolIn = new Promise<void>((r) => {
      carolGiven = r;
    });
    let i = 0;
    // alice, then (once carol's share is in) bob: bob's share completes every node
    const runA = runUnseal({
      clients: ca,
      transcript: Transcript.open(ta),
      source: {
        next: async () => {
          i++;
          if (i === 2) await carolIn;
          return i === 1 ? operatorShare(1, "alice") : i === 2 ? operatorShare(2, "bob") : null;
        },
      },
    });
    let j = 0;
    let aDone = false;
    const runC = runUnseal({
      clients: cc,
      transcript: Transcript.open(tc),
      source: {
        next: async () => {
          j++;
          if (j === 2) {
            carolGiven();
            await runA;
            aDone = true;
          }
          return j === 1 ? operatorShare(3, "carol") : j === 2 ? operatorShare(4, "dave") : null;
        },
      },
    });
    const [ra, rc] = await Promise.all([runA, runC]);
    await Promise.all([...ca, ...cc].map((c) => c.close()));
    expect(aDone).toBe(true);
    expect(ra.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
    expect(rc.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
    for (const n of rc.nodes) {
      // before: dave's share, sent to a node already unsealed, was answered "unsealed" and taken for the completing one
      expect(n.contributors).toEqual(["carol"]);
      expect(n.othersShares).toBe(2);
      expect(n.message).toBe("unsealed by another run's share: the share from dave did not complete it");
    }
    for (const n of ra.nodes) expect(n.contributors.every((c) => c === "alice" || c === "bob")).toBe(true);
    // each node is recorded "complete" in exactly one transcript: the run whose share completed it
    const a = shareLines(ta);
    const c = shareLines(tc);
    for (const node of cluster.nodes) {
      const completes = [...a, ...c].filter((e) => e.node === node.address && e.detail === "complete");
      expect(completes.map((e) => e.operator)).toEqual(["bob"]);
      expect(c.filter((e) => e.node === node.address).map((e) => `${e.operator} ${e.detail}`)).toEqual([
        "carol accepted",
        "dave completed-elsewhere",
      ]);
    }
    await waitForHa(cluster.nodes, 120_000);
  });

  it("different shares that reach the threshold only together: the cluster unseals, each reports truthfully", async () => {
    await resealAll();
    const a = operator(1, 2);
    const b = operator(3, 4);
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    const reports = [ra, rb].map((r) => ({ r, report: JSON.parse(r.stdout) as UnsealJson }));
    for (const { r, report } of reports) {
      assertTruthful(report, r.stderr);
      if (r.code === 0) {
        expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
      } else {
        // it ran out of shares first: it says which nodes still wait, with their progress (never above 2 of 3)
        expect(r.code, r.stderr).toBe(2);
        for (const n of report.nodes.filter((x) => x.state === "sealed")) {
          expect(n.threshold).toBe(3);
          expect(n.progress).toBeLessThan(3);
        }
      }
    }
    // the one whose share completed the quorum saw it
    expect([ra.code, rb.code]).toContain(0);
    await waitForHa(cluster.nodes, 120_000);
    expect(await sealedNodes()).toEqual([]);
    // and a third look agrees
    const status = await spawnCli(["status", ...cluster.nodes.flatMap((n) => ["-a", n.address])], {
      env: { HOME: work },
    }).exited;
    expect(status.code, status.stderr).toBe(0);
  });
});
