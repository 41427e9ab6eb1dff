import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runUnseal } from "../../src/ceremony/unseal.js";
import { parseKeyShare } from "../../src/ceremony/unseal-key.js";
import { unsealExitCode } from "../../src/cli/commands/unseal.js";
import { startCluster, type TestCluster, waitForHa } from "../harness/cluster.js";
import {
  type AgeOperator,
  ageDecrypt,
  gpgDecrypt,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
  stopGpgAgent,
} from "../harness/operators.js";
import { runSealkeeper } from "../harness/run-cli.js";

let cluster: TestCluster;
let work: string;
let alice: PgpOperator;
let bob: PgpOperator; // rsa, passphrase-protected
let carol: PgpOperator;
let dave: AgeOperator;
let erin: AgeOperator;
let rootHolder: PgpOperator;
let signOnly: PgpOperator;
let expired: PgpOperator;
const out = () => join(work, "ceremony");
const addrArgs = () => cluster.nodes.flatMap((n) => ["-a", n.address]);
/** Every plaintext share seen by the test (decrypted with the real tools), to scan outputs for. */
const plaintextShares: string[] = [];
const outputs: string[] = [];

async function sk(argv: string[], opts: Parameters<typeof runSealkeeper>[1] = {}) {
  const r = await runSealkeeper(argv, { cwd: work, ...opts });
  outputs.push(r.stdout, r.stderr);
  return r;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-ceremony-"));
  const keys = join(work, "keys");
  mkdirSync(keys);
  const home = makeGnupgHome(work);
  const clusterReady = startCluster(3);
  alice = makePgpOperator(home, keys, "alice");
  bob = makePgpOperator(home, keys, "bob", { algo: "rsa2048", passphrase: "bob's long passphrase" });
  carol = makePgpOperator(home, keys, "carol");
  rootHolder = makePgpOperator(home, keys, "root-holder");
  signOnly = makePgpOperator(home, keys, "signer", { signOnly: true });
  expired = makePgpOperator(home, keys, "expired", { expired: true });
  dave = makeAgeOperator(keys, "dave");
  erin = makeAgeOperator(keys, "erin");
  writeFileSync(join(work, "bob.pass"), "bob's long passphrase\n");
  cluster = await clusterReady;
}, 240_000);

afterAll(async () => {
  await cluster?.stop();
});

const operatorArgs = () => [
  "--operator",
  `alice=pgp:${alice.publicKeyPath}`,
  "--operator",
  `bob=pgp:${bob.publicKeyPath}`,
  "--operator",
  `carol=pgp:${carol.publicKeyPath}`,
  "--operator",
  `dave=age:${dave.recipient}`,
  "--operator",
  `erin=age:${erin.recipient}`,
];

async function expectUninitialised() {
  const c = cluster.nodes[0]!.client();
  expect((await c.sealStatus()).initialized).toBe(false);
  await c.close();
}

describe("init pre-flight refuses bad input before the irreversible call", () => {
  it("a wrong number of recipients", async () => {
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      "-n",
      "5",
      "-t",
      "3",
      ...operatorArgs().slice(0, 8),
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      out(),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("4 operators given for 5 shares");
    await expectUninitialised();
  });

  it("an unwritable output directory", async () => {
    const file = join(work, "a-file");
    writeFileSync(file, "x");
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      ...operatorArgs(),
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      join(file, "sub"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/a-file/);
    await expectUninitialised();
  });

  it("a sign-only PGP key, named", async () => {
    const args = operatorArgs();
    args[1] = `alice=pgp:${signOnly.publicKeyPath}`;
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      ...args,
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      out(),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/operator alice: .*(sign|encrypt)/i);
    await expectUninitialised();
  });

  it("an expired PGP key, named", async () => {
    const args = operatorArgs();
    args[3] = `bob=pgp:${expired.publicKeyPath}`;
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      ...args,
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      out(),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/operator bob: .*expired/i);
    await expectUninitialised();
  });

  it("no say on where the root token goes", async () => {
    const r = await sk(["init", "-a", cluster.nodes[0]!.address, ...operatorArgs(), "-o", out()]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/root token/);
    await expectUninitialised();
  });
});

