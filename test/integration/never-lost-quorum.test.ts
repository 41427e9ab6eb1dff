/**
 * "Never lost, for real" (issue 12), the quorum ceremonies: rekey's completing OLD share (its answer is the only copy
 * of the new shares) and root generation's completing share (its answer is the new root token). The BUILT CLI as a
 * real child process against one real server (file storage), through the fault-injecting proxy
 * (test/harness/fault-proxy.ts), which holds back, cuts or resets the answer to exactly that request (the 2nd
 * `update` of a 2-share quorum). Every signal while the answer is held, `--timeout` shorter than the delay: the new
 * shares (or the token) are written 0600 with no temp file left, open with the holders' real age and gpg keys, and
 * work on the server (the new shares are verified and unseal the node; the token looks itself up as root). A cut
 * connection: the CLI says what happened, and the next command (`rekey --status`, `rekey`) says what to do.
 *
 * OpenBao 2.6 serves rekey and root generation only on its authenticated paths (/sys/rotate/root,
 * /sys/generate-root-token, docs/servers.md): there the CLI gets the root token from init in BAO_TOKEN.
 */
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readManifest } from "../../src/store/manifest.js";
import { spawnCli } from "../harness/child-cli.js";
import { initAndUnseal, type TestNode } from "../harness/cluster.js";
import type { FaultProxy } from "../harness/fault-proxy.js";
import {
  answerLaterThanTimeout,
  type NeverLostBed,
  SIGNAL_CODES,
  SIGNALS,
  signalDuringHeldAnswer,
  startNeverLostBed,
} from "../harness/never-lost.js";
import { type AgeOperator, ageDecrypt, gpgDecrypt, type PgpOperator } from "../harness/operators.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

const openbao = serverKind() === "openbao";
const REKEY_UPDATE = openbao ? "PUT /v1/sys/rotate/root/update " : "PUT /v1/sys/rekey/update ";
const GENROOT_UPDATE = openbao ? "PUT /v1/sys/generate-root-token/update " : "PUT /v1/sys/generate-root/update ";

let bed: NeverLostBed;
let node: TestNode;
let proxy: FaultProxy;
let work: string;
let alice: AgeOperator;
let bob: AgeOperator;
let carol: PgpOperator;
let holder: AgeOperator;
let rootToken = "";
/** The unseal shares in force (2 of 3); each completed rekey replaces them. */
let current: string[] = [];
let n = 0;

beforeAll(async () => {
  bed = await startNeverLostBed("sk-never-lost-quorum-");
  ({ node, proxy, work, alice, bob, carol, holder } = bed);
  const init = await initAndUnseal([node], { shares: 3, threshold: 2 });
  current = init.keys;
  rootToken = init.rootToken;
}, 180_000);

afterAll(async () => {
  await bed?.close();
});

/** A fresh directory for one run: its own $HOME (the pending journal) and the current shares as files. */
function runDir(): { dir: string; home: string; out: string; shareFiles: string[] } {
  const dir = join(work, `run-${++n}`);
  const home = join(dir, "home");
  mkdirSync(home, { recursive: true });
  const shareFiles = current.slice(0, 2).map((k, i) => {
    const f = join(dir, `share${i + 1}.txt`);
    writeFileSync(f, `${k}\n`, { mode: 0o600 });
    return f;
  });
  return { dir, home, out: join(dir, "new-shares"), shareFiles };
}

/** The CLI's environment: its own HOME, and on OpenBao the token its authenticated quorum paths need. */
function env(home: string): Record<string, string> {
  return { HOME: home, ...(openbao ? { BAO_TOKEN: rootToken } : {}) };
}

function rekeyArgs(out: string, shareFiles: string[], extra: string[] = []): string[] {
  return [
    "rekey",
    "-a",
    proxy.address,
    "-n",
    "3",
    "-t",
    "2",
    "--operator",
    `alice=age:${alice.recipient}`,
    "--operator",
    `bob=age:${bob.recipient}`,
    "--operator",
    `carol=pgp:${carol.publicKeyPath}`,
    "-o",
    out,
    "--non-interactive",
    ...shareFiles.flatMap((f) => ["--share-file", f]),
    ...extra,
  ];
}

/**
 * Every new share file in `out` is 0600, no temp file is left, each opens with its holder's key (real age and gpg),
 * and the manifest names them. Returns the plaintext shares (alice, bob, carol).
 */
