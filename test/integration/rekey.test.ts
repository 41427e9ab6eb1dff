/**
 * Rekey 5/3 -> 4/2 against a real 3-node raft cluster, with new operators whose keys come from the real gpg and age
 * (mixed, so sealkeeper seals the new shares). The old shares keep unsealing until verification completes; after it
 * only the new ones do (restart + unseal). Faults: an attempt already running, a wrong nonce, duplicate shares (old
 * ones: both servers refuse them; new ones in verification: never sent twice in a run, and one repeated from an earlier
 * run is refused by Vault but counted by OpenBao, which then restarts verification), a cancel in the middle, a node
 * sealed mid-ceremony.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runRekey } from "../../src/ceremony/rekey.js";
import type { ShareSource } from "../../src/ceremony/share-source.js";
import { parseKeyShare } from "../../src/ceremony/unseal-key.js";
import { readManifest } from "../../src/store/manifest.js";
import type { VaultClient } from "../../src/vault/client.js";
import { initAndUnseal, startCluster, type TestCluster, type TestNode, waitForHa } from "../harness/cluster.js";
import {
  type AgeOperator,
  ageDecrypt,
  gpgDecrypt,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
} from "../harness/operators.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

let cluster: TestCluster;
let work: string;
let oldKeys: string[];
let newKeys: string[] = [];
/** The shares in force after the interactive rekey. */
let currentKeys: string[] = [];
let frank: PgpOperator;
let hank: PgpOperator;
let gina: AgeOperator;
let ivy: AgeOperator;
const outputs: string[] = [];
/**
 * OpenBao 2.6 turns the unauthenticated /sys/rekey off by default (since 2.5.0): there the rekey goes through
 * /sys/rotate/root with a token (the root token from init here), on Vault through /sys/rekey without one.
 */
const openbao = serverKind() === "openbao";
let rootToken = "";
const tokenEnv = (): Record<string, string> => (openbao ? { BAO_TOKEN: rootToken } : {});
const api = openbao ? "/v1/sys/rotate/root" : "/v1/sys/rekey";

async function active(): Promise<TestNode> {
  await waitForHa(cluster.nodes);
  for (const n of cluster.nodes) {
    const c = n.client();
    try {
      if ((await c.health()).status === 200) return n;
    } finally {
      await c.close();
    }
  }
  throw new Error("no active node");
}

