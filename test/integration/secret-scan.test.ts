/**
 * Secret scan of a whole ceremony on a real 3-node cluster, through the CLI in-process: init (client-side sealing to
 * two real GnuPG keys and one age key, --print-root-token), each operator's shares check (one with the wrong key),
 * failing unseals (a wrong share, a malformed line), the quorum unseal of every node with sealed share files, the
 * transcript verify, status, and a break-glass root generate (OTP). Node 1 is reached through a recording proxy, so
 * the test learns every secret that crossed the wire (shares, root tokens, the OTP) without trusting the tool to
 * say so. Then every stdout, every stderr and every file under the work directory is searched for every form of
 * every secret: the only hit allowed is the root token on the line init printed because the test asked for it.
 * On OpenBao 2.6.2 the break-glass goes through /sys/generate-root-token with a token allowed on it (the
 * unauthenticated sys/generate-root is off by default): the test makes that token through the proxy (so it is one
 * more secret the scan looks for) and gives it in BAO_TOKEN, as an operator would.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";
import { startCluster, type TestCluster } from "../harness/cluster.js";
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
import { type CliRun, runSealkeeper } from "../harness/run-cli.js";
import {
  collectFiles,
  type KnownSecret,
  type RecordingProxy,
  type ScanTarget,
  scanForSecrets,
  startRecordingProxy,
} from "../harness/secret-scan.js";

let cluster: TestCluster;
let proxy: RecordingProxy;
let work: string;
let out: string;
let alice: PgpOperator;
let carol: PgpOperator;
let bob: AgeOperator;
let holder: AgeOperator;
const runs: { name: string; run: CliRun }[] = [];
/** Secrets the test learned by decrypting files with the real tools (the proxy learns the rest). */
const learned: KnownSecret[] = [];

async function sk(
  name: string,
  argv: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  // HOME inside the work dir: a rescue bundle, if one were written, would be scanned too
  const run = await runSealkeeper(argv, {
    cwd: work,
    env: { HOME: join(work, "home"), ...opts.env },
    stdin: opts.stdin,
  });
  runs.push({ name, run });
  return run;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-secret-scan-"));
  out = join(work, "ceremony");
  const keys = join(work, "keys");
  mkdirSync(keys);
  mkdirSync(join(work, "home"));
  const starting = startCluster(3);
  const home = makeGnupgHome(work);
  alice = makePgpOperator(home, keys, "alice");
  carol = makePgpOperator(home, keys, "carol", { passphrase: "carol pass" });
  bob = makeAgeOperator(keys, "bob");
  holder = makeAgeOperator(keys, "holder");
  cluster = await starting;
  proxy = await startRecordingProxy(cluster.nodes[0]!.address);
}, 180_000);

