/**
 * Issue 26 against a real 3-node raft cluster (both servers):
 * - one person cannot hold a quorum: init and rekey refuse two holders with one key, before anything is sent (26.1);
 * - every quorum ceremony given a standby's address finds the active node and runs there: a rekey with verification,
 *   its --status and --cancel, and root generation with its --status and --cancel (26.2). Before, OpenBao 2.6.2
 *   failed a rekey's verification through a standby ("node is not the leader", then "no rotation in progress") and
 *   reported the rekey gone while it was open, and its standbys answered --status and --cancel from their own empty
 *   state.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterRoles, initAndUnseal, startCluster, type TestCluster, type TestNode } from "../harness/cluster.js";
import {
  type AgeOperator,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
} from "../harness/operators.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

let cluster: TestCluster;
let work: string;
let alice: PgpOperator;
let bob: PgpOperator;
let dave: AgeOperator;
let erin: AgeOperator;
let rootToken = "";
/** OpenBao 2.6 serves rekey and root generation only with a token (its unauthenticated endpoints are off). */
const tokenEnv = (): Record<string, string> => (serverKind() === "openbao" ? { BAO_TOKEN: rootToken } : {});

const roles = () => clusterRoles(cluster.nodes);

const sk = (argv: string[]) => runSealkeeper(argv, { cwd: work, env: tokenEnv() });

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-standby-"));
  const keys = join(work, "keys");
  mkdirSync(keys);
  const ready = startCluster(3);
  const home = makeGnupgHome(work);
  alice = makePgpOperator(home, keys, "alice");
  bob = makePgpOperator(home, keys, "bob");
  dave = makeAgeOperator(keys, "dave");
  erin = makeAgeOperator(keys, "erin");
  cluster = await ready;
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("one person cannot hold a quorum (26.1)", () => {
  it("init refuses two holders with one key, naming both; the node stays uninitialised", async () => {
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      "-n",
      "3",
      "-t",
      "2",
      "--operator",
      `alice=pgp:${alice.publicKeyPath}`,
      "--operator",
      `bob=pgp:${alice.publicKeyPath}`,
      "--operator",
      `dave=age:${dave.recipient}`,
      "--root-token-recipient",
      `age:${dave.recipient}`,
      "-o",
      join(work, "init-refused"),
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain("operators alice (pgp:");
    expect(r.stderr).toContain(`would be sealed to one key (pgp key ${alice.fingerprint})`);
    const c = cluster.nodes[0]!.client();
    expect((await c.sealStatus()).initialized).toBe(false);
    await c.close();
    // the rest of the file works on an initialised cluster
    const init = await initAndUnseal(cluster.nodes, { shares: 3, threshold: 2 });
    rootToken = init.rootToken;
    init.keys.forEach((k, i) => {
      writeFileSync(join(work, `old${i + 1}.txt`), `${k}\n`, { mode: 0o600 });
    });
  }, 240_000);

  it("rekey refuses new holders with one age recipient (a literal and a recipients file); nothing starts", async () => {
    const { active } = await roles();
    const file = join(work, "keys", "also-dave.txt");
    writeFileSync(file, `${dave.recipient}\n`);
    const r = await sk([
      "rekey",
      "-a",
      active.address,
      "-n",
      "2",
      "-t",
      "2",
      "--operator",
      `dave=age:${dave.recipient}`,
      "--operator",
      `mallory=age:${file}`,
      "-o",
      join(work, "rekey-refused"),
      "--share-file",
      "old1.txt",
      "--share-file",
      "old2.txt",
      "--non-interactive",
    ]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/operators dave \(age:age1.*\) and mallory \(age:.*also-dave\.txt\)/);
    const st = await sk(["rekey", "-a", active.address, "--status", "--format", "json"]);
    expect(JSON.parse(st.stdout)).toMatchObject({ started: false });
  });
});