async function openNewShares(out: string): Promise<string[]> {
  const m = await readManifest(join(out, "manifest.json"));
  expect(m.operators.map((o) => o.file)).toEqual(["alice.age", "bob.age", "carol.asc"]);
  for (const f of readdirSync(out)) {
    expect(f, "no temp file is left").not.toMatch(/tmp/);
    if (f !== "manifest.json" && f !== "transcript.jsonl") expect(statSync(join(out, f)).mode & 0o777).toBe(0o600);
  }
  const shares = [
    ageDecrypt(alice, join(out, "alice.age")).trim(),
    ageDecrypt(bob, join(out, "bob.age")).trim(),
    gpgDecrypt(carol, join(out, "carol.asc")).trim(),
  ];
  for (const s of shares) expect(s).toMatch(/^[0-9a-f]{66}$/);
  return shares;
}

/** Seals the node and unseals it with the first and the last of `keys`: they are the shares in force. */
async function sealAndUnsealWith(keys: string[]): Promise<void> {
  const c = node.client(rootToken);
  try {
    await c.seal();
    expect((await c.sealStatus()).sealed).toBe(true);
    await c.unseal({ key: keys[0]! });
    expect((await c.unseal({ key: keys.at(-1)! })).sealed).toBe(false);
  } finally {
    await c.close();
  }
}

/** NEW shares verify the rekey in progress (the real CLI, in-process, straight to the node). */
async function verifyWith(dir: string, keys: string[]): Promise<void> {
  const files = keys.map((k, i) => {
    const f = join(dir, `verify${i + 1}.txt`);
    writeFileSync(f, `${k}\n`, { mode: 0o600 });
    return f;
  });
  const r = await runSealkeeper(
    ["rekey", "--verify", "-a", node.address, "--non-interactive", ...files.flatMap((f) => ["--share-file", f])],
    { env: env(join(dir, "home")), cwd: dir },
  );
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/complete/);
}

async function rekeyStatus(): Promise<{ started: boolean; verification_nonce?: string }> {
  const c = node.client(rootToken);
  try {
    const path = openbao ? "sys/rotate/root/init" : "sys/rekey/init";
    const res = await c.request<{ started: boolean; verification_nonce?: string; data?: unknown }>("GET", path);
    return (res.body.data ?? res.body) as { started: boolean; verification_nonce?: string };
  } finally {
    await c.close();
  }
}

describe("rekey: the completing share's answer (the new shares) is never lost", () => {
  for (const sig of SIGNALS) {
    it(`${sig} while the server's answer is held back: deferred, new shares written, exit ${SIGNAL_CODES[sig]}`, async () => {
      const { dir, home, out, shareFiles } = runDir();
      proxy.arm("hold", REKEY_UPDATE, 2);
      const run = spawnCli(rekeyArgs(out, shareFiles), { env: env(home), cwd: dir });
      const res = await signalDuringHeldAnswer(run, proxy, sig, "the only copy of the new shares");
      expect(res.stderr).toMatch(/new shares written/);
      const fresh = await openNewShares(out);
      // the server waits for them: they verify, and from then on they are the shares in force
      expect((await rekeyStatus()).verification_nonce).toBeTruthy();
      await verifyWith(dir, fresh.slice(0, 2));
      await sealAndUnsealWith(fresh);
      current = fresh;
    });
  }

  it("--timeout shorter than the server's answer (verification off): it keeps waiting and writes everything", async () => {
    const { dir, home, out, shareFiles } = runDir();
    proxy.arm("hold", REKEY_UPDATE, 2);
    const run = spawnCli(rekeyArgs(out, shareFiles, ["--timeout", "1s", "--skip-verification"]), {
      env: env(home),
      cwd: dir,
    });
    await run.waitForStderr(/the completing share goes to .*: waiting for its answer with no time limit/);
    const res = await answerLaterThanTimeout(run, proxy);
    expect(res.code, res.stderr).toBe(0);
    const fresh = await openNewShares(out);
    // verification off: the new shares are in force at once
    await sealAndUnsealWith(fresh);
    current = fresh;
  });

  it("connection cut after the completing share: the CLI and the next rekey say the new shares are void, and --cancel keeps the old ones", async () => {
    const { dir, home, out, shareFiles } = runDir();
    proxy.arm("cut", REKEY_UPDATE, 2);
    const res = await spawnCli(rekeyArgs(out, shareFiles), { env: env(home), cwd: dir }).exited;
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/after the completing share was sent/);
    expect(res.stderr).toMatch(/the server handed out the new shares, but its answer never arrived/);
    expect(res.stderr).toMatch(/rekey --cancel/);
    // the server did move on: the new shares exist only in the answer that was lost
    expect((await rekeyStatus()).verification_nonce).toBeTruthy();
    expect(readdirSync(out).filter((f) => f !== "transcript.jsonl")).toEqual([]);
    // the next command on this machine says exactly that, and what to do
    const status = await spawnCli(["rekey", "--status", "-a", proxy.address], { env: env(home), cwd: dir }).exited;
    expect(status.code).toBe(0);
    expect(status.stderr).toMatch(/never wrote the new shares/);
    expect(status.stderr).toMatch(/they are void .* sealkeeper rekey --cancel/);
    // plain `status` tells the same story (exit 0: the node is unsealed)
    const plain = await spawnCli(["status", "-a", proxy.address], { env: env(home), cwd: dir }).exited;
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/never wrote the new shares/);
    expect(plain.stderr).toMatch(/they are void .* sealkeeper rekey --cancel/);
    const again = await spawnCli(rekeyArgs(`${out}-again`, shareFiles), { env: env(home), cwd: dir }).exited;
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/never wrote the new shares/);
    const cancel = await spawnCli(["rekey", "--cancel", "-a", proxy.address], { env: env(home), cwd: dir }).exited;
    expect(cancel.code, cancel.stderr).toBe(0);
    expect((await rekeyStatus()).started).toBe(false);
    // nothing lost: the old shares are still in force, and the record is settled
    await sealAndUnsealWith(current.slice(0, 2));
    const after = await spawnCli(["rekey", "--status", "-a", proxy.address], { env: env(home), cwd: dir }).exited;
    expect(after.stderr).not.toMatch(/never wrote the new shares/);
    const plainAfter = await spawnCli(["status", "-a", proxy.address], { env: env(home), cwd: dir }).exited;
    expect(plainAfter.stderr).not.toMatch(/never wrote the new shares|may have lost its answer/);
  });
});

