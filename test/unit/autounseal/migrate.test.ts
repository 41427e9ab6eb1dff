/**
 * The migration driver's decisions against scripted nodes (the real procedure runs in
 * test/integration/autounseal-migrate.test.ts against real servers): ordering, when shares are sent, refusals.
 */
import { describe, expect, it } from "vitest";
import {
  describeConfigChange,
  type MigrationEvent,
  type MigrationPlan,
  type MigrationUnfinished,
  planMigration,
  runMigration,
  usesAutoUnseal,
} from "../../../src/autounseal/migrate.js";
import { parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { VaultConnectionError, VaultHttpError } from "../../../src/errors.js";
import type { VaultClient } from "../../../src/vault/client.js";
import type { SealStatus } from "../../../src/vault/types.js";

const shamir = (over: Partial<SealStatus> = {}): SealStatus => ({
  type: "shamir",
  initialized: true,
  sealed: false,
  t: 2,
  n: 3,
  progress: 0,
  nonce: "",
  version: "1.21.0",
  migration: false,
  recovery_seal: false,
  ...over,
});

const STALE = 'barrier seal type of "shamir" does not match loaded type of "awskms"';

/**
 * A node whose seal-status follows a script; unseal calls are recorded and may change the state. "stale" is an
 * OpenBao 2.6 standby unsealed in migration mode: seal-status answers 500 STALE, sys/leader an unsealed standby
 * (unless `leader` is false: a node whose sys/leader does not answer).
 */
function fakeNode(address: string, script: (SealStatus | "down" | "stale")[], health = 429, leader = true) {
  const sent: { key?: string; migrate?: boolean }[] = [];
  let i = 0;
  let state: SealStatus | "down" | "stale" = script[0]!;
  const client = {
    address,
    async sealStatus() {
      state = script[Math.min(i++, script.length - 1)]!;
      if (state === "down") throw new VaultConnectionError(address, "refused", "refused");
      if (state === "stale") throw new VaultHttpError(address, "GET", "/v1/sys/seal-status", 500, [STALE]);
      return state;
    },
    async leader() {
      if (!leader) throw new VaultHttpError(address, "GET", "/v1/sys/leader", 503, ["Vault is sealed"]);
      return { haEnabled: true, isSelf: false, leaderAddress: "http://a" };
    },
    async health() {
      return { status: health, body: {} };
    },
    hasToken: () => false,
    async unseal(req: { key?: string; migrate?: boolean }, irreversible?: { onWaiting?: (ms: number) => void }) {
      sent.push(req);
      if (!req.migrate)
        throw new VaultHttpError(address, "PUT", "/v1/sys/unseal", 400, ["migrate option not provided"]);
      // the client calls onWaiting while an answer is awaited: once here, as if the answer took a while
      irreversible?.onWaiting?.(5_000 * sent.length);
      const sealed = sent.length < 2;
      return shamir({ sealed, progress: sealed ? sent.length : 0, migration: true, type: "awskms" });
    },
  } as unknown as VaultClient;
  return { client, sent };
}

const unexpected = (): never => {
  throw new Error("the run was expected to fail");
};
const shares = ["a", "b"].map((c, i) => parseKeyShare(`${c.repeat(64)}0${i + 1}`, `s${i}`));
const migrated = shamir({ type: "awskms", recovery_seal: true });
const standbyThenActive: MigrationPlan = {
  nodes: [
    { address: "http://b", role: "standby" },
    { address: "http://a", role: "active" },
  ],
  threshold: 2,
  shares: 3,
  warnings: [],
};
const loneStandby = (address: string): MigrationPlan => ({
  nodes: [{ address, role: "standby" }],
  threshold: 2,
  shares: 3,
  warnings: [],
});

describe("usesAutoUnseal", () => {
  it("reads type and recovery_seal", () => {
    expect(usesAutoUnseal({ type: "shamir", recovery_seal: false })).toBe(false);
    expect(usesAutoUnseal({ type: "awskms", recovery_seal: true })).toBe(true);
    expect(usesAutoUnseal({ type: "awskms" })).toBe(true);
  });
});

describe("planMigration", () => {
  it("orders standbys first and the active last", async () => {
    const a = fakeNode("http://a", [shamir()], 200);
    const b = fakeNode("http://b", [shamir()], 429);
    const c = fakeNode("http://c", ["down"]);
    const plan = await planMigration([a.client, b.client, c.client]);
    expect(plan.nodes.map((n) => `${n.address}:${n.role}`)).toEqual([
      "http://b:standby",
      "http://c:unreachable",
      "http://a:active",
    ]);
    expect(plan).toMatchObject({ threshold: 2, shares: 3 });
    expect(describeConfigChange(plan, 'seal "awskms" {}\n')).toMatch(/3\. http:\/\/a \(the active node, last/);
    const text = describeConfigChange(plan, 'seal "awskms" {\n  access_key = "AKIA"\n  secret_key = "s3\\"cr"\n}\n');
    expect(text).toContain('secret_key = "<redacted>"');
    expect(text).toContain('access_key = "<redacted>"');
    expect(text).not.toContain("s3");
  });
  it("OpenBao: a standby left waiting by an earlier run is planned as migrating", async () => {
    const a = fakeNode("http://a", [shamir()], 200);
    const b = fakeNode("http://b", ["stale"]);
    const plan = await planMigration([a.client, b.client]);
    expect(plan.nodes.map((n) => `${n.address}:${n.role}`)).toEqual(["http://b:migrating", "http://a:active"]);
    expect(plan).toMatchObject({ threshold: 2, shares: 3 });
    await expect(planMigration([b.client])).rejects.toThrow(/^no node answers seal-status: every reachable node/);
  });
  it("a rerun classifies every node: done, waiting in migration mode, still on Shamir, down (issue 27)", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true });
    const a = fakeNode("http://a", [migrated], 200);
    const b = fakeNode("http://b", [shamir({ type: "awskms", migration: true })]);
    const c = fakeNode("http://c", [inMigration]);
    const d = fakeNode("http://d", [shamir()], 429);
    const e = fakeNode("http://e", ["down"]);
    const plan = await planMigration([a.client, b.client, c.client, d.client, e.client]);
    expect(plan.nodes.map((n) => `${n.address}:${n.role}`)).toEqual([
      "http://b:migrating",
      "http://c:migrating",
      "http://d:standby",
      "http://e:unreachable",
      "http://a:migrated",
    ]);
    expect(describeConfigChange(plan, 'seal "awskms" {}\n')).toMatch(
      /5\. http:\/\/a \(already on the new seal: nothing to do\)/,
    );
    // done nodes and a node down: the down one may come back in migration mode, so the run waits for it
    await expect(planMigration([a.client, e.client])).resolves.toMatchObject({ threshold: 2 });
    await expect(planMigration([a.client, fakeNode("http://f", [migrated]).client])).rejects.toThrow(
      "every node already uses the awskms seal with no migration pending: there is nothing to migrate",
    );
    // unless an earlier run of this migration left it unrecorded: then the plan goes on and the record gets written
    const resumed = await planMigration([a.client, fakeNode("http://f", [migrated]).client], { resuming: true });
    expect(resumed.nodes.map((n) => n.role)).toEqual(["migrated", "migrated"]);
  });
  it("refuses an uninitialised node and a cluster already on awskms", async () => {
    await expect(planMigration([fakeNode("http://a", [shamir({ initialized: false })]).client])).rejects.toThrow(
      "http://a is not initialised: there is nothing to migrate",
    );
    await expect(planMigration([fakeNode("http://a", [migrated]).client])).rejects.toThrow(
      "http://a already uses the awskms seal: there is nothing to migrate",
    );
  });
});

