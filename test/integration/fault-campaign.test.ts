/**
 * Fault campaign on a real 3-node raft cluster (Vault 1.21, Shamir seal), plus one awskms node whose KMS goes away:
 *   1. init while the disk fills up (ENOSPC on the 2nd share file): the response survives in a rescue bundle; every
 *      share is recovered from it with the real age and unseals the cluster;
 *   2. unseal while nodes are SIGKILLed and restarted between shares;
 *   3. bootstrap apply while the active node is SIGKILLed mid-plan; a standby takes over; the rerun converges;
 *   4. rekey while the active node is SIGKILLed between old shares (the old shares stay valid), then a rekey whose
 *      new shares meet a read-only file system (EROFS): rescued, verified from the bundle, in effect;
 *   5. auto-unseal while the KMS is unreachable (a node restarts with the KMS endpoint down: status and unseal say
 *      what they see), then the KMS back: the node unseals itself.
 * Each step records what was tried and what was kept in `campaign`, printed at the end (docs/security.md has the table).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApplyStepError, applyPlan } from "../../src/bootstrap/apply.js";
import { observeState } from "../../src/bootstrap/observe.js";
import { planBootstrap } from "../../src/bootstrap/plan.js";
import { loadSpec } from "../../src/bootstrap/spec.js";
import { InitRescuedError, runInitCeremony } from "../../src/ceremony/init.js";
import { type RekeyReport, runRekey } from "../../src/ceremony/rekey.js";
import type { ShareSource } from "../../src/ceremony/share-source.js";
import { runUnseal } from "../../src/ceremony/unseal.js";
import { parseKeyShare } from "../../src/ceremony/unseal-key.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../src/ciphers/recipient-spec.js";
import { ShareStore } from "../../src/store/share-store.js";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";
import { sleep, startCluster, startNode, type TestCluster, type TestNode, waitForHa } from "../harness/cluster.js";
import { KMS_TEST_CREDENTIALS, KMS_TEST_REGION, type KmsEmulator, startKmsEmulator } from "../harness/kms.js";
import { type AgeOperator, ageDecrypt, makeAgeOperator } from "../harness/operators.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { createsNew, faultyFs } from "../unit/store/fault-fs.js";
import { writeAppsSpec } from "./bootstrap-helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

let cluster: TestCluster;
let emu: KmsEmulator | undefined;
let kmsNode: TestNode | undefined;
let kmsLink: Awaited<ReturnType<typeof startCuttableLink>> | undefined;
let work: string;
const ops: AgeOperator[] = [];
let holder: AgeOperator;
/** The 5 shares and the root token, as recovered from the rescue bundle in step 1. */
let shares: string[] = [];
let rootToken = "";
/** One row per fault: what was done, what happened, what was kept. */
const campaign: { step: string; fault: string; observed: string; kept: string }[] = [];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-faults-"));
  mkdirSync(join(work, "keys"));
  mkdirSync(join(work, "rescue"));
  const starting = startCluster(3);
  for (const name of ["alice", "bob", "carol", "dave", "erin"]) ops.push(makeAgeOperator(join(work, "keys"), name));
  holder = makeAgeOperator(join(work, "keys"), "holder");
  cluster = await starting;
}, 180_000);

