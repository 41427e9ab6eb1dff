import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initAndUnseal, startCluster, type TestCluster } from "../harness/cluster.js";
import { runSealkeeper } from "../harness/run-cli.js";

// One real 3-node raft cluster for the whole file: sealed and uninitialised, then initialised and unsealed.
let cluster: TestCluster;
const addrArgs = () => cluster.nodes.flatMap((n) => ["--address", n.address]);

beforeAll(async () => {
  cluster = await startCluster(3);
});
afterAll(async () => {
  await cluster?.stop();
});

describe("sealkeeper status on a real 3-node raft cluster", () => {
  it("reports every node uninitialised and sealed, exit 2", async () => {
    const r = await runSealkeeper(["status", ...addrArgs(), "--format", "json"]);
    expect(r.code).toBe(2);
    const nodes = JSON.parse(r.stdout);
    expect(nodes).toHaveLength(3);
    for (const n of nodes) {
      expect(n).toMatchObject({ reachable: true, initialized: false, sealed: true, sealType: "shamir" });
      expect(n.haRole).toBe("uninitialised");
    }
  });

  it("after init and unseal: all unsealed, one active, two standbys, exit 0", async () => {
    await initAndUnseal(cluster.nodes, { shares: 5, threshold: 3 });
    const r = await runSealkeeper(["status", ...addrArgs(), "--format", "json"]);
    expect(r.code).toBe(0);
    const nodes = JSON.parse(r.stdout);
    expect(nodes.map((n: { sealed: boolean }) => n.sealed)).toEqual([false, false, false]);
    expect(nodes.filter((n: { haRole: string }) => n.haRole === "active")).toHaveLength(1);
    expect(nodes.filter((n: { haRole: string }) => n.haRole === "standby")).toHaveLength(2);
    for (const n of nodes) {
      expect(n).toMatchObject({ initialized: true, threshold: 3, shares: 5, storageType: "raft" });
      expect(n.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(n.clusterName).toBeTruthy();
    }
  });

  it("prints a table for people, with NO_COLOR respected", async () => {
    const r = await runSealkeeper(["status", ...addrArgs()], { stdoutIsTTY: true, env: { NO_COLOR: "1" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ADDRESS\s+STATE\s+PROGRESS/);
    expect(r.stdout).toContain("unsealed");
    expect(r.stdout).not.toContain("\x1b[");
  });

  it("a node down is reported unreachable while the others are still reported, exit 1", async () => {
    const down = cluster.nodes[2]!;
    await down.stop();
    try {
      const r = await runSealkeeper(["status", ...addrArgs(), "--format", "json"]);
      expect(r.code).toBe(1);
      const nodes = JSON.parse(r.stdout);
      expect(nodes[2]).toMatchObject({ reachable: false });
      expect(nodes[2].error).toMatch(/refused the connection/);
      expect(nodes[0].reachable && nodes[1].reachable).toBe(true);
    } finally {
      await down.start();
    }
  });

  it("a sealed node makes the exit code 2 (Vault's status rule)", async () => {
    // after a restart a Shamir node is sealed again
    const r = await runSealkeeper(["status", "-a", cluster.nodes[2]!.address, "--format", "json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ initialized: true, sealed: true, progress: 0, threshold: 3 });
  });
});
