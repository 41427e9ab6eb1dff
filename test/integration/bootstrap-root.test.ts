/**
 * Root token revocation against a real server (dev mode): a non-root token is refused, nothing happens without
 * --yes, a root token is revoked and lookup-self then answers 403; the token can come from a sealed root-token file;
 * `bootstrap apply --revoke-root-token` revokes only after verify passed.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSpec } from "../../src/bootstrap/spec.js";
import { loadRecipient, sealShare } from "../../src/ciphers/registry.js";
import type { VaultClient } from "../../src/vault/client.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { startServerForAudit, writeReferenceSpec } from "./bootstrap-helpers.js";

let server: DevServer;
let root: VaultClient;
let dir: string;
let referenceSpec: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-root-"));
  referenceSpec = writeReferenceSpec(dir);
  server = await startServerForAudit(loadSpec(referenceSpec).audit);
  root = server.client();
});

afterAll(async () => {
  await root?.close();
  await server?.stop();
});

async function childToken(policies: string[]): Promise<string> {
  const res = await root.write<{ auth: { client_token: string } }>("auth/token/create", { policies });
  return res.auth.client_token;
}

async function lookupStatus(token: string): Promise<number> {
  const c = server.client(token);
  try {
    return (await c.request("GET", "auth/token/lookup-self", { accept: [403] })).status;
  } finally {
    await c.close();
  }
}

const revoke = (token: string, extra: string[] = []) =>
  runSealkeeper(["root", "revoke", ...extra], { env: { VAULT_ADDR: server.address, VAULT_TOKEN: token } });

describe("root revoke", () => {
  it("refuses a token that is not root, and leaves it valid", async () => {
    const token = await childToken(["default"]);
    const r = await revoke(token, ["--yes"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refusing to revoke: the token is not a root token (policies: default)");
    expect(r.stderr).not.toContain(token);
    expect(await lookupStatus(token)).toBe(200);
  });

  it(`does nothing without --yes, after saying what is left (${serverKind() === "openbao" ? "OpenBao: generate-root also needs a token or the listener option" : "Vault: a quorum"})`, async () => {
    const token = await childToken(["root"]);
    const r = await revoke(token);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no auth method besides token/ is enabled");
    expect(r.stderr).toContain("the only way back to root is generate-root, which needs a quorum");
    if (serverKind() === "openbao") {
      // OpenBao 2.6.2 (dev mode too): the unauthenticated sys/generate-root (since 2.5.3) and sys/rekey (since 2.5.0)
      // are off: both ways back need a token, said before the revoke (issue 26.7)
      expect(r.stderr).toContain(
        "root generation (/v1/sys/generate-root-token/*) and rekey (/v1/sys/rotate/root/*) each need the quorum AND a token allowed on that path: make one BEFORE revoking",
      );
      expect(r.stderr).toContain(
        "disable_unauthed_generate_root_endpoints = false and disable_unauthed_rekey_endpoints = false",
      );
    } else {
      expect(r.stderr).not.toContain("generate-root-token");
      expect(r.stderr).not.toContain("sys/rotate");
    }
    expect(r.stderr).toContain("run again with --yes");
    expect(await lookupStatus(token)).toBe(200);
  });

  it("revokes a root token and proves it gone (403)", async () => {
    const token = await childToken(["root"]);
    const r = await revoke(token, ["--yes"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/root token revoked \(accessor \S+\); lookup-self now answers 403/);
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(await lookupStatus(token)).toBe(403);
  });

  it("opens the token from a sealed root-token file with --identity", async () => {
    const { generateIdentity, identityToRecipient } = await import("age-encryption");
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const loaded = await loadRecipient({ type: "age", value: recipient, source: "literal", raw: `age:${recipient}` });
    const token = await childToken(["root"]);
    const sealed = await sealShare(loaded, new TextEncoder().encode(token));
    writeFileSync(join(dir, "root-token.age"), sealed, { mode: 0o600 });
    writeFileSync(join(dir, "me.key"), `${identity}\n`, { mode: 0o600 });
    const r = await runSealkeeper(
      ["root", "revoke", "--root-token-file", join(dir, "root-token.age"), "--identity", join(dir, "me.key"), "--yes"],
      { env: { VAULT_ADDR: server.address } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(await lookupStatus(token)).toBe(403);
  });

  it("bootstrap apply --revoke-root-token refuses while no audit device is enabled; --allow-no-audit overrides", async () => {
    // a server of its own: the shared one has the reference spec's audit device (from its config on OpenBao)
    const bare = await startDevServer();
    try {
      const spec = join(dir, "no-audit.yaml");
      writeFileSync(
        spec,
        "version: 1\npolicies:\n  - name: applied\n    rules: [{ path: secret/data/x, capabilities: [read] }]\n",
      );
      const c = bare.client();
      const token = (await c.write<{ auth: { client_token: string } }>("auth/token/create", { policies: ["root"] }))
        .auth.client_token;
      const env = { VAULT_ADDR: bare.address, VAULT_TOKEN: token };
      const r = await runSealkeeper(["bootstrap", "apply", "-f", spec, "--revoke-root-token"], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("refusing to revoke the root token: no audit device is enabled");
      expect(r.stderr).toContain("--allow-no-audit");
      // applied and verified, but the token lives
      expect(await c.read("sys/policies/acl/applied")).toBeDefined();
      const probe = bare.client(token);
      expect((await probe.request("GET", "auth/token/lookup-self", { accept: [403] })).status).toBe(200);
      await probe.close();
      const forced = await runSealkeeper(
        ["bootstrap", "apply", "-f", spec, "--revoke-root-token", "--allow-no-audit"],
        {
          env,
        },
      );
      expect(forced.code, forced.stderr).toBe(0);
      expect(forced.stdout).toContain("lookup-self now answers 403");
      await c.close();
    } finally {
      await bare.stop();
    }
  });

  it("bootstrap apply --revoke-root-token applies, verifies, then revokes", async () => {
    const spec = referenceSpec;
    const token = await childToken(["root"]);
    const r = await runSealkeeper(["bootstrap", "apply", "-f", spec, "--revoke-root-token"], {
      env: { VAULT_ADDR: server.address, VAULT_TOKEN: token },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Apply complete");
    expect(r.stdout).toContain("lookup-self now answers 403");
    expect(await lookupStatus(token)).toBe(403);
    // the configuration stayed
    expect(await root.read("auth/kubernetes/role/eso-role")).toBeDefined();
  });

  it("bootstrap apply --revoke-root-token with a non-root token applies nothing", async () => {
    await root.write("sys/policies/acl/admin", {
      policy: 'path "*" { capabilities = ["create","read","update","delete","list","sudo"] }',
    });
    const token = await childToken(["admin"]);
    const spec = join(dir, "small.yaml");
    writeFileSync(
      spec,
      "version: 1\npolicies:\n  - name: never-written\n    rules: [{ path: secret/data/x, capabilities: [read] }]\n",
    );
    const r = await runSealkeeper(["bootstrap", "apply", "-f", spec, "--revoke-root-token"], {
      env: { VAULT_ADDR: server.address, VAULT_TOKEN: token },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not a root token");
    expect(await root.read("sys/policies/acl/never-written")).toBeUndefined();
    expect(await lookupStatus(token)).toBe(200);
  });
});
