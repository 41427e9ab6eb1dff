/**
 * The migration driver's decisions against scripted nodes (the real procedure runs in
 * test/integration/autounseal-migrate.test.ts against real servers): ordering, when shares are sent, refusals.
 */
import { describe, expect, it } from "vitest";
import { describeConfigChange, planMigration, runMigration, usesAutoUnseal } from "../../../src/autounseal/migrate.js";
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

/** A node whose seal-status follows a script; unseal calls are recorded and may change the state. */
function fakeNode(address: string, script: (SealStatus | "down")[], health = 429) {
  const sent: { key?: string; migrate?: boolean }[] = [];
  let i = 0;
  let state: SealStatus | "down" = script[0]!;
  const client = {
    address,
    async sealStatus() {
      state = script[Math.min(i++, script.length - 1)]!;
      if (state === "down") throw new VaultConnectionError(address, "refused", "refused");
      return state;
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

const shares = ["a", "b"].map((c, i) => parseKeyShare(`${c.repeat(64)}0${i + 1}`, `s${i}`));
const migrated = shamir({ type: "awskms", recovery_seal: true });

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
  it("refuses an uninitialised node and a cluster already on awskms", async () => {
    await expect(planMigration([fakeNode("http://a", [shamir({ initialized: false })]).client])).rejects.toThrow(
      "http://a is not initialised: there is nothing to migrate",
    );
    await expect(planMigration([fakeNode("http://a", [migrated]).client])).rejects.toThrow(
      "http://a already uses the awskms seal: there is nothing to migrate",
    );
  });
});

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
    const report = await runMigration({
      clients: [active.client, standby.client],
      plan: {
        nodes: [
          { address: "http://b", role: "standby" },
          { address: "http://a", role: "active" },
        ],
        threshold: 2,
        shares: 3,
        warnings: [],
      },
      shares,
      pollMs: 1,
      onEvent: (e) => events.push(`${e.kind} ${e.address}${"waitedMs" in e ? ` ${e.waitedMs}` : ""}`),
    });
    // the share that reaches the threshold is announced (its answer is awaited with no time limit); every answer
    // awaited is reported as it waits
    expect(events.filter((e) => !e.startsWith("waiting") && !e.startsWith("finished"))).toEqual([
      "unsealing http://b",
      "answer-waiting http://b 5000",
      "completing http://b",
      "answer-waiting http://b 10000",
      "node-done http://a",
      "node-done http://b",
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

  it("refuses fewer shares than the threshold", async () => {
    await expect(
      runMigration({ clients: [], plan: { nodes: [], threshold: 3, shares: 5, warnings: [] }, shares, pollMs: 1 }),
    ).rejects.toThrow("2 shares given, the threshold is 3");
  });

  it("a node that never comes back times out with a hint", async () => {
    const n = fakeNode("http://a", [shamir()]);
    await expect(
      runMigration({
        clients: [n.client],
        plan: { nodes: [{ address: "http://a", role: "standby" }], threshold: 2, shares: 3, warnings: [] },
        shares,
        pollMs: 1,
        nodeTimeoutMs: 30,
      }),
    ).rejects.toThrow("http://a did not come back with the new seal within 0.03s");
  });
});