afterAll(async () => {
  console.log(
    `fault campaign:\n${campaign.map((r) => `| ${r.step} | ${r.fault} | ${r.observed} | ${r.kept} |`).join("\n")}`,
  );
  await cluster?.stop();
  await kmsNode?.stop();
  await kmsLink?.close();
  await emu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const node = (i: number): TestNode => cluster.nodes[i]!;
/**
 * OpenBao 2.6 serves rekey only on the token-protected /sys/rotate/root (its unauthenticated /sys/rekey is off by
 * default since 2.5.0): there the rekey steps give the root token recovered in step 1; Vault takes none.
 */
const openbao = serverKind() === "openbao";
const rekeyClient = (i: number) => node(i).client(openbao ? rootToken : undefined);
const rekeyEnv = (): Record<string, string> => (openbao ? { BAO_TOKEN: rootToken } : {});

/** A scripted share source that runs `between(i)` before handing out share i (0-based). */
function faultySource(list: string[], between: (i: number) => Promise<void>): ShareSource {
  let i = 0;
  return {
    async next() {
      if (i >= list.length) return null;
      await between(i);
      const s = list[i]!;
      i++;
      return parseKeyShare(s, `share ${i}`, `op${i}`);
    },
  };
}

describe("fault campaign", () => {
  it("1. init while the disk fills up: rescued, every share recovered", async () => {
    const dir = join(work, "ceremony");
    const store = new ShareStore(dir, {
      fs: faultyFs({ write: (p) => (p.includes(".sealkeeper-tmp-bob.age") ? "ENOSPC" : undefined) }),
    });
    const client = node(0).client();
    const err = await runInitCeremony(
      {
        shares: 5,
        threshold: 3,
        operators: ops.map((o) => parseOperatorSpec(`${o.name}=age:${o.recipient}`)),
        rootTokenRecipient: parseRecipientSpec(`age:${holder.recipient}`),
      },
      { client, store, cwd: work, rescueDirs: [join(work, "rescue")] },
    ).catch((e: unknown) => e);
    await client.close();
    expect(err).toBeInstanceOf(InitRescuedError);
    expect((err as Error).message).toMatch(
      /the cluster WAS initialised but writing the shares to .* failed \(cannot write .*bob\.age: ENOSPC\)/,
    );
    // the normal directory holds what was written before the fault, complete, and no temp file
    expect(readdirSync(dir).sort()).toEqual(["alice.age"]);
    const [bundleName] = readdirSync(join(work, "rescue"));
    const bundle = JSON.parse(readFileSync(join(work, "rescue", bundleName!), "utf8")) as {
      files: { name: string; content: string }[];
    };
    expect(bundle.files.map((f) => f.name)).toEqual([...ops.map((o) => `${o.name}.age`), "root-token.age"]);
    expect(bundle.files[0]!.content).toBe(readFileSync(join(dir, "alice.age"), "utf8"));
    const out = join(work, "recovered");
    mkdirSync(out);
    for (const f of bundle.files) writeFileSync(join(out, f.name), f.content);
    shares = ops.map((o) => ageDecrypt(o, join(out, `${o.name}.age`)).trim());
    rootToken = ageDecrypt(holder, join(out, "root-token.age")).trim();
    for (const s of shares) expect(s).toMatch(/^[0-9a-f]{66}$/);
    expect(rootToken).toMatch(/^hvs\.|^s\./);
    campaign.push({
      step: "init",
      fault: "ENOSPC writing the 2nd of 5 share files",
      observed: "exit 2 (SharesRescuedError); alice.age complete, no partial or temp file",
      kept: "5/5 shares + root token in the rescue bundle; opened with age",
    });
  });

  it("2a. unseal while the leader is SIGKILLed and restarted between shares", async () => {
    // n1 killed after share 1 (its progress lives in memory: lost), restarted before share 2
    const outcomes: string[] = [];
    const clients = cluster.nodes.map((n) => n.client());
    const report = await runUnseal({
      clients,
      source: faultySource(shares.slice(0, 4), async (i) => {
        if (i === 1) {
          await node(0).kill();
          await node(0).start();
        }
      }),
      onEvent: (e) => {
        if (e.kind === "share" && e.results[0]?.address === node(0).address) outcomes.push(e.results[0]!.outcome);
      },
    });
    await Promise.all(clients.map((c) => c.close()));
    // share 2 starts a new attempt on the restarted node; share 1 is not given again from memory: no node has
    // unsealed with it, so it is not proven (issue 25: only proven shares are replayed), and one more share is asked
    // for; the followers, joining once the leader is unsealed, get the three that unsealed it
    expect(outcomes).toEqual(["accepted", "restarted", "accepted", "complete"]);
    expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
    expect(report.sharesUsed).toBe(4);
    await waitForHa(cluster.nodes);
    campaign.push({
      step: "unseal",
      fault: "SIGKILL + restart of the leader between share 1 and 2",
      observed:
        "share 2 seen as a new attempt ('restarted'); share 1, proven by no node, not replayed: a 4th share asked for; the followers get the 3 proven shares; all 3 nodes unsealed",
      kept: "no unproven share replayed; 3 of 3 nodes unsealed",
    });
  });

  it("2b. unseal while a follower is SIGKILLed and stays down; after its restart, a rerun unseals it", async () => {
    for (const n of cluster.nodes) await n.restart(); // all sealed, all joined
    const clients = cluster.nodes.map((n) => n.client());
    const report = await runUnseal({
      clients,
      source: faultySource(shares.slice(2, 5), async (i) => {
        if (i === 1) await node(2).kill();
      }),
    });
    await Promise.all(clients.map((c) => c.close()));
    expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unsealed", "unreachable"]);
    expect(report.nodes[2]!.message).toMatch(/refused|connect/i);
    await node(2).start();
    const rerun = await runSealkeeper(
      ["unseal", ...cluster.nodes.flatMap((n) => ["-a", n.address]), "--non-interactive"],
      {
        stdin: `${shares.slice(0, 3).join("\n")}\n`,
      },
    );
    expect(rerun.code, rerun.stderr).toBe(0);
    await waitForHa(cluster.nodes);
    campaign.push({
      step: "unseal",
      fault: "SIGKILL of a follower after share 1, down until the ceremony ends",
      observed:
        "the others unseal; the dead node is reported 'unreachable' (exit 1); after its restart a rerun unseals it",
      kept: "2 of 3 nodes unsealed at once, the 3rd on the rerun",
    });
  });

  it("3. bootstrap apply while the active node is SIGKILLed: a standby takes over, the rerun converges", async () => {
    const active = await activeIndex();
    const standby = (active + 1) % 3;
    const file = join(work, "apps.yaml");
    writeAppsSpec(file, 20);
    const spec = loadSpec(file);
    const client = node(active).client(rootToken);
    const plan = planBootstrap(spec, await observeState(client, spec));
    expect(plan.changes.length).toBe(43); // mount, auth, config, 20 policies, 20 roles
    let steps = 0;
    let killing: Promise<void> | undefined;
    const err = await applyPlan(client, plan, {
      concurrency: 2,
      onStep: () => {
        if (++steps === 8) killing = node(active).kill();
      },
    }).catch((e: unknown) => e);
    await killing;
    await client.close();
    expect(err).toBeInstanceOf(ApplyStepError);
    const done = (err as ApplyStepError).done;
    expect(done).toBeGreaterThanOrEqual(8);
    expect(done).toBeLessThan(43);
    await node(active).start();
    const u = await runSealkeeper(["unseal", "-a", node(active).address, "--non-interactive"], {
      stdin: `${shares.slice(0, 3).join("\n")}\n`,
    });
    expect(u.code, u.stderr).toBe(0);
    await waitForHa(cluster.nodes);
    // a standby serves requests by forwarding them to the active node; right after an election it may answer 307
    // (redirect to the active) until its forwarding connection is up (seen once in CI on Vault 1.21.0): wait for
    // that observable state rather than for a clock
    const viaStandby = node(standby).client(rootToken);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const ok = await viaStandby.read("sys/mounts").then(
          () => true,
          () => false,
        );
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`${node(standby).address} did not serve sys/mounts within 60 s`);
        await new Promise((res) => setTimeout(res, 200));
      }
    } finally {
      await viaStandby.close();
    }
    // after the failover this node may have become the active one: ask it, and expect the standby note only then
    const role = node(standby).client();
    const isStandby = !(await role.leader().finally(() => role.close())).isSelf;
    const env = { VAULT_ADDR: node(standby).address, VAULT_TOKEN: rootToken };
    const r = await runSealkeeper(["bootstrap", "apply", "-f", file], { env });
    expect(r.code, r.stderr).toBe(0);
    // the note is OpenBao's (its standbys answer reads from their own replica; Vault's forward them: no note)
    expect(r.stderr.includes(`note: ${node(standby).address} is an OpenBao standby`), r.stderr).toBe(
      isStandby && openbao,
    );
    const planVia = (address: string) =>
      runSealkeeper(["bootstrap", "plan", "-f", file, "--detailed-exitcode"], {
        env: { VAULT_ADDR: address, VAULT_TOKEN: rootToken },
      });
    // the active node has applied every write it took: its plan is empty at once, on both servers
    const activeNow = await activeIndex();
    const onActive = await planVia(node(activeNow).address);
    expect(onActive.code, onActive.stdout + onActive.stderr).toBe(0);
    expect(onActive.stderr).not.toContain("standby");
    const other = cluster.nodes.findIndex((_, i) => i !== activeNow);
    const onOther = await planVia(node(other).address);
    expect([0, 2], onOther.stderr).toContain(onOther.code);
    if (openbao) {
      expect(onOther.stderr).toContain(
        `note: ${node(other).address} is an OpenBao standby (the active node is ${node(activeNow).address})`,
      );
    } else {
      expect(onOther.stderr).not.toContain("standby");
    }
    if (!openbao || !isStandby) {
      // Vault's standbys forward reads to the active node: the plan through the standby is empty at once too
      const p = await planVia(node(standby).address);
      expect(p.code, p.stdout + p.stderr).toBe(0);
    } else {
      // OpenBao 2.x standbys answer reads from their own replica, which trails the active node for a moment (seen in
      // CI: the plan right after the apply still listed changes, exit 2); wait for the replica, not for a clock
      const deadline = Date.now() + 60_000;
      for (;;) {
        const p = await planVia(node(standby).address);
        if (p.code === 0) break;
        expect(p.code, p.stdout + p.stderr).toBe(2);
        if (Date.now() > deadline) throw new Error(`the standby's plan still lists changes after 60 s:\n${p.stdout}`);
      }
    }
    campaign.push({
      step: "bootstrap apply",
      fault: "SIGKILL of the active node after 8 of 43 steps",
      observed: `ApplyStepError naming the step (${done} of 43 applied), hint "run apply again"; a standby became active`,
      kept: "every applied step (raft); the rerun through a standby applied the rest; plan then empty",
    });
  });

  it("3b. reads through a standby while the active node is frozen (SIGSTOP): OpenBao answers from its replica, Vault cannot", async () => {
    // the deterministic half of step 3's difference: a standby that forwards reads (Vault) has no answer while the
    // active node does not run; one that answers from its own replica (OpenBao 2.x) still has. Elections start only
    // after the raft heartbeat timeout (5 s here), so a Vault read with a 2 s timeout meets the frozen node.
    const active = await activeIndex();
    const standby = (active + 1) % 3;
    const pid = node(active).pid!;
    const reader = (timeoutMs: number) =>
      new VaultClient({
        ...resolveConnection({ address: node(standby).address }, {}),
        token: rootToken,
        timeoutMs,
      });
    process.kill(pid, "SIGSTOP");
    try {
      if (openbao) {
        let mounts: unknown;
        for (let attempt = 1; attempt <= 3 && mounts === undefined; attempt++) {
          const c = reader(3_000);
          mounts = await c.read("sys/mounts").catch(() => undefined);
          await c.close();
        }
        expect(mounts).toBeDefined();
      } else {
        const c = reader(2_000);
        const err = await c.read("sys/mounts").then(
          () => undefined,
          (e: unknown) => e,
        );
        await c.close();
        expect(err).toBeInstanceOf(Error);
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await waitForHa(cluster.nodes);
    campaign.push({
      step: "reads through a standby",
      fault: "SIGSTOP of the active node",
      observed: openbao
        ? "the standby answered sys/mounts from its own replica"
        : "the standby's read (forwarded to the frozen active node) got no answer within 2 s",
      kept: "SIGCONT: one active node and standbys again",
    });
  });

  it("4a. rekey while the active node is SIGKILLed between old shares: abandoned, old shares still valid", async () => {
    const active = await activeIndex();
    const client = rekeyClient(active);
    const report = await runRekey({
      client,
      mode: "start",
      cwd: work,
      config: {
        shares: 3,
        threshold: 2,
        operators: ops.slice(0, 3).map((o) => parseOperatorSpec(`${o.name}=age:${o.recipient}`)),
      },
      store: new ShareStore(join(work, "rekey-killed")),
      rescueDirs: [join(work, "rescue")],
      source: faultySource(shares.slice(0, 3), async (i) => {
        if (i === 1) await node(active).kill();
      }),
    }).catch((e: unknown) => e);
    await client.close();
    const seen =
      report instanceof Error
        ? `${report.constructor.name}: ${report.message}`
        : `rekey ${(report as RekeyReport).state}: ${(report as RekeyReport).message}`;
    console.log(`4a: ${seen}`);
    expect(seen).not.toMatch(/complete/);
    expect(readdirSync(join(work, "rekey-killed"))).toEqual([]);
    await node(active).start();
    // the old shares unseal the restarted node: nothing changed
    const u = await runSealkeeper(["unseal", "-a", node(active).address, "--non-interactive"], {
      stdin: `${shares.slice(2, 5).join("\n")}\n`,
    });
    expect(u.code, u.stderr).toBe(0);
    await waitForHa(cluster.nodes);
    const st = await runSealkeeper(["rekey", "--status", "-a", node(active).address], { env: rekeyEnv() });
    expect(st.stdout + st.stderr).toMatch(/no rekey|not started|none/i);
    campaign.push({
      step: "rekey",
      fault: "SIGKILL of the active node after 1 of 3 old shares",
      observed: `${seen.replace(/http:\/\/127\.0\.0\.1:\d+/g, "the node").split(" (")[0]}; the new active node has no rekey in progress (held in memory only)`,
      kept: "the old shares: they unsealed the restarted node; no new share file written",
    });
  });

  it("4b. rekey whose new shares meet a read-only file system: rescued, verified from the bundle, in effect", async () => {
    const before = new Set(readdirSync(join(work, "rescue")));
    const dir = join(work, "rekey-erofs");
    const store = new ShareStore(dir, {
      fs: faultyFs({
        open: (p, flags) =>
          p.includes(".sealkeeper-tmp-") && !p.includes("probe") && createsNew(flags) ? "EROFS" : undefined,
      }),
    });
    const active = await activeIndex();
    const client = rekeyClient(active);
    const err = await runRekey({
      client,
      mode: "start",
      cwd: work,
      config: {
        shares: 3,
        threshold: 2,
        operators: ops.slice(2, 5).map((o) => parseOperatorSpec(`${o.name}=age:${o.recipient}`)),
      },
      store,
      rescueDirs: [join(work, "rescue")],
      source: faultySource(shares.slice(0, 3), async () => {}),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /^the server handed out the new shares \(not in effect until verified.*\) but writing the shares to .* failed \(cannot write .*: EROFS\); all the sealed shares .* in the rescue bundle /,
    );
    const bundleName = readdirSync(join(work, "rescue")).find((n) => !before.has(n))!;
    const bundle = JSON.parse(readFileSync(join(work, "rescue", bundleName), "utf8")) as {
      files: { name: string; content: string }[];
    };
    const out = join(work, "rekey-recovered");
    mkdirSync(out);
    for (const f of bundle.files) writeFileSync(join(out, f.name), f.content);
    const newShares = ops.slice(2, 5).map((o) => ageDecrypt(o, join(out, `${o.name}.age`)).trim());
    // the old shares still rule until 2 of the new ones are verified
    const verify = await runRekey({
      client,
      mode: "verify",
      cwd: work,
      source: faultySource(newShares.slice(0, 2), async () => {}),
    });
    await client.close();
    expect(verify.state).toBe("complete");
    // proof: a restarted node takes the new shares and refuses the old ones. It is the node that completed the
    // rekey: a follower restarted at once may come back from a raft log that lags the rekey's writes (seen once on
    // OpenBao 2.6.2 under load: restarted node 1 refused 3 old shares, then counted 2 new ones as 2 of 3, i.e. the new
    // key under the old threshold)
    await node(active).restart();
    const old = await runSealkeeper(["unseal", "-a", node(active).address, "--non-interactive"], {
      stdin: `${shares.slice(0, 3).join("\n")}\n`,
    });
    expect(old.code, old.stdout + old.stderr).toBe(2);
    // --reset: the third old share left an attempt at 1/2 on the node, which would mix with the new shares
    const fresh = await runSealkeeper(["unseal", "-a", node(active).address, "--non-interactive", "--reset"], {
      stdin: `${newShares.slice(1, 3).join("\n")}\n`,
    });
    expect(fresh.code, fresh.stdout + fresh.stderr).toBe(0);
    shares = newShares;
    campaign.push({
      step: "rekey",
      fault: "EROFS creating the new share files (after the server returned them)",
      observed:
        "SharesRescuedError (exit 2): 'the server handed out the new shares (not in effect until verified) but writing ... failed (EROFS)'",
      kept: "3/3 new shares in the rescue bundle; 2 verified from it; then only the new shares unseal",
    });
  });

  it("5. auto-unseal with the KMS unreachable: a running node goes on, a restarting one exits; KMS back: it unseals itself", async () => {
    emu = await startKmsEmulator();
    const upstream = new URL(emu.endpoint);
    kmsLink = await startCuttableLink(Number(upstream.port));
    const endpoint = `http://127.0.0.1:${kmsLink.port}`;
    const env = {
      AWS_ACCESS_KEY_ID: KMS_TEST_CREDENTIALS.accessKey,
      AWS_SECRET_ACCESS_KEY: KMS_TEST_CREDENTIALS.secretKey,
    };
    const kmsArgs = ["autounseal", "awskms", "--region", KMS_TEST_REGION, "--endpoint", endpoint];
    const made = await runSealkeeper([...kmsArgs, "--create-key", "--alias", "alias/campaign"], { env });
    expect(made.code, made.stderr).toBe(0);
    const gen = await runSealkeeper(
      [...kmsArgs, "--key-id", "alias/campaign", "--static-credentials", "--print-credentials", "--output", "hcl"],
      { env },
    );
    expect(gen.code, gen.stderr).toBe(0);
    kmsNode = await startNode({ extraConfig: gen.stdout });
    const c = kmsNode.client();
    const init = await c.init({ recovery_shares: 1, recovery_threshold: 1 });
    await c.close();
    await waitUnsealed(kmsNode, 60_000);

    // 1. the KMS goes away (connections refused) under a running node: it stays unsealed
    await kmsLink.cut();
    await sleep(3000);
    const running = await runSealkeeper(["status", "-a", kmsNode.address]);
    expect(running.code, running.stdout).toBe(0);
    const w = kmsNode.client(init.root_token);
    await w.write("sys/policies/acl/kms-outage", { policy: 'path "secret/*" { capabilities = ["read"] }' });
    expect(await w.read("sys/policies/acl/kms-outage")).not.toBeNull();
    await w.close();

    // 2. the node restarts while the KMS is away: both servers read the key's metadata at start-up and EXIT
    await kmsNode.stop();
    const startErr = await kmsNode.start().catch((e: unknown) => e);
    expect(startErr).toBeInstanceOf(Error);
    // the same cause in each server's words: Vault 1.21 "error parsing Seal configuration: error fetching AWS KMS
    // wrapping key information: ...", OpenBao 2.6.2 'Error configuring seal "awskms": error fetching ...'
    const lead = openbao ? /Error configuring seal "awskms": [^\n]*/ : /error parsing Seal configuration: [^\n]*/;
    const why = lead.exec((startErr as Error).message)?.[0] ?? "";
    expect(why, (startErr as Error).message).toMatch(/: error fetching AWS KMS wrapping key information/);
    const status = await runSealkeeper(["status", "-a", kmsNode.address]);
    const unseal = await runSealkeeper(["unseal", "-a", kmsNode.address, "--non-interactive"], {
      stdin: `${init.recovery_keys![0]}\n`,
    });
    console.log(
      `5: ${why}\nstatus ${status.code}:\n${status.stdout}${status.stderr}\nunseal ${unseal.code}:\n${unseal.stdout}${unseal.stderr}`,
    );
    expect(status.code).toBe(1);
    expect(status.stdout + status.stderr).toMatch(/unreachable|refused/);
    expect(unseal.code).toBe(1);
    expect(unseal.stdout + unseal.stderr).toMatch(/unreachable|refused/);

    // 3. the KMS comes back and the node is started again (as systemd or Kubernetes would): it unseals itself
    await kmsLink.restore();
    const back = Date.now();
    await kmsNode.start();
    await waitUnsealed(kmsNode, 90_000);
    const recoverMs = Date.now() - back;
    const after = await runSealkeeper(["status", "-a", kmsNode.address]);
    expect(after.code, after.stdout).toBe(0);
    campaign.push({
      step: "auto-unseal",
      fault: "KMS endpoint refusing connections under a running, unsealed node",
      observed: "the node stays unsealed (Vault logs 'seal backend is completely unhealthy'); status exit 0",
      kept: "service: a policy written and read back during the outage",
    });
    campaign.push({
      step: "auto-unseal",
      fault: "the node restarts while the KMS refuses connections",
      observed: `the server exits at start-up ('${why.slice(0, 80)}...'); status and unseal: unreachable, exit ${status.code}/${unseal.code}`,
      kept: `KMS back, node started again: unsealed by itself in ${(recoverMs / 1000).toFixed(1)} s; the recovery share was never needed`,
    });
  });
});

/** Polls seal-status until the node is unsealed. */
async function waitUnsealed(n: TestNode, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = n.client();
    try {
      const s = await c.sealStatus();
      if (s.initialized && !s.sealed) return;
    } catch {
      // not up
    } finally {
      await c.close();
    }
    if (Date.now() > deadline) throw new Error(`${n.address} did not unseal within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/**
 * A TCP link on a fixed loopback port to the KMS emulator, that can be cut (the port refuses connections, open ones
 * are reset) and restored on the same port. Stopping moto itself would lose its keys (it keeps them in memory only):
 * from Vault's side a cut link is the same outage, and the key survives it, as a real KMS key would.
 */
async function startCuttableLink(
  targetPort: number,
): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const srv = createServer((down) => {
        const up = connect(targetPort, "127.0.0.1");
        sockets.add(down);
        sockets.add(up);
        const drop = () => {
          down.destroy();
          up.destroy();
          sockets.delete(down);
          sockets.delete(up);
        };
        down.on("error", drop).on("close", drop);
        up.on("error", drop).on("close", drop);
        down.pipe(up);
        up.pipe(down);
      });
      srv.once("error", reject);
      srv.listen(port, "127.0.0.1", () => resolve(srv));
    });
  server = await listen(0);
  const port = (server.address() as { port: number }).port;
  const cut = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  return {
    port,
    cut,
    async restore() {
      server ??= await listen(port);
    },
    close: cut,
  };
}

/** Index of the node that answers health 200 (active). */
async function activeIndex(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    for (const [i, n] of cluster.nodes.entries()) {
      const c = n.client();
      try {
        if ((await c.health()).status === 200) return i;
      } catch {
        // down
      } finally {
        await c.close();
      }
    }
    await sleep(200);
  }
  throw new Error("no active node");
}
