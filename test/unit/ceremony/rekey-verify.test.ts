/**
 * Rekey verification and repeated NEW shares, against a stateful fake of each server's verify endpoint (what each
 * real server does is proven in test/integration/rekey.test.ts): Vault 1.21 refuses a share it already has (400);
 * OpenBao 2.6.2 counts it (vault/rotate.go VerifyRotation checks the old-share list), and at the threshold the set
 * does not combine (500 "duplicate part detected") and verification restarts under a new nonce. sealkeeper never
 * sends a repeat within a run, and after a repeat from an earlier run gives this run's own shares again.
 */
import { describe, expect, it } from "vitest";
import { fixedSource } from "../../../src/ceremony/quorum.js";
import { type RekeyEvent, runRekey } from "../../../src/ceremony/rekey.js";
import { type KeyShare, parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { VaultHttpError } from "../../../src/errors.js";
import type { VaultClient } from "../../../src/vault/client.js";

const share = (n: number, operator: string): KeyShare =>
  parseKeyShare(n.toString(16).padStart(2, "0").repeat(33), `share ${n}`, operator);

/** A rekey waiting for verification of `threshold` NEW shares, as the server keeps it. */
function fakeVerifyServer(server: "vault" | "openbao", threshold: number) {
  let nonces = 0;
  const state = { nonce: "v-1", progress: [] as string[], done: false, puts: 0 };
  const err = (status: number, text: string) => new VaultHttpError("http://n1", "PUT", "/v1/x", status, [text]);
  const base = server === "vault" ? "sys/rekey" : "sys/rotate/root";
  const status = () => ({
    nonce: "u-1",
    started: !state.done,
    t: threshold,
    n: 4,
    progress: 0,
    required: 3,
    verification_required: true,
    verification_nonce: state.done ? "" : state.nonce,
  });
  const verifyStatus = () => ({
    nonce: state.nonce,
    started: true,
    t: threshold,
    n: 4,
    progress: state.progress.length,
  });
  const client = {
    address: "http://n1",
    hasToken: () => server === "openbao",
    sealStatus: async () => ({ initialized: true, sealed: false, type: "shamir", t: 3, n: 5, progress: 0 }),
    request: async (method: string, path: string, opts: { body?: { key: string; nonce: string } } = {}) => {
      if (server === "openbao" && path.startsWith("sys/rekey")) throw err(405, "");
      if (!path.startsWith(base)) throw err(404, "");
      if (path === `${base}/init`) return { status: 200, body: status() };
      if (path === `${base}/verify` && method === "GET") return { status: 200, body: verifyStatus() };
      if (path !== `${base}/verify` || method !== "PUT" || !opts.body) throw err(400, `unexpected ${method} ${path}`);
      state.puts++;
      const { key, nonce } = opts.body;
      if (nonce !== state.nonce)
        throw err(400, `incorrect nonce supplied; nonce for this verify operation is "${nonce}"`);
      if (server === "vault" && state.progress.includes(key)) {
        throw err(400, "given key has already been provided during this verify operation");
      }
      state.progress.push(key);
      if (state.progress.length < threshold) return { status: 200, body: verifyStatus() };
      const repeated = new Set(state.progress).size < state.progress.length;
      state.progress = [];
      if (!repeated) {
        state.done = true;
        return { status: 200, body: { nonce: state.nonce, complete: true } };
      }
      state.nonce = `v-${++nonces + 1}`;
      throw err(500, "failed to compute key for verification: duplicate part detected");
    },
  } as unknown as VaultClient;
  return { client, state };
}

async function verify(client: VaultClient, shares: KeyShare[], nonce?: string) {
  const events: Extract<RekeyEvent, { kind: "share" }>[] = [];
  const report = await runRekey({
    client,
    mode: "verify",
    cwd: "/",
    nonce,
    source: fixedSource(shares),
    onEvent: (e) => {
      if (e.kind === "share") events.push(e);
    },
  });
  return { report, outcomes: events.map((e) => `${e.share.operator} ${e.outcome} ${e.progress}/${e.required}`) };
}

describe("rekey verification: a repeated NEW share", () => {
  for (const server of ["vault", "openbao"] as const) {
    it(`${server}: within one run it is never sent again`, async () => {
      const { client, state } = fakeVerifyServer(server, 3);
      const { report, outcomes } = await verify(client, [share(1, "frank"), share(1, "frank"), share(2, "gina")]);
      expect(outcomes).toEqual(["frank accepted 1/3", "frank duplicate 1/3", "gina accepted 2/3"]);
      expect(state.puts).toBe(2);
      expect(state.progress.length).toBe(2);
      expect(report).toMatchObject({ state: "in-progress", phase: "verify", progress: 2, nonce: "v-1" });
    });
  }

  it("vault: a repeat from an earlier run is refused by the server; progress and nonce stay", async () => {
    const { client, state } = fakeVerifyServer("vault", 2);
    await verify(client, [share(1, "frank")]);
    const { report, outcomes } = await verify(client, [share(1, "frank")]);
    expect(outcomes).toEqual(["frank duplicate 1/2"]);
    expect(report.message).toContain("the server already has it in this phase");
    expect(state).toMatchObject({ nonce: "v-1", progress: [share(1, "frank").hex] });
  });

  it("openbao: a repeat from an earlier run restarts verification; this run's shares are given again, told", async () => {
    const { client, state } = fakeVerifyServer("openbao", 3);
    await verify(client, [share(1, "frank")]);
    // gina joins, then frank's share comes again: the server counts it (3/3), the set does not combine
    const { report, outcomes } = await verify(client, [share(2, "gina"), share(1, "frank")]);
    expect(outcomes).toEqual(["gina accepted 2/3", "frank repeat-reset 2/3"]);
    expect(state.nonce).toBe("v-2");
    expect(state.progress).toEqual([share(2, "gina").hex, share(1, "frank").hex]);
    expect(report).toMatchObject({ state: "in-progress", nonce: "v-2", progress: 2, contributors: ["gina", "frank"] });
    expect(report.message).toContain("restarted verification with a new nonce v-2");
    expect(report.message).toContain("Nothing changed: the old shares stay in effect");
    expect(report.message).toContain("sealkeeper gave this run's 2 share(s) again (gina, frank): 2/3");
    // the next holder completes it under the new nonce
    const last = await verify(client, [share(3, "hank")]);
    expect(last.report.state).toBe("complete");
  });

  it("openbao: with the nonce pinned (--nonce) nothing is given again; the new nonce is named", async () => {
    const { client, state } = fakeVerifyServer("openbao", 2);
    await verify(client, [share(1, "frank")], "v-1");
    const { report, outcomes } = await verify(client, [share(1, "frank"), share(2, "gina")], "v-1");
    expect(outcomes).toEqual(["frank rejected-set 0/2", "gina wrong-nonce 0/2"]);
    expect(state).toMatchObject({ nonce: "v-2", progress: [] });
    expect(report.state).toBe("failed");
    expect(report.message).toContain("wrong nonce");
  });

  it("openbao: the message after a reset without replay names the new nonce and what to do", async () => {
    const { client } = fakeVerifyServer("openbao", 2);
    await verify(client, [share(1, "frank")], "v-1");
    const { report } = await verify(client, [share(1, "frank")], "v-1");
    expect(report.message).toContain("include the same share twice");
    expect(report.message).toContain("a new nonce v-2: progress 0/2");
    expect(report.message).toContain("the old shares stay in effect");
  });
});
