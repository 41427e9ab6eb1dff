/**
 * OpenBao's self-initialization (the `initialize` stanza, OpenBao 2.4+) from `sealkeeper bootstrap export --self-init`:
 * a real OpenBao with the awskms seal on the KMS emulator boots with the stanza, initialises and configures itself
 * (the reference spec: kv-v2, Kubernetes auth with its config and roles, policies) and revokes its root token; then
 * sealkeeper proves the result with the verifier token the stanza provisions (never root): `bootstrap verify` passes
 * and `bootstrap plan` has nothing to do. On HashiCorp Vault the stanza means nothing: the node stays uninitialised.
 * The refusals (a Shamir seal, a server already initialised) are asserted against the real server too.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep, startNode, type TestNode } from "../harness/cluster.js";
import { KMS_TEST_CREDENTIALS, KMS_TEST_REGION, type KmsEmulator, startKmsEmulator } from "../harness/kms.js";
import { SERVER_NAMES, serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { withoutAudit } from "./bootstrap-helpers.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

const kind = serverKind();
let emu: KmsEmulator;
let node: TestNode;
let work: string;
let spec: string;
let tokenFile: string;
let sealStanza: string;
let initStanza: string;
const outputs: string[] = [];
const awsEnv = {
  AWS_ACCESS_KEY_ID: KMS_TEST_CREDENTIALS.accessKey,
  AWS_SECRET_ACCESS_KEY: KMS_TEST_CREDENTIALS.secretKey,
};

async function sk(argv: string[], env: Record<string, string> = {}) {
  const r = await runSealkeeper(argv, { env, cwd: work });
  outputs.push(r.stdout, r.stderr);
  return r;
}

/** Polls seal-status until the node says initialised and unsealed (self-init runs during start-up). */
async function waitInitialisedAndUnsealed(n: TestNode, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const c = n.client();
  try {
    for (;;) {
      const s = await c.sealStatus().catch(() => undefined);
      if (s?.initialized && !s.sealed) return;
      if (Date.now() > deadline)
        throw new Error(`not initialised+unsealed: ${JSON.stringify(s)}\n${n.readLog().slice(-2000)}`);
      await sleep(250);
    }
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-selfinit-"));
  // the reference spec, its reviewer JWT without a trailing newline (the server sends the file as it is)
  copyFileSync("examples/reference/kubernetes-ca.pem", join(work, "kubernetes-ca.pem"));
  // without its audit device: OpenBao takes those only from its config, so self-init refuses them
  writeFileSync(join(work, "bootstrap.yaml"), withoutAudit(readFileSync("examples/reference/bootstrap.yaml", "utf8")));
  writeFileSync(join(work, "token-reviewer.jwt"), readFileSync("examples/reference/token-reviewer.jwt", "utf8").trim());
  spec = join(work, "bootstrap.yaml");
  tokenFile = join(work, "verifier.token");
  emu = await startKmsEmulator();
  const created = await sk(
    [
      "autounseal",
      "awskms",
      "--region",
      KMS_TEST_REGION,
      "--endpoint",
      emu.endpoint,
      "--create-key",
      "--alias",
      "alias/self-init",
    ],
    awsEnv,
  );
  expect(created.code, created.stderr).toBe(0);
  const gen = await sk(
    [
      "autounseal",
      "awskms",
      "--region",
      KMS_TEST_REGION,
      "--key-id",
      "alias/self-init",
      "--endpoint",
      emu.endpoint,
      "--static-credentials",
      "--print-credentials",
      "--output",
      "hcl",
      ...(kind === "openbao" ? ["--target", "openbao"] : []),
    ],
    awsEnv,
  );
  expect(gen.code, gen.stderr).toBe(0);
  sealStanza = gen.stdout;
  writeFileSync(join(work, "seal.hcl"), sealStanza);
  const exported = await sk([
    "bootstrap",
    "export",
    "--self-init",
    "-f",
    spec,
    "--verifier-token-file",
    tokenFile,
    "--server-config",
    join(work, "seal.hcl"),
  ]);
  expect(exported.code, exported.stderr).toBe(0);
  initStanza = exported.stdout;
  node = await startNode({ extraConfig: `${sealStanza}\n${initStanza}` });
}, 240_000);