function rootArgs(dir: string, out: string, shareFiles: string[], extra: string[] = []): string[] {
  return [
    "root",
    "generate",
    "-a",
    proxy.address,
    "--token-recipient",
    `age:${holder.recipient}`,
    "-o",
    join(dir, out),
    "--non-interactive",
    ...shareFiles.flatMap((f) => ["--share-file", f]),
    ...extra,
  ];
}

/** The token file is 0600, opens with the holder's age key, and the token is a working root token (then revoked). */
async function assertTokenWorks(path: string): Promise<void> {
  expect(statSync(path).mode & 0o777).toBe(0o600);
  const token = ageDecrypt(holder, path).trim();
  expect(token.length).toBeGreaterThan(20);
  const c = node.client(token);
  try {
    const res = await c.request<{ data?: { policies?: string[] } }>("GET", "auth/token/lookup-self");
    expect(res.body.data?.policies).toContain("root");
    await c.revokeSelf();
  } finally {
    await c.close();
  }
}

describe("root generate: the completing share's answer (the new root token) is never lost", () => {
  for (const sig of SIGNALS) {
    it(`${sig} while the server's answer is held back: deferred, token sealed and written, exit ${SIGNAL_CODES[sig]}`, async () => {
      const { dir, home, shareFiles } = runDir();
      proxy.arm("hold", GENROOT_UPDATE, 2);
      const run = spawnCli(rootArgs(dir, "token.age", shareFiles), { env: env(home), cwd: dir });
      await signalDuringHeldAnswer(run, proxy, sig, "the new root token");
      expect(readdirSync(dir).filter((f) => /tmp/.test(f))).toEqual([]);
      await assertTokenWorks(join(dir, "token.age"));
    });
  }

  it("--timeout shorter than the server's answer: it keeps waiting and writes the token", async () => {
    const { dir, home, shareFiles } = runDir();
    proxy.arm("hold", GENROOT_UPDATE, 2);
    const run = spawnCli(rootArgs(dir, "token.age", shareFiles, ["--timeout", "1s"]), { env: env(home), cwd: dir });
    await run.waitForStderr(/the completing share goes to .*: waiting for its answer with no time limit/);
    const res = await answerLaterThanTimeout(run, proxy);
    expect(res.code, res.stderr).toBe(0);
    await assertTokenWorks(join(dir, "token.age"));
  });

  it("connection cut after the completing share: the CLI says the token was minted and lost, and nothing is left open", async () => {
    const { dir, home, shareFiles } = runDir();
    proxy.arm("cut", GENROOT_UPDATE, 2);
    const res = await spawnCli(rootArgs(dir, "token.age", shareFiles), { env: env(home), cwd: dir }).exited;
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/after the completing share was sent/);
    expect(res.stderr).toMatch(/the server generated a new root token, but its answer never arrived/);
    expect(readdirSync(dir).filter((f) => f.startsWith("token"))).toEqual([]);
    // the next run starts cleanly (no attempt left open) and gets a token
    const again = await spawnCli(rootArgs(dir, "token2.age", shareFiles), { env: env(home), cwd: dir }).exited;
    expect(again.code, again.stderr).toBe(0);
    await assertTokenWorks(join(dir, "token2.age"));
  });
});