describe("init with 5 operators (3 PGP by gpg, 2 age), then unseal of all three nodes", () => {
  it("initialises node 1 and writes one sealed file per operator, the sealed root token and a manifest", async () => {
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      "-n",
      "5",
      "-t",
      "3",
      ...operatorArgs(),
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      out(),
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("initialised: unseal shares, 3 of 5, sealed by the client");
    expect(statSync(out()).mode & 0o777).toBe(0o700);
    const files = readdirSync(out()).sort();
    expect(files).toEqual([
      "alice.asc",
      "bob.asc",
      "carol.asc",
      "dave.age",
      "erin.age",
      "manifest.json",
      "root-token.asc",
      "transcript.jsonl",
    ]);
    for (const f of files) expect(statSync(join(out(), f)).mode & 0o777).toBe(0o600);
    const manifest = JSON.parse(readFileSync(join(out(), "manifest.json"), "utf8"));
    expect(manifest).toMatchObject({ kind: "unseal", threshold: 3, shares: 5 });
    expect(manifest.operators.map((o: { name: string }) => o.name)).toEqual(["alice", "bob", "carol", "dave", "erin"]);
    expect(manifest.operators[0].recipientFingerprint).toBe(alice.fingerprint);
  });

  it("each operator opens their file with the real gpg or age, and gets a hex share the server accepts", () => {
    const shares = [
      gpgDecrypt(alice, join(out(), "alice.asc")),
      gpgDecrypt(bob, join(out(), "bob.asc")),
      gpgDecrypt(carol, join(out(), "carol.asc")),
      ageDecrypt(dave, join(out(), "dave.age")),
      ageDecrypt(erin, join(out(), "erin.age")),
    ];
    for (const s of shares) expect(s).toMatch(/^[0-9a-f]{66}$/);
    expect(new Set(shares).size).toBe(5);
    plaintextShares.push(...shares);
    const token = gpgDecrypt(rootHolder, join(out(), "root-token.asc"));
    expect(token).toMatch(/^hvs\.|^s\./);
    plaintextShares.push(token);
  });

  it("refuses to init an initialised node, and to reuse a ceremony directory", async () => {
    const r = await sk([
      "init",
      "-a",
      cluster.nodes[0]!.address,
      ...operatorArgs(),
      "--root-token-recipient",
      `pgp:${rootHolder.publicKeyPath}`,
      "-o",
      join(work, "again"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is already initialised; nothing was changed");
    expect(existsSync(join(work, "again", "manifest.json"))).toBe(false);
  });

  it("an operator checks their file offline against the manifest", async () => {
    const r = await sk(["shares", "check", "--file", join(out(), "dave.age"), "--identity", dave.identityPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/dave/);
  });

  it("unseals all three nodes, scripted, from sealed files opened with each operator's key", async () => {
    const r = await sk([
      "unseal",
      ...addrArgs(),
      "--non-interactive",
      "--share-file",
      join(out(), "alice.asc"),
      "--share-file",
      join(out(), "bob.asc"),
      "--share-file",
      join(out(), "dave.age"),
      "--identity",
      alice.secretKeyPath,
      "--identity",
      bob.secretKeyPath,
      "--identity",
      dave.identityPath,
      "--passphrase-file",
      join(work, "bob.pass"),
      "--transcript",
      join(out(), "transcript.jsonl"),
      "--format",
      "json",
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.nodes.map((n: { state: string }) => n.state)).toEqual(["unsealed", "unsealed", "unsealed"]);
    expect(report.nodes[0].contributors).toEqual(["alice", "bob", "dave"]);
    expect(r.stderr).toMatch(/share from alice \[[0-9a-f]{16}\]/);
    await waitForHa(cluster.nodes);
    const status = await sk(["status", ...addrArgs()]);
    expect(status.code).toBe(0);
  });

  it("the transcript verifies and holds no share", async () => {
    const text = readFileSync(join(out(), "transcript.jsonl"), "utf8");
    expect((await sk(["transcript", "verify", join(out(), "transcript.jsonl")])).code).toBe(0);
    expect(text).toMatch(/"action":"unseal-share"/);
    for (const s of plaintextShares) expect(text).not.toContain(s);
  });
});

describe("unseal faults (nodes resealed by a restart)", () => {
  const node3 = () => cluster.nodes[2]!;

  it("a duplicate share is detected and reported, progress does not advance", async () => {
    await node3().restart();
    const r = await sk(["unseal", "-a", node3().address, "--format", "json"], {
      stdin: `${plaintextShares[0]}\n${plaintextShares[0]}\n`,
    });
    expect(r.code).toBe(2);
    const [n] = JSON.parse(r.stdout).nodes;
    expect(n).toMatchObject({ state: "sealed", progress: 1, threshold: 3 });
    expect(n.message).toMatch(/duplicate share .* progress stays 1\/3/);
  });

  it("a share from another cluster makes the node reject the set at the threshold; progress resets", async () => {
    const foreign = Buffer.concat([Buffer.alloc(32, 0x42), Buffer.from([200])]).toString("hex");
    const r = await sk(["unseal", "-a", node3().address, "--reset", "--format", "json"], {
      stdin: `${plaintextShares[0]}\n${plaintextShares[1]}\n${foreign}\n`,
    });
    expect(r.code).toBe(2);
    const [n] = JSON.parse(r.stdout).nodes;
    expect(n.progress).toBe(0);
    expect(n.message).toMatch(
      /refused the set .* one of those shares is wrong or from another cluster, not necessarily the last/,
    );
  });

  it("a malformed share is refused with a clear message before anything is sent", async () => {
    const r = await sk(["unseal", "-a", node3().address, "--reset"], { stdin: "not-a-share!!\n" });
    expect(r.code).toBe(1);
    // --reset says what it cleared (issue 26.8), then the share is refused before anything is sent
    expect(r.stderr).toBe(
      `${node3().address}: sealed (--reset: the node held no share, nothing to clear (0/3))\n` +
        "error: the share from stdin line 1 is neither hex nor base64 (expected a hex or base64 unseal share)\n",
    );
  });

  it("a wrong passphrase is named, and the share is not lost", async () => {
    writeFileSync(join(work, "wrong.pass"), "not it\n");
    const r = await sk([
      "unseal",
      "-a",
      node3().address,
      "--non-interactive",
      "--share-file",
      join(out(), "bob.asc"),
      "--identity",
      bob.secretKeyPath,
      "--passphrase-file",
      join(work, "wrong.pass"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot open share file .*bob\.asc.*passphrase/i);
    expect(existsSync(join(out(), "bob.asc"))).toBe(true);
  });

  it("a sealed file without --identity says what is missing", async () => {
    const r = await sk(["unseal", "-a", node3().address, "--share-file", join(out(), "carol.asc")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is sealed \(pgp\); give the operator's key with --identity/);
  });

  it("a node killed in the middle: the others finish, and the exit code says so", async () => {
    await Promise.all(cluster.nodes.map((n) => n.restart()));
    const clients = cluster.nodes.map((n) => n.client());
    const shares = plaintextShares.slice(0, 3).map((s, i) => parseKeyShare(s, `test share ${i + 1}`));
    let given = 0;
    const report = await runUnseal({
      clients,
      source: {
        async next() {
          if (given === 1) await cluster.nodes[1]!.kill();
          return shares[given++] ?? null;
        },
      },
    });
    await Promise.all(clients.map((c) => c.close()));
    expect(report.nodes.map((n) => n.state)).toEqual(["unsealed", "unreachable", "unsealed"]);
    expect(unsealExitCode(report.nodes)).toBe(1);
    await cluster.nodes[1]!.start();
    const again = await sk(["unseal", "-a", cluster.nodes[1]!.address], {
      stdin: `${plaintextShares.slice(2, 5).join("\n")}\n`,
    });
    expect(again.code).toBe(0);
  });

  it("no plaintext share or root token ever appeared in the tool's output or files", () => {
    const written = readdirSync(out()).map((f) => readFileSync(join(out(), f), "utf8"));
    for (const secret of plaintextShares) {
      for (const text of [...outputs, ...written]) expect(text).not.toContain(secret);
    }
  });
});

// gpg keeps an agent per GNUPGHOME: stop it so the test process leaves nothing behind
afterAll(() => {
  stopGpgAgent(join(work, "gnupg"));
});
