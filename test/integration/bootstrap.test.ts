/**
 * Bootstrap against a real server (dev mode): the article's reference architecture planned, applied, re-applied with
 * zero writes (proven by a file audit device), drift restored, least privilege verified, and Kubernetes login end to
 * end with tokens minted by a real kube-apiserver (test/harness/kube.ts; the refusals are in kube-auth.test.ts).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSpec } from "../../src/bootstrap/spec.js";
import type { VaultHttpError } from "../../src/errors.js";
import type { VaultClient } from "../../src/vault/client.js";
import type { DevServer } from "../harness/cluster.js";
import { type KubeCluster, kubeIdentities, startKubeCluster } from "../harness/kube.js";
import { serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { auditRequests, countWrites, startServerForAudit, writeReferenceSpec } from "./bootstrap-helpers.js";

let server: DevServer;
let root: VaultClient;
let kube: KubeCluster;
let reviewerToken: string;
let dir: string;
let specFile: string;
let auditLog: string;
let env: Record<string, string>;

/** The service accounts the logins use, and the reviewer bound to system:auth-delegator. */
const IDENTITIES = kubeIdentities([
  ["dev", "my-app"],
  ["production", "my-app"],
  ["external-secrets", "external-secrets"],
]);

const cli = (args: string[]) => runSealkeeper(args, { env });

const openbao = serverKind() === "openbao";

beforeAll(async () => {
  kube = await startKubeCluster();
  await kube.kubectlOk(["apply", "-f", "-"], { stdin: IDENTITIES });
  reviewerToken = await kube.createToken("vault", "vault-auth", { duration: "4h" });
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-bootstrap-"));
  auditLog = join(dir, "audit.log");
  specFile = writeReferenceSpec(dir, { host: kube.server, caFile: kube.caFile, reviewerToken }, auditLog);
  // the spec's file audit device: Vault gets it from the first apply, OpenBao from its server config
  server = await startServerForAudit(loadSpec(specFile).audit);
  root = server.client();
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
}, 300_000);

/** Lint's only complaint about the test's copy of the spec: its audit log is under /tmp. */
const onlyTmpAuditWarning = (stderr: string) =>
  expect(stderr.split("\n").filter((l) => l !== "" && !l.includes(": audit-path-tmp: "))).toEqual([]);

afterAll(async () => {
  await root?.close();
  await server?.stop();
  await kube?.stop();
});

