/**
 * "Never lost, for real" (issue 12), `autounseal migrate`: from the first share sent with migrate=true until the
 * migration record is written, the cluster is between two seals. The BUILT CLI as a real child process against one
 * real node (file storage) that was restarted with a seal "awskms" stanza (the moto KMS), through the fault proxy,
 * which holds back, or cuts, the answer to the first `PUT /v1/sys/unseal`. Every signal, `--timeout` shorter than the
 * answer, and a cut connection: the node ends on the new seal, unsealed, its data kept, and the migration record is
 * written beside the manifest. Each test starts from a fresh Shamir node (wiped, initialised, unsealed, a KV secret
 * written, then restarted with the stanza).
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnCli, waitUntil } from "../harness/child-cli.js";
import { startNode, type TestNode } from "../harness/cluster.js";
import { type FaultProxy, startFaultProxy } from "../harness/fault-proxy.js";
import { type KmsEmulator, startKmsEmulator, writeTestSealStanza } from "../harness/kms.js";
import { answerLaterThanTimeout, SIGNAL_CODES, SIGNALS, signalDuringHeldAnswer } from "../harness/never-lost.js";
import { serverKind } from "../harness/paths.js";

const UNSEAL = "PUT /v1/sys/unseal ";

let emu: KmsEmulator;
let node: TestNode;
let proxy: FaultProxy;
let work: string;
let stanzaPath: string;
let shamirConfig: string;
let rootToken = "";
let n = 0;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-never-lost-migrate-"));
  const starting = startNode({ storage: "file" });
  emu = await startKmsEmulator();
  stanzaPath = join(work, "seal-awskms.hcl");
  await writeTestSealStanza(emu, stanzaPath, serverKind() === "openbao" ? "openbao" : "vault");
  node = await starting;
  shamirConfig = readFileSync(join(node.dir, "config.hcl"), "utf8");
  proxy = await startFaultProxy(node.apiPort);
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await node?.stop();
  await emu?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/**
 * A fresh Shamir node (2 of 3) with a secret in KV, restarted with the awskms stanza: sealed, waiting for the old
 * shares with migrate=true. Returns the run's directory, its share files and its manifest path.
 */
async function shamirNodeWaitingForMigration(): Promise<{ dir: string; shareFiles: string[]; manifest: string }> {
  await node.stop();
  writeFileSync(join(node.dir, "config.hcl"), shamirConfig);
  await node.wipe();
  const c = node.client();
  const init = await c.init({ secret_shares: 3, secret_threshold: 2 });
  await c.unseal({ key: init.keys[0]! });
  await c.unseal({ key: init.keys[1]! });
  await c.close();
  rootToken = init.root_token;
  await waitUntil("the node active", async () => {
    const h = node.client();
    try {
      return (await h.health()).status === 200;
    } catch {
      return false;
    } finally {
      await h.close();
    }
  });
  const a = node.client(rootToken);
  await a.write("sys/mounts/kv", { type: "kv", options: { version: "1" } });
  await a.write("kv/app", { password: "kept-through-migration" });
  await a.close();
  await node.stop();
  appendFileSync(join(node.dir, "config.hcl"), `\n${readFileSync(stanzaPath, "utf8")}`);
  await node.start();
  await waitUntil("the node waiting for migrate=true shares", async () => {
    const s = node.client();
    try {
      const st = await s.sealStatus();
      return st.sealed && st.migration === true;
    } catch {
      return false;
    } finally {
      await s.close();
    }
  });
  const dir = join(work, `run-${++n}`);
  mkdirSync(join(dir, "home"), { recursive: true });
  const shareFiles = init.keys.slice(0, 2).map((k, i) => {
    const f = join(dir, `share${i + 1}.txt`);
    writeFileSync(f, `${k}\n`, { mode: 0o600 });
    return f;
  });
  const manifest = join(dir, "manifest.json");
  writeFileSync(manifest, '{"format":"sealkeeper-ceremony-manifest","kind":"unseal"}\n');
  return { dir, shareFiles, manifest };
}

function migrateArgs(shareFiles: string[], manifest: string, extra: string[] = []): string[] {
  return [
    "autounseal",
    "migrate",
    "-a",
    proxy.address,
    "--stanza-file",
    stanzaPath,
    "--non-interactive",
    ...shareFiles.flatMap((f) => ["--share-file", f]),
    "--node-timeout",
    "120",
    "--manifest",
    manifest,
    ...extra,
  ];
}

/** The node is on the new seal, unsealed, migration finished, its data kept; the record says so. */
async function assertMigrated(dir: string): Promise<void> {
  const c = node.client(rootToken);
  try {
    const s = await c.sealStatus();
    expect(s.sealed).toBe(false);
    expect(s.migration ?? false).toBe(false);
    expect(s.type).toBe("awskms");
    expect(s.recovery_seal).toBe(true);
    const secret = await c.read<{ data: { password: string } }>("kv/app");
    expect(secret?.data.password).toBe("kept-through-migration");
  } finally {
    await c.close();
  }
  const recordPath = join(dir, "seal-migration.json");
  expect(existsSync(recordPath)).toBe(true);
  expect(JSON.parse(readFileSync(recordPath, "utf8"))).toMatchObject({ from: "shamir", to: "awskms" });
}

describe("autounseal migrate: the migration record is never lost", () => {
  for (const sig of SIGNALS) {
    it(`${sig} while the completing migrate=true share's answer is held back: deferred, migration finished and recorded, exit ${SIGNAL_CODES[sig]}`, async () => {
      const { dir, shareFiles, manifest } = await shamirNodeWaitingForMigration();
      // the 2nd share of the 2-share quorum: the irreversible one (an earlier share's answer is not waited for)
      proxy.arm("hold", UNSEAL, 2);
      const run = spawnCli(migrateArgs(shareFiles, manifest), { env: { HOME: join(dir, "home") }, cwd: dir });
      const res = await signalDuringHeldAnswer(run, proxy, sig, "this run's record of the migration");
      expect(res.stdout).toMatch(/migration done: the old unseal shares are now the recovery keys \(2 of 3\)/);
      await assertMigrated(dir);
    });
  }

  it("--timeout shorter than the completing migrate=true share's answer: it keeps waiting and records the migration", async () => {
    const { dir, shareFiles, manifest } = await shamirNodeWaitingForMigration();
    proxy.arm("hold", UNSEAL, 2);
    const run = spawnCli(migrateArgs(shareFiles, manifest, ["--timeout", "1s"]), {
      env: { HOME: join(dir, "home") },
      cwd: dir,
    });
    const res = await answerLaterThanTimeout(run, proxy);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/the completing share goes to .*: waiting for its answer with no time limit/);
    await assertMigrated(dir);
  });

  it("connection cut after a migrate=true share: the run looks at the node again, finishes and records it", async () => {
    const { dir, shareFiles, manifest } = await shamirNodeWaitingForMigration();
    proxy.arm("cut", UNSEAL);
    const res = await spawnCli(migrateArgs(shareFiles, manifest), { env: { HOME: join(dir, "home") }, cwd: dir })
      .exited;
    expect(res.code, res.stderr).toBe(0);
    await assertMigrated(dir);
  });
});
