import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultHttpError } from "../../src/errors.js";
import { combineShares } from "../../src/shamir/combine.js";
import { decodeShare, encodeShare } from "../../src/shamir/encoding.js";
import { splitSecret } from "../../src/shamir/split.js";
import type { VaultClient } from "../../src/vault/client.js";
import { startNode, type TestNode } from "../harness/cluster.js";
import { runSealkeeper } from "../harness/run-cli.js";

/**
 * Our Shamir code against a real server's unseal keys: init 5 shares / threshold 3, check every 3-subset combines to
 * the same key, then re-split that key with our split and unseal the server with 3 of OUR shares (hex and base64).
 */
let node: TestNode;
let client: VaultClient;
let keysHex: string[];
let keysB64: string[];
let rootToken: string;

beforeAll(async () => {
  node = await startNode({ storage: "raft" });
  client = node.client();
  const res = await client.init({ secret_shares: 5, secret_threshold: 3 });
  keysHex = res.keys;
  keysB64 = res.keys_base64;
  rootToken = res.root_token;
});
afterAll(async () => {
  await client?.close();
  await node?.stop();
});

/** A single raft node takes a moment after unseal to become active; sealing before that is refused. */
async function sealWhenActive(): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await client.health()).status !== 200) {
    if (Date.now() > deadline) throw new Error("the node did not become active within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  const root = node.client(rootToken);
  try {
    await root.seal();
  } finally {
    await root.close();
  }
}

function subsets<T>(items: T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [head!, ...s]), ...subsets(rest, k)];
}

describe("Shamir against a real server's unseal keys (5 shares, threshold 3)", () => {
  it("every 3-subset of the server's shares combines to the same 32-byte key", () => {
    expect(keysHex).toHaveLength(5);
    const shares = keysHex.map((k) => decodeShare(k));
    for (const s of shares) expect(s.length).toBe(33);
    const keys = subsets(shares, 3).map((s) => encodeShare(combineShares(s), "hex"));
    expect(keys).toHaveLength(10);
    expect(new Set(keys).size).toBe(1);
    // base64 keys are the same shares
    expect(keysB64.map((k) => encodeShare(decodeShare(k), "hex"))).toEqual(keysHex);
    // and 2 shares give something else
    expect(encodeShare(combineShares(shares.slice(0, 2)), "hex")).not.toBe(keys[0]);
  });

  it("the CLI verifies the server's shares and names a tampered one", async () => {
    const ok = await runSealkeeper(["shamir", "verify", "-t", "3"], { stdin: keysB64.join("\n") });
    expect(ok.code).toBe(0);
    const bad = decodeShare(keysHex[3]!);
    bad[10]! ^= 0x01;
    const tampered = [...keysHex.slice(0, 3), encodeShare(bad, "hex"), keysHex[4]!];
    const run = await runSealkeeper(["shamir", "verify", "-t", "3", "--format", "json"], {
      stdin: tampered.join("\n"),
    });
    expect(run.code).toBe(2);
    expect(JSON.parse(run.stdout).culprits).toEqual([{ share: 4, source: "line 4 of stdin" }]);
  });

  it("unseals the server with 3 of OUR shares of the same key", async () => {
    const key = combineShares(keysHex.slice(1, 4).map((k) => decodeShare(k)));
    const ours = splitSecret(key, 5, 3);
    expect((await client.sealStatus()).sealed).toBe(true);
    let status = await client.unseal({ key: encodeShare(ours[4]!, "hex") });
    expect(status).toMatchObject({ sealed: true, progress: 1 });
    status = await client.unseal({ key: encodeShare(ours[0]!, "base64") });
    expect(status).toMatchObject({ sealed: true, progress: 2 });
    status = await client.unseal({ key: encodeShare(ours[2]!, "hex") });
    expect(status.sealed).toBe(false);
  });

  it("after sealing again, unseals with shares from `sealkeeper shamir split` fed the combined key", async () => {
    await sealWhenActive();
    const combined = await runSealkeeper(["shamir", "combine", "--secret-encoding", "hex"], {
      stdin: [keysB64[0], keysHex[2], keysB64[4]].join("\n"),
    });
    expect(combined.code).toBe(0);
    const split = await runSealkeeper(["shamir", "split", "-n", "4", "-t", "3", "--secret-encoding", "hex"], {
      stdin: combined.stdout,
    });
    expect(split.code).toBe(0);
    const ours = split.stdout.trim().split("\n");
    expect(ours).toHaveLength(4);
    let status = await client.sealStatus();
    expect(status.sealed).toBe(true);
    for (const share of ours.slice(1)) status = await client.unseal({ key: share });
    expect(status.sealed).toBe(false);
  });

  it("the server refuses a share of a different key (our split of another secret)", async () => {
    await sealWhenActive();
    const wrong = splitSecret(new Uint8Array(32).fill(7), 3, 3);
    let error: unknown;
    try {
      for (const s of wrong) await client.unseal({ key: encodeShare(s, "hex") });
    } catch (err) {
      error = err;
    }
    // the server combined our 3 wrong shares at the threshold and refused them: a 400 naming the failed unseal,
    // not any error (a connection fault or a bad request would also have been "defined")
    expect(error).toBeInstanceOf(VaultHttpError);
    expect((error as VaultHttpError).status).toBe(400);
    expect((await client.sealStatus()).sealed).toBe(true);
    await client.unseal({ reset: true });
  });
});