afterAll(async () => {
  await proxy?.close();
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const nodeArgs = () => ["-a", proxy.address, "-a", cluster.nodes[1]!.address, "-a", cluster.nodes[2]!.address];

describe("a whole ceremony leaves no plaintext secret behind", () => {
  it("init (client sealing, --print-root-token)", async () => {
    const r = await sk("init", [
      "init",
      "-a",
      proxy.address,
      "-n",
      "3",
      "-t",
      "2",
      "--operator",
      `alice=pgp:${alice.publicKeyPath}`,
      "--operator",
      `bob=age:${bob.recipient}`,
      "--operator",
      `carol=pgp:${carol.publicKeyPath}`,
      "--root-token-recipient",
      `age:${holder.recipient}`,
      "--seal-shares",
      "client",
      "--print-root-token",
      "-o",
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    // the transcript's last hash is printed, to be recorded away from the machine
    expect(r.stderr).toMatch(/^transcript: .*transcript\.jsonl \(last hash [0-9a-f]{64}\)$/m);
    // what the operators get is what the server sent (the proxy saw it)
    const fromFiles = [
      gpgDecrypt(alice, join(out, "alice.asc")),
      ageDecrypt(bob, join(out, "bob.age")),
      gpgDecrypt(carol, join(out, "carol.asc")),
    ].map((s) => s.trim());
    const onWire = proxy.secrets().filter((s) => s.kind === "share");
    expect(onWire.map((s) => s.value).sort()).toEqual([...fromFiles].sort());
    const rootToken = ageDecrypt(holder, join(out, "root-token.age")).trim();
    expect(proxy.secrets().find((s) => s.kind === "root-token")?.value).toBe(rootToken);
  });

  it("each operator checks their file offline; a wrong key is refused", async () => {
    const ok = [
      await sk("shares check alice", [
        "shares",
        "check",
        "--file",
        join(out, "alice.asc"),
        "--identity",
        alice.secretKeyPath,
      ]),
      await sk("shares check bob", ["shares", "check", "--file", join(out, "bob.age"), "--identity", bob.identityPath]),
      await sk("shares check carol --format json", [
        "shares",
        "check",
        "--file",
        join(out, "carol.asc"),
        "--identity",
        carol.secretKeyPath,
        "--passphrase-file",
        await passFile(),
        "--format",
        "json",
      ]),
    ];
    for (const r of ok) expect(r.code, r.stderr).toBe(0);
    const wrong = await sk("shares check wrong key", [
      "shares",
      "check",
      "--file",
      join(out, "bob.age"),
      "--identity",
      holder.identityPath,
    ]);
    expect(wrong.code).toBe(1);
  });

  it("failing unseals: a wrong share resets node 1; a malformed line is refused", async () => {
    const alicesShare = gpgDecrypt(alice, join(out, "alice.asc")).trim();
    const wrongShare = randomBytes(33).toString("hex");
    learned.push({ kind: "share", label: "the test's wrong share", value: wrongShare });
    const r = await sk("unseal wrong share", ["unseal", "-a", proxy.address, "--non-interactive"], {
      stdin: `${alicesShare}\n${wrongShare}\n`,
    });
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/rejected|refused the set/); // the words since issue 25
    const bad = await sk("unseal malformed", ["unseal", "-a", proxy.address, "--non-interactive"], {
      stdin: `${alicesShare.slice(0, 40)}zz${alicesShare.slice(42)}\n`,
    });
    expect(bad.code).toBe(1);
  });

  it("quorum unseal of every node from sealed files, with a transcript; verify; status", async () => {
    const transcript = join(out, "transcript.jsonl");
    const r = await sk("unseal", [
      "unseal",
      ...nodeArgs(),
      "--non-interactive",
      "--share-file",
      join(out, "bob.age"),
      "--identity",
      bob.identityPath,
      "--share-file",
      join(out, "alice.asc"),
      "--identity",
      alice.secretKeyPath,
      "--transcript",
      transcript,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const lastHash = /last hash ([0-9a-f]{64})/.exec(r.stderr)![1]!;
    const v = await sk("transcript verify", ["transcript", "verify", transcript, "--last-hash", lastHash]);
    expect(v.code, v.stderr).toBe(0);
    const s = await sk("status", ["status", ...nodeArgs()]);
    expect(s.code, s.stderr).toBe(0);
    const again = await sk("unseal, all unsealed", ["unseal", ...nodeArgs(), "--non-interactive"], {
      stdin: `${gpgDecrypt(carol, join(out, "carol.asc")).trim()}\n`,
    });
    expect(again.code).toBe(0);
  });

  it(`break-glass root generate (OTP${serverKind() === "openbao" ? ", OpenBao: /sys/generate-root-token with a break-glass token" : ""}): the new token is sealed; the OTP never leaves memory`, async () => {
    const env: Record<string, string> = {};
    if (serverKind() === "openbao") {
      // a token allowed on sys/generate-root-token/* only, made with init's root token through the proxy (which
      // records its client_token as a secret to scan for)
      const rootToken = ageDecrypt(holder, join(out, "root-token.age")).trim();
      const c = new VaultClient({ ...resolveConnection({ address: proxy.address }, {}), token: rootToken });
      try {
        await c.write("sys/policies/acl/break-glass", {
          policy: 'path "sys/generate-root-token/*" {\n  capabilities = ["create", "read", "update", "delete"]\n}\n',
        });
        const made = await c.request<{ auth: { client_token: string } }>("POST", "auth/token/create", {
          body: { policies: ["break-glass"], no_default_policy: true, no_parent: true, ttl: "1h" },
        });
        env.BAO_TOKEN = made.body.auth.client_token;
      } finally {
        await c.close();
      }
      expect(proxy.secrets().some((s) => s.kind === "token" && s.value === env.BAO_TOKEN)).toBe(true);
    }
    const r = await sk(
      "root generate",
      [
        ...["root", "generate", "-a", proxy.address, "--token-recipient", `age:${holder.recipient}`],
        ...["-o", join(work, "break-glass.age"), "--non-interactive"],
        ...["--share-file", join(out, "alice.asc"), "--identity", alice.secretKeyPath],
        ...["--share-file", join(out, "bob.age"), "--identity", bob.identityPath],
      ],
      { env },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      serverKind() === "openbao" ? "via /v1/sys/generate-root-token," : "via /v1/sys/generate-root,",
    );
    expect(proxy.secrets().some((s) => s.kind === "otp")).toBe(true);
    learned.push({
      kind: "token",
      label: "generated root token",
      value: ageDecrypt(holder, join(work, "break-glass.age")).trim(),
    });
  });

  it("scan: no share, token or OTP in any output or file, except the root token init was asked to print", () => {
    // de-duplicated by value: the test's wrong share also crossed the wire
    const secrets = [...new Map([...proxy.secrets(), ...learned].map((x) => [x.value, x])).values()];
    const outputs: ScanTarget[] = runs.flatMap(({ name, run }) => [
      { name: `stdout of ${name}`, text: run.stdout },
      { name: `stderr of ${name}`, text: run.stderr },
    ]);
    const files = collectFiles(work);
    const findings = scanForSecrets([...outputs, ...files.targets], secrets);
    const outputBytes = outputs.reduce((n, t) => n + Buffer.byteLength(t.text), 0);
    console.log(
      `secret scan: ${secrets.length} secrets (${countKinds(secrets)}), ${runs.length} CLI runs ` +
        `(${outputs.length} streams, ${outputBytes} bytes), ${files.files} files (${files.bytes} bytes), ` +
        `${proxy.requests()} proxied requests; findings: ${findings.length}`,
    );
    expect(secrets.filter((s) => s.kind === "share").length).toBe(4); // 3 from init, the wrong one
    expect(findings).toEqual([expect.objectContaining({ target: "stdout of init", kind: "root-token" })]);
    const init = runs.find((r) => r.name === "init")!.run;
    const token = secrets.find((s) => s.kind === "root-token")!.value;
    expect(init.stdout.split("\n").filter((l) => l.includes(token))).toEqual([
      `root token (you asked for it in plaintext): ${token}`,
    ]);
  });

  it("the scan can fail: a planted share in a file and in an output is found in every form", () => {
    const share = randomBytes(33);
    const secret: KnownSecret = { kind: "share", label: "planted", value: share.toString("hex") };
    const targets: ScanTarget[] = [
      { name: "hex", text: `x ${share.toString("hex")} y` },
      { name: "HEX", text: share.toString("hex").toUpperCase() },
      { name: "b64", text: `"${share.toString("base64")}"` },
      { name: "clean", text: share.toString("hex").slice(0, 60) },
    ];
    expect(scanForSecrets(targets, [secret]).map((f) => `${f.target}:${f.form}`)).toEqual([
      "hex:hex",
      "HEX:HEX",
      "b64:base64",
    ]);
  });
});

function countKinds(secrets: KnownSecret[]): string {
  const n = new Map<string, number>();
  for (const s of secrets) n.set(s.kind, (n.get(s.kind) ?? 0) + 1);
  return [...n.entries()].map(([k, v]) => `${v} ${k}`).join(", ");
}

async function passFile(): Promise<string> {
  const { writeFileSync } = await import("node:fs");
  const path = join(work, "keys", "carol.pass");
  writeFileSync(path, "carol pass\n", { mode: 0o600 });
  return path;
}