/** The standby http://b, then the active http://a. */
const runStandbyThenActive = (
  standby: ReturnType<typeof fakeNode>,
  active: ReturnType<typeof fakeNode>,
  onEvent: (e: MigrationEvent) => void,
) => runMigration({ clients: [active.client, standby.client], plan: standbyThenActive, shares, pollMs: 1, onEvent });
/** One standby node, its plan alone, a 30 ms node timeout: for the time-outs. */
const runAlone = (n: ReturnType<typeof fakeNode>) =>
  runMigration({ clients: [n.client], plan: loneStandby(n.client.address), shares, pollMs: 1, nodeTimeoutMs: 30 });

describe("runMigration", () => {
  it("waits through the restart, sends shares with migrate=true only in migration mode, then waits for the end", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true });
    const standby = fakeNode("http://b", [
      shamir(),
      "down",
      "down",
      inMigration,
      shamir({ type: "awskms", migration: true }),
      migrated,
    ]);
    const active = fakeNode("http://a", [shamir(), "down", shamir({ type: "awskms", sealed: true }), migrated]);
    const events: string[] = [];
    const report = await runStandbyThenActive(standby, active, (e) =>
      events.push(`${e.kind} ${e.address}${"waitedMs" in e ? ` ${e.waitedMs}` : ""}`),
    );
    // the share that reaches the threshold is announced (its answer is awaited with no time limit); every answer
    // awaited is reported as it waits
    expect(events.filter((e) => !e.startsWith("waiting") && !e.startsWith("finished"))).toEqual([
      "unsealing http://b",
      "completing http://b",
      "answer-waiting http://b 10000",
      "submitted http://b",
      "node-done http://b",
      "node-done http://a",
    ]);
    expect(standby.sent).toEqual([
      { key: shares[0]!.hex, migrate: true },
      { key: shares[1]!.hex, migrate: true },
    ]);
    expect(active.sent).toEqual([]);
    expect(report.nodes.map((n) => n.how)).toEqual(["unsealed-with-migrate", "auto-unsealed"]);
    expect(report).toMatchObject({ recoveryThreshold: 2, recoveryShares: 3, sealType: "awskms" });
    expect(events[0]).toBe("waiting http://b");
  });

  it("OpenBao: a standby whose seal-status answers the stale-config 500 after its migrate unseal is done", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true });
    const standby = fakeNode("http://b", [shamir(), "down", inMigration, "stale", "stale", "stale", migrated]);
    const active = fakeNode("http://a", [shamir(), shamir(), shamir(), "down", migrated]);
    const events: string[] = [];
    const report = await runStandbyThenActive(standby, active, (e) => {
      if (e.kind === "node-done") events.push(`${e.address} ${e.how} ${e.detail ?? "-"}`);
    });
    expect(standby.sent).toHaveLength(2);
    expect(events[0]).toMatch(
      /^http:\/\/b unsealed-with-migrate its seal-status answers 500 \(barrier seal type of "shamir"/,
    );
    expect(events[1]).toBe("http://a auto-unsealed -");
    expect(report.nodes.map((n) => `${n.address} ${n.how} ${n.type} ${n.recoverySeal}`)).toEqual([
      "http://b unsealed-with-migrate awskms true",
      "http://a auto-unsealed awskms true",
    ]);
  });

  it("OpenBao: a standby still on the stale config at the end is named with what to do", async () => {
    const b = fakeNode("http://b", ["stale"]);
    const err = await runAlone(b).then(unexpected, (e: MigrationUnfinished) => e);
    expect(err.message).toMatch(
      /^1 of 1 nodes did not finish the migration within 0.03s of the last step: http:\/\/b \(migrating: its seal-status answers 500/,
    );
    expect(err.hint).toMatch(
      /^the seal is migrated by the node that becomes active: stop the node that is still active/,
    );
  });

  it("the stale-config 500 without an unsealed standby behind it is not taken for one", async () => {
    const b = fakeNode("http://b", ["stale"], 429, false);
    await expect(runAlone(b)).rejects.toThrow("http://b (unreachable: not reachable (down or restarting))");
    expect(b.sent).toEqual([]);
  });

  it("refuses fewer shares than the threshold", async () => {
    await expect(
      runMigration({ clients: [], plan: { nodes: [], threshold: 3, shares: 5, warnings: [] }, shares, pollMs: 1 }),
    ).rejects.toThrow("2 shares given, the threshold is 3");
  });

  it("a migrated standby that restarts before the seal is migrated gets the shares again (issue 27)", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true, t: 2 });
    const waitingForActive = shamir({ type: "awskms", migration: true });
    const standby = fakeNode("http://b", [
      inMigration,
      inMigration,
      waitingForActive,
      "down",
      inMigration,
      inMigration,
      waitingForActive,
      migrated,
    ]);
    const active = fakeNode("http://a", [
      shamir(),
      shamir(),
      shamir(),
      shamir(),
      shamir(),
      "down",
      "down",
      "down",
      "down",
      migrated,
    ]);
    const events: string[] = [];
    await runStandbyThenActive(standby, active, (e) => {
      if (e.kind === "node-restarted" || e.kind === "node-done") events.push(`${e.kind} ${e.address}`);
    });
    expect(standby.sent.length).toBeGreaterThanOrEqual(3);
    expect(events.slice(0, 3)).toEqual(["node-done http://b", "node-restarted http://b", "node-done http://b"]);
  });

  it("a frozen node stalls no other: each is driven on its own, the error names only the frozen one (issue 27)", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true });
    const b = fakeNode("http://b", [inMigration, migrated]);
    const frozen = { address: "http://c", sealStatus: () => new Promise(() => undefined) } as unknown as VaultClient;
    const plan: MigrationPlan = {
      ...standbyThenActive,
      nodes: [
        { address: "http://c", role: "standby" },
        { address: "http://b", role: "standby" },
      ],
    };
    const events: string[] = [];
    const err = await runMigration({
      clients: [frozen, b.client],
      plan,
      shares,
      pollMs: 1,
      nodeTimeoutMs: 200,
      onEvent: (e) => events.push(`${e.kind} ${e.address}`),
    }).then(unexpected, (e: MigrationUnfinished) => e);
    expect(b.sent).toHaveLength(2);
    expect(events).toContain("finished http://b");
    expect(err.message).toMatch(
      /^1 of 2 nodes did not finish the migration within 0.2s of the last step: http:\/\/c \(no-answer: /,
    );
    expect(err.message).not.toContain("http://b");
    expect(err.interrupted).toBe(false);
  });

  it("a stop signal ends the run at the next step with where each node stands (issue 27)", async () => {
    const stop = new AbortController();
    const n = fakeNode("http://a", [shamir()]);
    const run = runMigration({
      clients: [n.client],
      plan: loneStandby("http://a"),
      shares,
      pollMs: 1_000,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 20);
    const err = await run.then(unexpected, (e: MigrationUnfinished) => e);
    expect(err.message).toBe("stopped before the migration finished (1 of 1 nodes not finished)");
    expect(err.interrupted).toBe(true);
    expect(err.nodes).toEqual([
      {
        address: "http://a",
        state: "old-seal",
        detail: "still on the shamir seal (unsealed): not restarted with the stanza yet",
      },
    ]);
  });

  it("OpenBao: the completing share answered with the stale-config 500 is a standby that unsealed (issue 27)", async () => {
    const inMigration = shamir({ type: "awskms", sealed: true, migration: true });
    const b = fakeNode("http://b", [inMigration, "stale", migrated]);
    const sent: unknown[] = [];
    const client = {
      ...b.client,
      sealStatus: b.client.sealStatus,
      leader: b.client.leader,
      async unseal(req: unknown) {
        sent.push(req);
        if (sent.length < 2) return shamir({ type: "awskms", sealed: true, migration: true, progress: 1 });
        throw new VaultHttpError("http://b", "PUT", "/v1/sys/unseal", 500, [STALE]);
      },
    } as unknown as VaultClient;
    const events: string[] = [];
    const report = await runMigration({
      clients: [client],
      plan: loneStandby("http://b"),
      shares,
      pollMs: 1,
      onEvent: (e) => events.push(`${e.kind} ${e.address}`),
    });
    expect(sent).toHaveLength(2);
    expect(events).toContain("node-done http://b");
    expect(report.nodes[0]).toMatchObject({ how: "unsealed-with-migrate", type: "awskms" });
  });

  it("a node that never comes back times out with a hint", async () => {
    const n = fakeNode("http://a", [shamir()]);
    const err = await runAlone(n).then(unexpected, (e: MigrationUnfinished) => e);
    expect(err.message).toBe(
      "1 of 1 nodes did not finish the migration within 0.03s of the last step: http://a (old-seal: still on the shamir seal (unsealed): not restarted with the stanza yet)",
    );
    expect(err.hint).toMatch(/^restart http:\/\/a with the seal stanza .*run the same command again/);
  });
});