afterAll(async () => {
  await node?.stop();
  await emu?.stop();
});

describe(`${SERVER_NAMES[kind]}: bootstrap export --self-init`, () => {
  if (kind === "openbao") {
    it("the server initialises and configures itself on first boot; the verifier proves it (verify, plan)", async () => {
      await waitInitialisedAndUnsealed(node);
      const verifier = readFileSync(tokenFile, "utf8");
      // the verifier is an orphan with only its own policy: not root
      const c = node.client(verifier);
      const self = await c.request<{ data: { policies: string[]; orphan: boolean } }>("GET", "auth/token/lookup-self");
      await c.close();
      expect(self.body.data.policies.sort()).toEqual(["default", "sealkeeper-verify"]);
      expect(self.body.data.orphan).toBe(true);

      const verify = await sk(
        ["bootstrap", "verify", "-f", spec, "-a", node.address, "--token-role", "sealkeeper-verify"],
        {
          BAO_TOKEN: verifier,
        },
      );
      expect(verify.code, verify.stdout + verify.stderr).toBe(0);
      expect(verify.stdout).toContain("verify passed");
      const plan = await sk(["bootstrap", "plan", "-f", spec, "-a", node.address, "--detailed-exitcode"], {
        BAO_TOKEN: verifier,
      });
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
      // the verifier may read, not write: a write is refused
      const w = node.client(verifier);
      const denied = await w.request("POST", "sys/policies/acl/intruder", { body: { policy: "" }, accept: [403] });
      await w.close();
      expect(denied.status).toBe(403);
    });

    it("a restart auto-unseals and does not run the stanza again (plan still has nothing to do)", async () => {
      await node.restart();
      await waitInitialisedAndUnsealed(node);
      const plan = await sk(["bootstrap", "plan", "-f", spec, "-a", node.address, "--detailed-exitcode"], {
        BAO_TOKEN: readFileSync(tokenFile, "utf8"),
      });
      expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    });
  } else {
    it("HashiCorp Vault has no self-initialization: the stanza does nothing and the node stays uninitialised", async () => {
      const c = node.client();
      const s = await c.sealStatus();
      await c.close();
      expect(s).toMatchObject({ type: "awskms", initialized: false });
    });
  }

  it("refuses a server that is already initialised, or has a Shamir seal, and writes nothing", async () => {
    if (kind === "vault") {
      // Vault ignores the stanza: initialise the node the usual way to have an initialised server to refuse
      const c = node.client();
      await c.init({ recovery_shares: 1, recovery_threshold: 1 });
      await c.close();
    }
    const again = join(work, "again.token");
    const inited = await sk([
      "bootstrap",
      "export",
      "--self-init",
      "-f",
      spec,
      "--verifier-token-file",
      again,
      "-a",
      node.address,
    ]);
    expect(inited.code).toBe(1);
    expect(inited.stderr).toContain(
      "is already initialised: OpenBao runs an initialize stanza only on its first start",
    );
    const shamir = await startNode();
    try {
      const r = await sk([
        "bootstrap",
        "export",
        "--self-init",
        "-f",
        spec,
        "--verifier-token-file",
        again,
        "-a",
        shamir.address,
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("has a Shamir seal: OpenBao self-initialization needs an auto-unseal seal");
    } finally {
      await shamir.stop();
    }
    expect(() => readFileSync(again)).toThrow();
  });

  it("the stanza holds no secret (the reviewer JWT and the verifier token ID stay in their files)", () => {
    expect(initStanza).not.toContain(readFileSync(join(work, "token-reviewer.jwt"), "utf8"));
    const verifier = readFileSync(tokenFile, "utf8");
    expect(initStanza).not.toContain(verifier);
    for (const o of outputs) expect(o).not.toContain(verifier);
  });
});