async function sk(argv: string[], opts: Parameters<typeof runSealkeeper>[1] = {}) {
  const r = await runSealkeeper(["rekey", "-a", (await active()).address, ...argv], {
    cwd: work,
    ...opts,
    env: { ...tokenEnv(), ...opts.env },
  });
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function status() {
  const r = await sk(["--status", "--format", "json"]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

const oldShareArgs = (...n: number[]) => n.flatMap((i) => ["--share-file", `old${i}.txt`]);
const operatorArgs = () => [
  "--operator",
  `frank=pgp:${frank.publicKeyPath}`,
  "--operator",
  `gina=age:${gina.recipient}`,
  "--operator",
  `hank=pgp:${hank.publicKeyPath}`,
  "--operator",
  `ivy=age:${ivy.recipient}`,
];
const newArgs = (out: string) => ["-n", "4", "-t", "2", ...operatorArgs(), "-o", out, "--non-interactive"];

/** Restarts one node (it comes back sealed) and tries to unseal it with these keys; returns whether it unsealed. */
async function restartAndTry(node: TestNode, keys: string[]): Promise<{ unsealed: boolean; errors: string[] }> {
  await node.restart();
  return tryUnseal(node, keys);
}

async function tryUnseal(node: TestNode, keys: string[]): Promise<{ unsealed: boolean; errors: string[] }> {
  const c: VaultClient = node.client();
  const errors: string[] = [];
  try {
    for (let i = 0; i < 300 && !(await c.sealStatus()).initialized; i++) await new Promise((r) => setTimeout(r, 100));
    await c.unseal({ reset: true });
    for (const key of keys) {
      try {
        const s = await c.unseal({ key });
        if (!s.sealed) return { unsealed: true, errors };
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    return { unsealed: !(await c.sealStatus()).sealed, errors };
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-rekey-"));
  const keysDir = join(work, "keys");
  mkdirSync(keysDir);
  const ready = startCluster(3);
  const home = makeGnupgHome(work);
  frank = makePgpOperator(home, keysDir, "frank");
  hank = makePgpOperator(home, keysDir, "hank", { algo: "rsa2048" });
  gina = makeAgeOperator(keysDir, "gina");
  ivy = makeAgeOperator(keysDir, "ivy");
  cluster = await ready;
  const init = await initAndUnseal(cluster.nodes, { shares: 5, threshold: 3 });
  oldKeys = init.keys;
  rootToken = init.rootToken;
  oldKeys.forEach((k, i) => {
    writeFileSync(join(work, `old${i + 1}.txt`), `${k}\n`, { mode: 0o600 });
  });
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

describe("where it runs", () => {
  it(`${serverKind()} forwards rekey calls from a standby to the active node (no redirect)`, async () => {
    const act = await active();
    const standby = cluster.nodes.find((n) => n !== act)!;
    const r = await runSealkeeper(["rekey", "-a", standby.address, "--status", "--format", "json"], {
      cwd: work,
      env: tokenEnv(),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ kind: "unseal", api, started: false });
  });
});

describe("faults in the old-share phase leave a state to resume or cancel from", () => {
  it("an attempt already running, a wrong nonce, a duplicate share, a cancel in the middle", async () => {
    const first = await sk([...newArgs(join(work, "f1")), ...oldShareArgs(1)]);
    expect(first.code, first.stderr).toBe(2);
    expect(first.stdout).toContain("waiting for 2 more OLD share(s): continue with --resume");
    const st = await status();
    expect(st).toMatchObject({
      started: true,
      phase: "update",
      progress: 1,
      required: 3,
      newShares: 4,
      newThreshold: 2,
    });
    expect(st.verificationRequired).toBe(true);

    const again = await sk([...newArgs(join(work, "f2")), ...oldShareArgs(2)]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`a rekey is already in progress on`);
    expect(again.stderr).toContain(`(nonce ${st.nonce}, old shares 1/3, new 2 of 4)`);
    expect(again.stderr).toContain("--resume");

    const wrong = await sk([...newArgs(join(work, "f3")), "--resume", "--nonce", "bogus-nonce", ...oldShareArgs(2)]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("wrong-nonce");
    expect((await status()).progress).toBe(1);

    // a resume must describe the same new shares as the start did
    const different = await sk([
      "-n",
      "4",
      "-t",
      "3",
      ...operatorArgs(),
      "-o",
      join(work, "f4"),
      "--resume",
      ...oldShareArgs(2),
    ]);
    expect(different.code).toBe(1);
    expect(different.stderr).toContain("the rekey in progress makes 2 of 4 shares, not 3 of 4");

    // Vault refuses a share it already has in this rekey (400), unlike unseal
    const dup = await sk([...newArgs(join(work, "f5")), "--resume", ...oldShareArgs(1, 2)]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/old share from old1 \[[0-9a-f]{16}\]: duplicate 1\/3/);
    expect(dup.stderr).toMatch(/old share from old2 \[[0-9a-f]{16}\]: accepted 2\/3/);
    expect((await status()).progress).toBe(2);

    const cancel = await sk(["--cancel"]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`cancelled the rekey ${st.nonce}; the old shares stay valid`);
    expect((await status()).started).toBe(false);
    // nothing was written anywhere
    for (const d of ["f1", "f5"]) {
      expect(readdirSync(join(work, d)).filter((f) => f !== "transcript.jsonl")).toEqual([]);
    }
  });
});

describe("rekey 5/3 -> 4/2 with new operators", () => {
  it("old shares authorise it; the new shares are written sealed, and open with real gpg and age", async () => {
    const out = join(work, "new");
    const r = await sk([...newArgs(out), ...oldShareArgs(2, 4, 5)]);
    expect(r.code, r.stderr).toBe(2); // waiting for verification
    expect(r.stderr).toContain("new shares written");
    expect(r.stdout).toContain("the old shares stay valid until 2 of the NEW shares are verified");
    expect(readdirSync(out).sort()).toEqual([
      "frank.asc",
      "gina.age",
      "hank.asc",
      "ivy.age",
      "manifest.json",
      "transcript.jsonl",
    ]);
    for (const f of readdirSync(out)) expect(statSync(join(out, f)).mode & 0o777).toBe(0o600);
    expect(statSync(out).mode & 0o777).toBe(0o700);
    const manifest = await readManifest(join(out, "manifest.json"));
    expect(manifest).toMatchObject({ kind: "unseal", threshold: 2, shares: 4 });
    expect(manifest.operators.map((o) => [o.name, o.keyType, o.sealedBy])).toEqual([
      ["frank", "pgp", "client"],
      ["gina", "age", "client"],
      ["hank", "pgp", "client"],
      ["ivy", "age", "client"],
    ]);
    newKeys = [
      gpgDecrypt(frank, join(out, "frank.asc")),
      ageDecrypt(gina, join(out, "gina.age")),
      gpgDecrypt(hank, join(out, "hank.asc")),
      ageDecrypt(ivy, join(out, "ivy.age")),
    ].map((s) => s.trim());
    for (const k of newKeys) expect(k).toMatch(/^[0-9a-f]{66}$/);
    expect(new Set(newKeys).size).toBe(4);
    const st = await status();
    expect(st).toMatchObject({ started: true, phase: "verify", progress: 0, required: 2 });
  });

  it("before verification, the old shares still unseal a restarted node and the new ones do not", async () => {
    const act = await active();
    const standby = cluster.nodes.find((n) => n !== act)!;
    const withNew = await restartAndTry(standby, newKeys.slice(0, 2));
    expect(withNew.unsealed).toBe(false);
    const withOld = await tryUnseal(standby, oldKeys.slice(0, 3));
    expect(withOld.unsealed).toBe(true);
    await waitForHa(cluster.nodes);
    // the rekey on the active node is untouched by a standby's restart
    expect((await status()).phase).toBe("verify");
  });

  it("verification: a wrong nonce and a repeated share are refused (each server its own way), then two new holders finish it", async () => {
    const wrong = await sk([
      "--verify",
      "--nonce",
      "bogus",
      "--share-file",
      "new/frank.asc",
      "--identity",
      frank.secretKeyPath,
      "--non-interactive",
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("wrong-nonce");

    // a repeat within one run is never sent (OpenBao would count it): the same on both servers
    const frankArgs = ["--share-file", "new/frank.asc", "--identity", frank.secretKeyPath, "--non-interactive"];
    const dup = await sk(["--verify", ...frankArgs, "--share-file", "new/frank.asc"]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/new share from frank \[[0-9a-f]{16}\]: accepted 1\/2/);
    expect(dup.stderr).toMatch(
      /new share from frank \[[0-9a-f]{16}\]: duplicate 1\/2 \(duplicate share from frank: this run already gave it, so it was not sent again/,
    );
    const before = await status();
    expect(before).toMatchObject({ phase: "verify", progress: 1, required: 2 });

    // a repeat from an earlier run reaches the server, and there the servers differ
    const again = await sk(["--verify", ...frankArgs]);
    expect(again.code).toBe(2);
    const after = await status();
    if (openbao) {
      // OpenBao 2.6.2 counts it (2/2), the set does not combine, verification restarts under a new nonce; sealkeeper
      // says so and gives this run's share again: the state is as before the repeat, under the new nonce
      expect(again.stderr).toMatch(/new share from frank \[[0-9a-f]{16}\]: repeat-reset 1\/2/);
      expect(again.stderr).toContain("duplicate part detected");
      expect(again.stderr).toContain(`restarted verification with a new nonce ${after.nonce}`);
      expect(again.stderr).toContain("sealkeeper gave this run's 1 share(s) again (frank): 1/2");
      expect(after.nonce).not.toBe(before.nonce);
    } else {
      // Vault 1.21 refuses it (400 "given key has already been provided"): nothing moves
      expect(again.stderr).toMatch(
        /new share from frank \[[0-9a-f]{16}\]: duplicate 1\/2 \(duplicate share from frank: the server already has it/,
      );
      expect(after.nonce).toBe(before.nonce);
    }
    expect(after).toMatchObject({ phase: "verify", progress: 1, required: 2 });

    const done = await sk([
      "--verify",
      "--share-file",
      "new/gina.age",
      "--identity",
      gina.identityPath,
      "--non-interactive",
    ]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toContain("verified: the new shares are in effect now");
    expect((await status()).started).toBe(false);
  });

  it("after it, only the new shares unseal (every node restarted)", async () => {
    for (const node of cluster.nodes) {
      const old = await restartAndTry(node, oldKeys.slice(0, 3));
      expect(old.unsealed, `${node.nodeId} unsealed with OLD shares`).toBe(false);
      const fresh = await tryUnseal(node, [newKeys[1]!, newKeys[3]!]);
      expect(fresh.unsealed, `${node.nodeId}: ${fresh.errors.join("; ")}`).toBe(true);
    }
    await waitForHa(cluster.nodes);
  });
});

describe("a node sealed mid-ceremony", () => {
  it("abandons the rekey with a clear message; the current shares stay valid", async () => {
    const act = await active();
    const newWriteDir = join(work, "sealed-mid");
    const { ShareStore } = await import("../../src/store/share-store.js");
    const { parseOperatorSpec } = await import("../../src/ciphers/recipient-spec.js");
    let n = 0;
    const source: ShareSource = {
      async next() {
        n++;
        if (n === 2) await act.restart();
        return n > 2 ? null : parseKeyShare(newKeys[n - 1]!, `new share ${n}`);
      },
    };
    const c = act.client(openbao ? rootToken : undefined);
    const report = await runRekey({
      client: c,
      source,
      mode: "start",
      cwd: work,
      store: new ShareStore(newWriteDir),
      config: {
        shares: 2,
        threshold: 2,
        operators: [`a=age:${gina.recipient}`, `b=age:${ivy.recipient}`].map(parseOperatorSpec),
      },
    });
    await c.close();
    expect(report.state).toBe("failed");
    // Vault 1.21 answers 503 "Vault is sealed"; it drops a rekey in progress when it seals
    expect(report.message).toContain("was sealed during the ceremony, which abandons the rekey");
    expect(readdirSync(newWriteDir)).toEqual([]);
    // the restarted node unseals with the current (new) shares; the rekey is gone from the cluster
    expect((await tryUnseal(act, newKeys.slice(0, 2))).unsealed).toBe(true);
    await waitForHa(cluster.nodes);
    expect((await status()).started).toBe(false);
  });
});

describe("writing fails after the server answered", () => {
  it("the sealed new shares go to a rescue bundle; cancel, and the current shares stay valid", async () => {
    const { ShareStore } = await import("../../src/store/share-store.js");
    const { parseOperatorSpec } = await import("../../src/ciphers/recipient-spec.js");
    const { SharesRescuedError } = await import("../../src/ceremony/deliver-shares.js");
    const rescueDir = join(work, "rescue");
    mkdirSync(rescueDir);
    const shares = [newKeys[0]!, newKeys[2]!];
    const source: ShareSource = {
      next: async () => (shares.length ? parseKeyShare(shares.shift()!, "current") : null),
    };
    const c = (await active()).client(openbao ? rootToken : undefined);
    const err = await runRekey({
      client: c,
      source,
      mode: "start",
      cwd: work,
      store: new ShareStore(join(work, "rescued-out")),
      config: {
        shares: 2,
        threshold: 2,
        operators: [`a=age:${gina.recipient}`, `b=age:${ivy.recipient}`].map(parseOperatorSpec),
      },
      rescueDirs: [rescueDir],
      afterServerAnswered: () => {
        throw new Error("disk full (injected)");
      },
    }).catch((e: unknown) => e);
    await c.close();
    expect(err).toBeInstanceOf(SharesRescuedError);
    expect((err as Error).message).toContain("the server handed out the new shares (not in effect until verified");
    expect((err as Error).message).toContain("disk full (injected)");
    const [bundleName] = readdirSync(rescueDir);
    const bundle = JSON.parse(readFileSync(join(rescueDir, bundleName!), "utf8"));
    expect(bundle.files.map((f: { name: string }) => f.name)).toEqual(["a.age", "b.age"]);
    writeFileSync(join(work, "a-rescued.age"), bundle.files[0].content);
    expect(ageDecrypt(gina, join(work, "a-rescued.age")).trim()).toMatch(/^[0-9a-f]{66}$/);
    const cancel = await sk(["--cancel"]);
    expect(cancel.stdout).toContain("the new share files it had handed out are void");
    const node = cluster.nodes[2]!;
    expect((await restartAndTry(node, [newKeys[1]!, newKeys[3]!])).unsealed).toBe(true);
    await waitForHa(cluster.nodes);
  });
});

/** A scripted person at a terminal: waits for text to appear, then types. */
class Keyboard {
  readonly input = new PassThrough();
  readonly output = new PassThrough();
  screen = "";
  constructor() {
    this.output.on("data", (c: Buffer) => {
      this.screen += c.toString("utf8");
    });
  }
  async waitFor(text: string, from = 0): Promise<number> {
    for (let i = 0; i < 400; i++) {
      const idx = this.screen.indexOf(text, from);
      if (idx >= 0) return idx + 1;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`never saw ${text} on screen:\n${this.screen.slice(-800)}`);
  }
  type(text: string): void {
    for (const ch of text) this.input.write(ch);
  }
}

describe("interactive: one run takes the OLD shares, writes the new ones, then takes the NEW shares", () => {
  it("4/2 -> 2/2 at the prompts, verified in the same run", async () => {
    const { ShareStore } = await import("../../src/store/share-store.js");
    const { parseOperatorSpec } = await import("../../src/ciphers/recipient-spec.js");
    const { interactiveShareSource } = await import("../../src/ceremony/share-source.js");
    const { ttyPrompter } = await import("../../src/prompt/prompter.js");
    const kb = new Keyboard();
    const out = join(work, "interactive");
    const c = (await active()).client(openbao ? rootToken : undefined);
    const ceremony = runRekey({
      client: c,
      source: interactiveShareSource(ttyPrompter({ input: kb.input, output: kb.output }), { cwd: work }),
      mode: "start",
      cwd: work,
      store: new ShareStore(out),
      config: {
        shares: 2,
        threshold: 2,
        operators: [`gina=age:${gina.recipient}`, `ivy=age:${ivy.recipient}`].map(parseOperatorSpec),
      },
      continueToVerify: true,
      // the pause before verification (issue 25): the new files are written, nothing verified yet
      beforeVerify: async (r) => {
        pausedWith = { files: readdirSync(out).sort(), phase: r.phase, state: r.state };
        return true;
      },
    });
    let pausedWith: { files: string[]; phase: string; state: string } | undefined;
    const give = async (at: number, who: string, share: string) => {
      at = await kb.waitFor("how will you give your share?", at);
      kb.type("\r");
      // the hidden share prompt comes right after the choice; the name after the share
      at = await kb.waitFor("Share:", at);
      kb.type(`${share}\r`);
      at = await kb.waitFor("Your name", at);
      kb.type(`${who}\r`);
      return at;
    };
    let at = await kb.waitFor("OLD shares 0/2");
    at = await give(at, "frank", newKeys[0]!);
    at = await give(at, "hank", newKeys[2]!);
    at = await kb.waitFor("NEW shares 0/2", at);
    expect(pausedWith).toMatchObject({ phase: "verify", state: "in-progress" });
    expect(pausedWith!.files).toEqual(expect.arrayContaining(["gina.age", "ivy.age", "manifest.json"]));
    const fresh = [ageDecrypt(gina, join(out, "gina.age")).trim(), ageDecrypt(ivy, join(out, "ivy.age")).trim()];
    at = await give(at, "gina", fresh[0]!);
    await give(at, "ivy", fresh[1]!);
    const report = await ceremony;
    await c.close();
    expect(report).toMatchObject({ state: "complete", phase: "verify", contributors: ["gina", "ivy"] });
    currentKeys = fresh;
    for (const k of [newKeys[0]!, newKeys[2]!, ...fresh]) expect(kb.screen).not.toContain(k);
    const node = cluster.nodes[1]!;
    expect((await restartAndTry(node, newKeys.slice(0, 2))).unsealed).toBe(false);
    expect((await tryUnseal(node, fresh)).unsealed).toBe(true);
    await waitForHa(cluster.nodes);
  });
});

describe("all-PGP operators: the server seals, and a resume must name the same keys in the same order", () => {
  it("start, refuse a resume with other keys, resume, verify with what real gpg opens", async () => {
    currentKeys.forEach((k, i) => {
      writeFileSync(join(work, `cur${i + 1}.txt`), `${k}\n`, { mode: 0o600 });
    });
    const out = join(work, "pgp-only");
    const ops = (a: PgpOperator, b: PgpOperator) => [
      "-n",
      "2",
      "-t",
      "2",
      "--operator",
      `frank=pgp:${a.publicKeyPath}`,
      "--operator",
      `hank=pgp:${b.publicKeyPath}`,
      "-o",
      out,
      "--non-interactive",
    ];
    const first = await sk([...ops(frank, hank), "--share-file", "cur1.txt"]);
    expect(first.code, first.stderr).toBe(2);
    const swapped = await sk([...ops(hank, frank), "--resume", "--share-file", "cur2.txt"]);
    expect(swapped.code).toBe(1);
    expect(swapped.stderr).toContain(
      `operator frank has key ${hank.fingerprint} but the rekey in progress encrypts share 1 to`,
    );
    const done = await sk([...ops(frank, hank), "--resume", "--share-file", "cur2.txt"]);
    expect(done.code, done.stderr).toBe(2);
    const manifest = await readManifest(join(out, "manifest.json"));
    expect(manifest.operators.map((o) => o.sealedBy)).toEqual(["server", "server"]);
    const fresh = [gpgDecrypt(frank, join(out, "frank.asc")).trim(), gpgDecrypt(hank, join(out, "hank.asc")).trim()];
    for (const k of fresh) expect(k).toMatch(/^[0-9a-f]{66}$/);
    const v = await sk([
      "--verify",
      "--non-interactive",
      "--share-file",
      join(out, "frank.asc"),
      "--share-file",
      join(out, "hank.asc"),
      "--identity",
      frank.secretKeyPath,
      "--identity",
      hank.secretKeyPath,
    ]);
    expect(v.code, v.stderr).toBe(0);
    const node = cluster.nodes[2]!;
    expect((await restartAndTry(node, currentKeys)).unsealed).toBe(false);
    expect((await tryUnseal(node, fresh)).unsealed).toBe(true);
    await waitForHa(cluster.nodes);
  });
});

describe("hygiene", () => {
  it("no old or new share in any output or transcript", () => {
    const transcript = readFileSync(join(work, "new", "transcript.jsonl"), "utf8");
    expect(transcript).toContain('"action":"rekey-share-written"');
    for (const s of [...oldKeys, ...newKeys]) {
      for (const o of [...outputs, transcript]) expect(o).not.toContain(s);
    }
  });
});
