/**
 * The recovery-share variants under auto-unseal (awskms at the KMS emulator, one real node): root generation
 * authorised by recovery shares, and a rekey of the recovery shares (Vault: /sys/rekey-recovery-key/*), after which
 * only the new recovery shares authorise anything.
 *
 * OpenBao 2.6.2 serves neither without a token (its unauthenticated sys/generate-root and sys/rekey-recovery-key are
 * off by default): root generation goes through /sys/generate-root-token/* and the recovery rekey through
 * /sys/rotate/recovery/*, so the operators make a token allowed on exactly those paths before they revoke the root
 * token, and every run gives it in BAO_TOKEN. Vault 1.21 needs no token for either.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNode, type TestNode } from "../harness/cluster.js";
import { KMS_TEST_CREDENTIALS, KMS_TEST_REGION, type KmsEmulator, startKmsEmulator } from "../harness/kms.js";
import { type AgeOperator, ageDecrypt, makeAgeOperator } from "../harness/operators.js";
import { SERVER_NAMES, serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const kind = serverKind();
const name = SERVER_NAMES[kind];
/** The API of each quorum operation on this server (Vault's unauthenticated, OpenBao's token-protected one). */
const api =
  kind === "openbao"
    ? { generateRoot: "/v1/sys/generate-root-token", rekey: "/v1/sys/rotate/recovery" }
    : { generateRoot: "/v1/sys/generate-root", rekey: "/v1/sys/rekey-recovery-key" };
/** OpenBao: the quorum operators' policy, the token paths of root generation and recovery rekey and nothing else. */
const GENERATE_ROOT_POLICY = `path "sys/generate-root-token/*" {
  capabilities = ["create", "read", "update", "delete"]
}
`;
const QUORUM_POLICY = `${GENERATE_ROOT_POLICY}path "sys/rotate/recovery/*" {
  capabilities = ["create", "read", "update", "delete"]
}
`;
/** OpenBao only: a token of QUORUM_POLICY, made before the root token was revoked; undefined on Vault. */
let quorumToken: string | undefined;
/** OpenBao only: a token allowed on root generation but not on the recovery rekey. */
let generateOnly: string | undefined;
let emu: KmsEmulator;
let node: TestNode;
let work: string;
let recoveryKeys: string[];
let newKeys: string[];
let ops: AgeOperator[];
const awsEnv = {
  AWS_ACCESS_KEY_ID: KMS_TEST_CREDENTIALS.accessKey,
  AWS_SECRET_ACCESS_KEY: KMS_TEST_CREDENTIALS.secretKey,
};

const sk = (argv: string[], opts: Parameters<typeof runSealkeeper>[1] = {}) =>
  runSealkeeper([...argv, "-a", node.address], {
    cwd: work,
    ...opts,
    env: { ...(quorumToken ? { BAO_TOKEN: quorumToken } : {}), ...opts.env },
  });

async function waitUnsealed(): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const c = node.client();
    try {
      if (!(await c.sealStatus()).sealed && (await c.health()).status === 200) return;
    } catch {
      // not up yet
    } finally {
      await c.close();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("node did not unseal itself");
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-recovery-"));
  mkdirSync(join(work, "keys"));
  ops = ["rita", "sam", "tess"].map((n) => makeAgeOperator(join(work, "keys"), n));
  emu = await startKmsEmulator();
  const base = ["autounseal", "awskms", "--region", KMS_TEST_REGION, "--endpoint", emu.endpoint];
  const created = await runSealkeeper([...base, "--create-key", "--alias", "alias/recovery-test"], { env: awsEnv });
  expect(created.code, created.stderr).toBe(0);
  const gen = await runSealkeeper(
    [...base, "--key-id", "alias/recovery-test", "--static-credentials", "--print-credentials", "--output", "hcl"],
    { env: awsEnv },
  );
  expect(gen.code, gen.stderr).toBe(0);
  node = await startNode({ extraConfig: gen.stdout });
  const c = node.client();
  const init = await c.init({ recovery_shares: 3, recovery_threshold: 2 });
  await c.close();
  recoveryKeys = init.recovery_keys!;
  recoveryKeys.forEach((k, i) => {
    writeFileSync(join(work, `rec${i + 1}.txt`), `${k}\n`, { mode: 0o600 });
  });
  await waitUnsealed();
  const r = node.client(init.root_token);
  if (kind === "openbao") {
    await r.write("sys/policies/acl/quorum", { policy: QUORUM_POLICY });
    await r.write("sys/policies/acl/generate-only", { policy: GENERATE_ROOT_POLICY });
    const mint = async (policy: string) =>
      (
        await r.request<{ auth: { client_token: string } }>("POST", "auth/token/create", {
          // an orphan: revoking the root token revokes its children
          body: { policies: [policy], no_default_policy: true, no_parent: true, ttl: "2h" },
        })
      ).body.auth.client_token;
    quorumToken = await mint("quorum");
    generateOnly = await mint("generate-only");
  }
  await r.request("POST", "auth/token/revoke-self");
  await r.close();
}, 240_000);

afterAll(async () => {
  await node?.stop();
  await emu?.stop();
});

async function generateWith(files: string[], out: string) {
  return sk([
    "root",
    "generate",
    "--token-recipient",
    `age:${ops[0]!.recipient}`,
    "-o",
    out,
    "--non-interactive",
    ...files.flatMap((f) => ["--share-file", f]),
  ]);
}