describe("quorum ceremonies given a standby run on the active node (26.2)", () => {
  it("rekey with verification, start and verify each through a standby; root generation through a standby with the new shares", async () => {
    const { active, standbys } = await roles();
    const [s1, s2] = standbys as [TestNode, TestNode];
    const out = join(work, "rekeyed");
    const newShares = [
      ...["--share-file", join(out, "alice.asc"), "--identity", alice.secretKeyPath],
      ...["--share-file", join(out, "erin.age"), "--identity", erin.identityPath],
    ];
    const start = await sk([
      "rekey",
      "-a",
      s1.address,
      "-n",
      "2",
      "-t",
      "2",
      "--operator",
      `alice=pgp:${alice.publicKeyPath}`,
      "--operator",
      `erin=age:${erin.recipient}`,
      "-o",
      out,
      "--share-file",
      "old1.txt",
      "--share-file",
      "old3.txt",
      "--non-interactive",
    ]);
    expect(start.code, start.stderr).toBe(2);
    expect(start.stderr).toContain(
      `note: ${s1.address} is a standby; rekey runs on the active node, ${active.address}`,
    );
    expect(start.stderr).toContain("new shares written");
    expect(start.stderr).toContain(`rekey --verify -a ${active.address}`);
    // the holders who verify need a token on OpenBao: the next: line says so (26.8)
    if (serverKind() === "openbao") {
      expect(start.stderr).toContain("with BAO_TOKEN set to a token allowed on /v1/sys/rotate/root/*");
    } else expect(start.stderr).not.toContain("BAO_TOKEN");

    const st = await sk(["rekey", "-a", s2.address, "--status", "--format", "json"]);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ address: active.address, started: true, phase: "verify" });

    const verify = await sk(["rekey", "--verify", "-a", s2.address, ...newShares, "--non-interactive"]);
    expect(verify.stdout + verify.stderr).not.toContain("gone");
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain("verified: the new shares are in effect now");

    // the standbys still report the quorum they unsealed with (3 shares, threshold 2): status says which is in force
    const status = await sk(["status", ...cluster.nodes.flatMap((n) => ["-a", n.address])]);
    for (const s of standbys) {
      expect(status.stderr).toContain(
        `${s.address} (a standby) reports the quorum 2 of 3, the active node ${active.address} 2 of 2`,
      );
    }

    // the new shares authorise root generation, given a standby too
    const gen = await sk([
      "root",
      "generate",
      "-a",
      s1.address,
      "--token-recipient",
      `age:${dave.recipient}`,
      "-o",
      join(work, "break-glass.age"),
      ...newShares,
      "--non-interactive",
    ]);
    expect(gen.code, gen.stderr).toBe(0);
    expect(gen.stderr).toContain(`note: ${s1.address} is a standby; root generation runs on the active node`);
    expect(gen.stdout).toContain("new root token:");
  }, 240_000);

  it("rekey and root generation --status and --cancel through a standby see and end what the active node holds", async () => {
    const { active, standbys } = await roles();
    const [s1, s2] = standbys as [TestNode, TestNode];
    // a rekey left open on the active node (one old share of two; the shares in force are now alice's and erin's)
    const open = await sk([
      "rekey",
      "-a",
      active.address,
      "-n",
      "2",
      "-t",
      "2",
      "--operator",
      `bob=pgp:${bob.publicKeyPath}`,
      "--operator",
      `dave=age:${dave.recipient}`,
      "-o",
      join(work, "left-open"),
      "--share-file",
      join(work, "rekeyed", "erin.age"),
      "--identity",
      erin.identityPath,
      "--non-interactive",
    ]);
    expect(open.code, open.stderr).toBe(2);
    const st = await sk(["rekey", "-a", s1.address, "--status", "--format", "json"]);
    expect(JSON.parse(st.stdout)).toMatchObject({
      address: active.address,
      started: true,
      phase: "update",
      progress: 1,
    });
    const cancel = await sk(["rekey", "-a", s2.address, "--cancel"]);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toContain(`${active.address}: cancelled the rekey`);
    const after = await sk(["rekey", "-a", active.address, "--status", "--format", "json"]);
    expect(JSON.parse(after.stdout)).toMatchObject({ started: false });

    // a PGP root generation attempt left open on the active node, seen and cancelled through standbys
    const gen = await sk([
      "root",
      "generate",
      "-a",
      active.address,
      "--pgp-key",
      bob.publicKeyPath,
      "-o",
      join(work, "root-open.asc"),
      "--share-file",
      join(work, "rekeyed", "erin.age"),
      "--identity",
      erin.identityPath,
      "--non-interactive",
    ]);
    expect(gen.code, gen.stderr).toBe(2);
    const gst = await sk(["root", "generate", "-a", s1.address, "--status", "--format", "json"]);
    expect(JSON.parse(gst.stdout)).toMatchObject({ address: active.address, started: true, progress: 1 });
    const gcancel = await sk(["root", "generate", "-a", s2.address, "--cancel"]);
    expect(gcancel.code, gcancel.stderr).toBe(0);
    expect(gcancel.stdout).toContain(`${active.address}: cancelled the root generation attempt`);
  }, 240_000);
});