describe("bootstrap of the reference architecture", () => {
  it("plans creates on a fresh server (exit 2 with --detailed-exitcode)", async () => {
    const r = await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"]);
    onlyTmpAuditWarning(r.stderr);
    expect(r.code).toBe(2);
    // Vault: the audit device comes first; OpenBao: its server config already enabled it
    if (openbao) expect(r.stdout).not.toContain("audit file/");
    else expect(r.stdout.split("\n")[0]).toBe("+ create audit file/");
    // dev mode already mounts kv-v2 at secret/: no mount change
    expect(r.stdout).not.toContain("mount secret/");
    for (const id of [
      "+ create auth kubernetes/",
      "+ create config auth/kubernetes/config",
      "+ create policy my-app-read",
      "+ create policy my-app-dev-read",
      "+ create policy my-app-production-read",
      "+ create role kubernetes/eso-role",
      "+ create role kubernetes/my-app-dev",
      "+ create role kubernetes/my-app-production",
    ]) {
      expect(r.stdout).toContain(id);
    }
    expect(r.stdout).toContain("token_reviewer_jwt: (sensitive)");
    expect(r.stdout).not.toContain(reviewerToken);
    expect(r.stdout).toContain(`Plan: ${openbao ? 8 : 9} to create, 0 to update, 0 to delete.`);
  });

  it("applies, then plans no changes", async () => {
    // the apply lock's own writes are not steps (sealkeeper/ state mount: enabled once, the lock taken and released;
    // docs/bootstrap.md, "One apply at a time")
    const ours = (e: { path: string }) => !/^(sealkeeper\/|sys\/mounts\/sealkeeper$)/.test(e.path);
    const before = countWrites(auditRequests(auditLog).filter(ours));
    const r = await cli(["bootstrap", "apply", "-f", specFile]);
    expect(r.code, r.stderr).toBe(0);
    const steps = openbao ? 8 : 9;
    expect(r.stdout).toContain(`Apply complete: ${steps} step(s), ${steps} write request(s).`);
    // the audit device is applied first, so every later write is in its log; on Vault the enabling request itself is
    // logged too (its response goes to the device it created: seen on Vault 1.21.0, 9 of 9), while OpenBao's device
    // comes from its server configuration and is not a step (8 of 8)
    expect(countWrites(auditRequests(auditLog).filter(ours)) - before).toBe(steps);
    const plan = await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toBe("No changes: the server matches the spec.\n");
  });

  it("a second apply makes zero write requests (file audit device)", async () => {
    const entries0 = auditRequests(auditLog);
    const r = await cli(["bootstrap", "apply", "-f", specFile]);
    expect(r.code, r.stderr).toBe(0);
    const added = auditRequests(auditLog).slice(entries0.length);
    // the audit device did see the run: its reads are there
    expect(added.filter((e) => e.operation === "read" || e.operation === "list").length).toBeGreaterThan(5);
    expect(countWrites(added)).toBe(0);
  });

  it("reads back what it wrote, in the server's own terms", async () => {
    const role = await root.read<{ data: Record<string, unknown> }>("auth/kubernetes/role/eso-role");
    expect(role?.data).toMatchObject({
      bound_service_account_names: ["external-secrets"],
      bound_service_account_namespaces: ["external-secrets"],
      token_policies: ["my-app-read"],
      token_ttl: 3600,
      token_max_ttl: 14400,
      audience: "vault",
    });
    const cfg = await root.read<{ data: Record<string, unknown> }>("auth/kubernetes/config");
    expect(cfg?.data).toMatchObject({ kubernetes_host: kube.server, token_reviewer_jwt_set: true });
    expect(JSON.stringify(cfg)).not.toContain(reviewerToken);
  });

  it("shows drift behind its back field by field, and apply restores it", async () => {
    await root.write("auth/kubernetes/role/eso-role", { token_ttl: "2h", bound_service_account_names: ["*"] });
    await root.write("sys/policies/acl/my-app-read", { policy: 'path "secret/data/*" { capabilities = ["read"] }' });
    const r = await cli(["bootstrap", "plan", "-f", specFile, "--format", "json", "--detailed-exitcode"]);
    expect(r.code).toBe(2);
    const plan = JSON.parse(r.stdout) as { changes: { id: string; action: string; fields: { field: string }[] }[] };
    expect(plan.changes.map((c) => [c.id, c.action, c.fields.map((f) => f.field)])).toEqual([
      ["policy my-app-read", "update", ["policy"]],
      ["role kubernetes/eso-role", "update", ["bound_service_account_names", "token_ttl"]],
    ]);
    const text = await cli(["bootstrap", "plan", "-f", specFile]);
    expect(text.stdout).toContain('    bound_service_account_names: ["*"] -> ["external-secrets"]');
    expect(text.stdout).toContain("    token_ttl: 2h -> 1h");
    const apply = await cli(["bootstrap", "apply", "-f", specFile]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stdout).toContain("Apply complete: 2 step(s), 2 write request(s).");
    expect((await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"])).code).toBe(0);
  });

  it("verify passes on the applied spec and prints the matrix", async () => {
    const r = await cli(["bootstrap", "verify", "-f", specFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kubernetes\/my-app-dev\s+secret\/data\/dev\/my-app\s+own\s+read\s+read\s+ok/);
    expect(r.stdout).toMatch(
      /kubernetes\/my-app-dev\s+secret\/data\/production\/my-app\s+neighbour\s+deny\s+deny\s+ok/,
    );
    expect(r.stdout).toMatch(/kubernetes\/eso-role\s+sys\/mounts\s+neighbour\s+deny\s+deny\s+ok/);
    expect(r.stdout).toContain("verify passed");
  });

  it("verify fails on excess granted behind its back", async () => {
    await root.write("sys/policies/acl/my-app-dev-read", {
      policy: 'path "secret/data/*" { capabilities = ["read", "list"] }',
    });
    const r = await cli(["bootstrap", "verify", "-f", specFile, "--format", "json"]);
    expect(r.code).toBe(2);
    const report = JSON.parse(r.stdout) as { ok: boolean; rows: { role: string; path: string; status: string }[] };
    expect(report.ok).toBe(false);
    expect(report.rows).toContainEqual(
      expect.objectContaining({
        role: "kubernetes/my-app-dev",
        path: "secret/data/production/my-app",
        status: "excess",
      }),
    );
    expect((await cli(["bootstrap", "apply", "-f", specFile])).code).toBe(0);
    expect((await cli(["bootstrap", "verify", "-f", specFile])).code).toBe(0);
  });
});

describe("kubernetes login end to end", () => {
  const login = async (role: string, jwt: string): Promise<VaultClient> => {
    const res = await root.write<{ auth: { client_token: string } }>("auth/kubernetes/login", { role, jwt });
    return server.client(res.auth.client_token);
  };

  beforeAll(async () => {
    await root.write("secret/data/dev/my-app", { data: { db_password: "dev-pw", api_key: "dev-key" } });
    await root.write("secret/data/production/my-app", { data: { db_password: "prod-pw", api_key: "prod-key" } });
  });

  it("the right service account logs in and reads its own secret, not the other environment's", async () => {
    const app = await login("my-app-dev", await kube.createToken("dev", "my-app", { audience: "vault" }));
    try {
      const own = await app.read<{ data: { data: Record<string, string> } }>("secret/data/dev/my-app");
      expect(own?.data.data.db_password).toBe("dev-pw");
      const other = await app.read("secret/data/production/my-app").catch((e: unknown) => e);
      expect((other as VaultHttpError).status).toBe(403);
      const meta = await app.list("secret/metadata/dev").catch((e: unknown) => e);
      expect((meta as VaultHttpError).status).toBe(403);
    } finally {
      await app.close();
    }
  });

  it("a login after apply is in the spec's audit log, its JWT and token HMACed, never in clear", async () => {
    // the server's own HMAC of a value, with the device's salt
    const hmac = async (input: string) => {
      const h = await root.write<{ data?: { hash: string }; hash?: string }>("sys/audit-hash/file", { input });
      return h.data?.hash ?? h.hash ?? "";
    };
    type Entry = {
      type: string;
      request?: { id?: string; path?: string; data?: Record<string, unknown> };
      response?: { auth?: { client_token?: string; accessor?: string } };
    };
    const entries = () =>
      readFileSync(auditLog, "utf8")
        .split("\n")
        .filter((l) => l.includes("auth/kubernetes/login"))
        .map((l) => JSON.parse(l) as Entry);
    /** Logs in through `client`; returns the new token and the login's request and response entries. */
    const loginLogged = async (client: VaultClient) => {
      const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
      const res = await client.write<{ auth: { client_token: string; accessor: string } }>("auth/kubernetes/login", {
        role: "my-app-dev",
        jwt,
      });
      const jwtHash = await hmac(jwt);
      // the login's entries, found by the server's HMAC of its JWT; the response entry is written after the response
      // reached us: wait for it rather than sleep
      const deadline = Date.now() + 30_000;
      let request: Entry | undefined;
      let response: Entry | undefined;
      while (!response && Date.now() < deadline) {
        request = entries().find((e) => e.type === "request" && e.request?.data?.jwt === jwtHash);
        response = entries().find((e) => e.type === "response" && request && e.request?.id === request.request?.id);
        if (!response) await new Promise((r) => setTimeout(r, 100));
      }
      expect(request, "the login's request entry, its JWT HMACed with the device's salt").toBeDefined();
      const text = readFileSync(auditLog, "utf8");
      expect(text).not.toContain(jwt);
      expect(text).not.toContain(res.auth.client_token);
      return { jwt, auth: res.auth, logged: response?.response?.auth };
    };

    // a workload logs in with no token of its own: both servers log the HMAC of the token they handed out
    const anon = server.client("");
    const workload = await loginLogged(anon).finally(() => anon.close());
    expect(workload.logged?.client_token).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(workload.logged?.client_token).toBe(await hmac(workload.auth.client_token));
    expect(workload.logged?.accessor).toBe(await hmac(workload.auth.accessor));

    // the same login sent WITH a token (the root token here): OpenBao 2.6.2 logs the HMAC of the CALLER's token as the
    // response's auth.client_token. Its vault/audit_broker.go LogResponse puts the request's token into in.Auth for
    // the formatting, and a login's in.Auth is the very Auth of its response (vault/request_handling.go
    // handleLoginRequest: auth = resp.Auth). The accessor is the new token's. Vault 1.21 logs the new token.
    const sent = await loginLogged(root);
    expect(sent.logged?.accessor).toBe(await hmac(sent.auth.accessor));
    expect(sent.logged?.client_token).toBe(await hmac(openbao ? server.rootToken : sent.auth.client_token));
    expect(sent.logged?.client_token === (await hmac(sent.auth.client_token))).toBe(!openbao);
    for (const t of [workload.auth.client_token, sent.auth.client_token]) {
      await root.write("auth/token/revoke", { token: t });
    }
  });

  it("ESO's service account reads production through eso-role, and nothing in dev", async () => {
    const eso = await login(
      "eso-role",
      await kube.createToken("external-secrets", "external-secrets", { audience: "vault" }),
    );
    try {
      const prod = await eso.read<{ data: { data: Record<string, string> } }>("secret/data/production/my-app");
      expect(prod?.data.data.api_key).toBe("prod-key");
      expect(((await eso.read("secret/data/dev/my-app").catch((e: unknown) => e)) as VaultHttpError).status).toBe(403);
    } finally {
      await eso.close();
    }
  });
});

describe("bad input and faults", () => {
  it("a policy the server rejects fails apply naming the policy; a fixed spec converges", async () => {
    const bad = join(dir, "bad-policy.yaml");
    writeFileSync(
      bad,
      'version: 1\npolicies:\n  - name: broken-hcl\n    hcl: |\n      path "secret/data/x" {\n        capabilities = ["read"\n      }\n',
    );
    const r = await cli(["bootstrap", "apply", "-f", bad]);
    // an error, not drift: 1 (2 means drift only for plan/apply/verify; docs/bootstrap.md, CI/CD)
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: policy broken-hcl failed: 400 /m);
    expect(r.stderr).toContain("run apply again");
    writeFileSync(
      bad,
      'version: 1\npolicies:\n  - name: broken-hcl\n    hcl: |\n      path "secret/data/x" {\n        capabilities = ["read"]\n      }\n',
    );
    expect((await cli(["bootstrap", "apply", "-f", bad])).code).toBe(0);
  });

  it("audit devices the server's configuration does not declare: OpenBao plans a conflict giving the stanza", async () => {
    const other = join(dir, "other-audit.yaml");
    const otherLog = join(dir, "other.log");
    writeFileSync(
      other,
      `version: 1\naudit:\n  - path: other\n    type: file\n    options: { file_path: ${otherLog} }\n`,
    );
    const missing = await cli(["bootstrap", "plan", "-f", other, "--detailed-exitcode"]);
    // the spec's own device with another file_path
    const moved = join(dir, "moved-audit.yaml");
    writeFileSync(
      moved,
      [
        "version: 1",
        "audit:",
        "  - path: file",
        "    type: file",
        "    description: audit log on the server's audit volume",
        `    options: { file_path: ${otherLog}, mode: "0600" }`,
        "",
      ].join("\n"),
    );
    const differs = await cli(["bootstrap", "plan", "-f", moved, "--detailed-exitcode"]);
    if (openbao) {
      expect(missing.code, missing.stdout).toBe(1);
      expect(missing.stdout + missing.stderr).toContain(
        "audit other/ is not enabled, and this server refuses to enable audit devices through its API",
      );
      expect(missing.stdout + missing.stderr).toContain('audit "file" "other" {');
      expect(missing.stdout + missing.stderr).toContain(`file_path = "${otherLog}"`);
      expect(differs.code, differs.stdout).toBe(1);
      expect(differs.stdout + differs.stderr).toContain("audit file/ differs from the spec (options)");
      expect(differs.stdout + differs.stderr).toContain("change its audit stanza to:");
      expect(differs.stdout).toContain("No changes sealkeeper can make: 1 conflict(s) above need the operator.");
      expect(differs.stdout).not.toContain("the server matches the spec");
    } else {
      expect(missing.code, missing.stderr).toBe(2);
      expect(missing.stdout).toContain("+ create audit other/");
      expect(differs.code, differs.stderr).toBe(2);
      expect(differs.stdout).toContain("~ update audit file/");
    }
    expect(existsSync(otherLog)).toBe(false);
  });

  it("--strict refuses to apply while lint has findings, naming file:line and rule", async () => {
    const globby = join(dir, "globby.yaml");
    writeFileSync(
      globby,
      [
        "version: 1",
        "auth:",
        "  - path: kubernetes",
        "    type: kubernetes",
        "    roles:",
        "      - name: greedy",
        "        bound_service_account_names: [greedy]",
        "        bound_service_account_namespaces: [greedy]",
        "        token_policies: [greedy]",
        "        token_ttl: 1h",
        "        token_max_ttl: 4h",
        "policies:",
        "  - name: greedy",
        "    hcl: |",
        '      path "secret/data/*" { capabilities = ["read"] }',
        "",
      ].join("\n"),
    );
    const r = await cli(["bootstrap", "apply", "-f", globby, "--strict"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${globby}:15: broad-glob:`);
    expect(r.stderr).toContain("--strict");
    expect(await root.read("auth/kubernetes/role/greedy")).toBeUndefined();
  });

  it("a schema error names file:line and the key, and sends nothing", async () => {
    const bad = join(dir, "typo.yaml");
    writeFileSync(bad, "version: 1\npolicies:\n  - name: x\n    rulez: []\n");
    const before = auditRequests(auditLog).length;
    const r = await cli(["bootstrap", "plan", "-f", bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${bad}:4: policies[0].rulez: unknown key\n`);
    expect(auditRequests(auditLog).length).toBe(before);
  });

  it("purge deletes what the spec does not name, never root or default", async () => {
    await root.write("sys/policies/acl/stray", { policy: 'path "secret/data/stray" { capabilities = ["read"] }' });
    await root.write("auth/kubernetes/role/stray", {
      bound_service_account_names: ["s"],
      bound_service_account_namespaces: ["s"],
    });
    const plan = await cli(["bootstrap", "plan", "-f", specFile, "--purge", "--format", "json"]);
    const ids = (JSON.parse(plan.stdout) as { changes: { id: string; action: string }[] }).changes
      .filter((c) => c.action === "delete")
      .map((c) => c.id);
    expect(ids).toContain("policy stray");
    expect(ids).toContain("role kubernetes/stray");
    expect(ids).toContain("policy broken-hcl");
    expect(ids).not.toContain("policy default");
    expect(ids).not.toContain("policy root");
    expect(ids.some((id) => id.startsWith("auth token"))).toBe(false);
    expect((await cli(["bootstrap", "apply", "-f", specFile, "--purge"])).code).toBe(0);
    expect(await root.read("sys/policies/acl/stray")).toBeUndefined();
    expect(await root.read("sys/policies/acl/default")).toBeDefined();
  });
});