async function works(token: string): Promise<boolean> {
  const c = node.client(token);
  try {
    const res = await c.request<{ data?: { policies?: string[] } }>("GET", "auth/token/lookup-self", { accept: [403] });
    return res.status === 200 && (res.body.data?.policies ?? []).includes("root");
  } finally {
    await c.close();
  }
}

describe(`${name}: under auto-unseal, the quorum is of recovery shares`, () => {
  it(`${kind === "openbao" ? "without a token both are refused, with the listener option or the token path to use" : "neither root generation nor the recovery rekey needs a token"}`, async () => {
    // the root token is revoked: nothing here has a token unless the operators give one
    const gen = await runSealkeeper(["root", "generate", "--status", "-a", node.address], { cwd: work });
    const rekey = await runSealkeeper(["rekey", "--status", "-a", node.address], { cwd: work });
    if (kind === "openbao") {
      expect(gen.code).toBe(2);
      expect(gen.stderr).toContain("offers no usable root generation API");
      expect(gen.stderr).toContain("disable_unauthed_generate_root_endpoints = false");
      expect(gen.stderr).toContain("/v1/sys/generate-root-token/*");
      expect(rekey.code).toBe(2);
      expect(rekey.stderr).toContain("offers no usable recovery-key rekey API");
      // measured on OpenBao 2.6.2: 404 "unsupported path" here (the generate-root pair answers 405)
      expect(rekey.stderr).toContain("/v1/sys/rekey-recovery-key/init: 404 (unsupported path)");
      expect(rekey.stderr).toContain("disable_unauthed_rekey_endpoints = false");
      expect(rekey.stderr).toContain("/v1/sys/rotate/recovery/*");
      for (const r of [gen, rekey]) expect(r.stderr).not.toMatch(/^error: 40[0-9]/m);
      // a token whose policy allows root generation only: the recovery rekey's token path refuses it (403)
      const partial = await runSealkeeper(["rekey", "--status", "-a", node.address], {
        cwd: work,
        env: { BAO_TOKEN: generateOnly! },
      });
      expect(partial.code).toBe(2);
      expect(partial.stderr).toContain("/v1/sys/rotate/recovery/init (needs a token): 403: the token may not use it");
      const allowed = await runSealkeeper(["root", "generate", "--status", "-a", node.address], {
        cwd: work,
        env: { BAO_TOKEN: generateOnly! },
      });
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(allowed.stdout).toContain("/v1/sys/generate-root-token is usable (2 shares required)");
    } else {
      expect(gen.code, gen.stderr).toBe(0);
      expect(gen.stdout).toContain("/v1/sys/generate-root is usable (2 shares required)");
      expect(rekey.code, rekey.stderr).toBe(0);
      expect(rekey.stdout).toContain("/v1/sys/rekey-recovery-key is usable (recovery shares, 2 old shares required)");
    }
  });

  it(`root generate takes 2 of 3 recovery shares (via ${api.generateRoot})`, async () => {
    const r = await generateWith(["rec1.txt", "rec3.txt"], "rec-token.age");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`root generation via ${api.generateRoot},`);
    const token = ageDecrypt(ops[0]!, join(work, "rec-token.age")).trim();
    expect(await works(token)).toBe(true);
    const c = node.client(token);
    await c.request("POST", "auth/token/revoke-self");
    await c.close();
  });

  it(`rekey re-issues the recovery shares (2 of 3 -> 2 of 2) via ${api.rekey}, verified with the new ones`, async () => {
    const status = await sk(["rekey", "--status", "--format", "json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ kind: "recovery", api: api.rekey });
    const out = join(work, "new-recovery");
    const r = await sk([
      "rekey",
      "-n",
      "2",
      "-t",
      "2",
      "--operator",
      `sam=age:${ops[1]!.recipient}`,
      "--operator",
      `tess=age:${ops[2]!.recipient}`,
      "-o",
      out,
      "--non-interactive",
      "--share-file",
      "rec2.txt",
      "--share-file",
      "rec3.txt",
    ]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`started recovery rekey via ${api.rekey}`);
    newKeys = [ageDecrypt(ops[1]!, join(out, "sam.age")).trim(), ageDecrypt(ops[2]!, join(out, "tess.age")).trim()];
    // before verification the old recovery shares still authorise root generation
    const before = await generateWith(["rec1.txt", "rec2.txt"], "before.age");
    expect(before.code, before.stderr).toBe(0);
    const t = ageDecrypt(ops[0]!, join(work, "before.age")).trim();
    const c = node.client(t);
    await c.request("POST", "auth/token/revoke-self");
    await c.close();

    const v = await sk([
      "rekey",
      "--verify",
      "--non-interactive",
      "--share-file",
      join(out, "sam.age"),
      "--share-file",
      join(out, "tess.age"),
      "--identity",
      ops[1]!.identityPath,
      "--identity",
      ops[2]!.identityPath,
    ]);
    expect(v.code, v.stderr).toBe(0);
  });

  it("after it, old recovery shares are refused and the new ones work", async () => {
    const old = await generateWith(["rec1.txt", "rec2.txt"], "old.age");
    expect(old.code).toBe(2);
    expect(old.stderr).toContain("rejected-set");
    writeFileSync(join(work, "new1.txt"), `${newKeys[0]}\n`);
    writeFileSync(join(work, "new2.txt"), `${newKeys[1]}\n`);
    const fresh = await generateWith(["new1.txt", "new2.txt"], "new.age");
    expect(fresh.code, fresh.stderr).toBe(0);
    const token = ageDecrypt(ops[0]!, join(work, "new.age")).trim();
    expect(await works(token)).toBe(true);
  });
});
