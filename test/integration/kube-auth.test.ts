/**
 * Kubernetes auth against a real Kubernetes control plane (etcd + kube-apiserver v1.37.2 on loopback,
 * test/harness/kube.ts), on the project's server (Vault 1.21 or OpenBao 2.6, per vitest project):
 * `bootstrap apply` of the reference spec points auth/kubernetes at the API server (its host, its CA, a reviewer
 * service account bound to system:auth-delegator); tokens minted by the API server itself (`kubectl create token`)
 * log in with exactly the spec's policies, and the wrong namespace, service account, audience, an expired token, a
 * reviewer without system:auth-delegator and a wrong issuer are each refused, with `bootstrap verify` and lint naming
 * the cause where they can.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultHttpError } from "../../src/errors.js";
import type { VaultClient } from "../../src/vault/client.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { jwtClaims, KUBE_ISSUER, type KubeCluster, kubeIdentities, startKubeCluster } from "../harness/kube.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { withoutAudit, writeReferenceSpec } from "./bootstrap-helpers.js";

let kube: KubeCluster;
let server: DevServer;
let root: VaultClient;
let dir: string;
let specFile: string;
let env: Record<string, string>;

const cli = (args: string[]) => runSealkeeper(args, { env });

/** The identities the tests use: namespaces, service accounts, and the reviewer's system:auth-delegator binding. */
const IDENTITIES = kubeIdentities([
  ["dev", "my-app"],
  ["dev", "other-app"],
  ["production", "my-app"],
  ["external-secrets", "external-secrets"],
  ["vault", "no-delegator"],
]);

beforeAll(async () => {
  kube = await startKubeCluster();
  process.stderr.write(
    `kube-auth: etcd healthy in ${kube.startup.etcdMs} ms, kube-apiserver ready in ${kube.startup.apiserverMs} ms; RSS ${JSON.stringify(kube.rssKiB())} KiB\n`,
  );
  await kube.kubectlOk(["apply", "-f", "-"], { stdin: IDENTITIES });
  const reviewerToken = await kube.createToken("vault", "vault-auth", { duration: "4h" });
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-kube-auth-"));
  specFile = writeReferenceSpec(dir, { host: kube.server, caFile: kube.caFile, reviewerToken });
  // no audit device here (bootstrap.test.ts proves those): the spec's kubernetes side is what is under test
  writeFileSync(specFile, withoutAudit(readFileSync(specFile, "utf8")));
  server = await startDevServer();
  root = server.client();
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  await root.write("secret/data/dev/my-app", { data: { db_password: "dev-pw", api_key: "dev-key" } });
  await root.write("secret/data/production/my-app", { data: { db_password: "prod-pw", api_key: "prod-key" } });
}, 300_000);

afterAll(async () => {
  await root?.close();
  await server?.stop();
  await kube?.stop();
});

interface Login {
  auth: { client_token: string; policies: string[]; token_policies: string[]; metadata: Record<string, string> };
}

const login = (role: string, jwt: string, mount = "kubernetes") =>
  root.write<Login>(`auth/${mount}/login`, { role, jwt });

/** The login is refused with 403; returns the server's error messages (for the assertions on the cause). */
async function refused(role: string, jwt: string, mount = "kubernetes"): Promise<string> {
  const err = await login(role, jwt, mount).catch((e: unknown) => e);
  expect(err, "the login must be refused").toBeInstanceOf(VaultHttpError);
  const e = err as VaultHttpError;
  expect(e.status, e.message).toBe(403);
  return e.errors.join("; ");
}

describe("bootstrap apply against the real API server", () => {
  it("apply configures auth/kubernetes with the API server's host and CA and a reviewer token", async () => {
    const r = await cli(["bootstrap", "apply", "-f", specFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Apply complete: \d+ step\(s\)/);
    const cfg = await root.read<{ data: Record<string, unknown> }>("auth/kubernetes/config");
    expect(cfg?.data).toMatchObject({ kubernetes_host: kube.server, token_reviewer_jwt_set: true });
    expect(String(cfg?.data.kubernetes_ca_cert).trim()).toBe(readFileSync(kube.caFile, "utf8").trim());
    expect((await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"])).code).toBe(0);
  });

  it("verify checks the reviewer against the API server and passes", async () => {
    const r = await cli(["bootstrap", "verify", "-f", specFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/kubernetes\/\s+reviewer\s+ok\s+system:serviceaccount:vault:vault-auth may review tokens/);
    expect(r.stdout).toContain("verify passed");
  });
});

describe("tokens minted by the API server", () => {
  it("dev/my-app with audience vault logs in to my-app-dev with exactly [default, my-app-dev-read]", async () => {
    const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
    const claims = jwtClaims(jwt);
    expect(claims.iss).toBe(KUBE_ISSUER);
    expect(claims.aud).toEqual(["vault"]);
    expect(claims.sub).toBe("system:serviceaccount:dev:my-app");
    const res = await login("my-app-dev", jwt);
    expect([...res.auth.policies].sort()).toEqual(["default", "my-app-dev-read"]);
    expect(res.auth.token_policies.sort()).toEqual(["default", "my-app-dev-read"]);
    expect(res.auth.metadata).toMatchObject({ service_account_namespace: "dev", service_account_name: "my-app" });
    const app = server.client(res.auth.client_token);
    try {
      const own = await app.read<{ data: { data: Record<string, string> } }>("secret/data/dev/my-app");
      expect(own?.data.data.db_password).toBe("dev-pw");
      const other = await app.read("secret/data/production/my-app").catch((e: unknown) => e);
      expect((other as VaultHttpError).status).toBe(403);
    } finally {
      await app.write("auth/token/revoke-self", {});
      await app.close();
    }
  });

  it("production/my-app logs in to my-app-production, ESO's account to eso-role, each with its own policies", async () => {
    const prod = await login(
      "my-app-production",
      await kube.createToken("production", "my-app", { audience: "vault" }),
    );
    expect([...prod.auth.policies].sort()).toEqual(["default", "my-app-production-read"]);
    const eso = await login(
      "eso-role",
      await kube.createToken("external-secrets", "external-secrets", { audience: "vault" }),
    );
    expect([...eso.auth.policies].sort()).toEqual(["default", "my-app-read"]);
  });

  it("refuses the wrong namespace and the wrong service account", async () => {
    const otherNs = await refused("my-app-dev", await kube.createToken("production", "my-app", { audience: "vault" }));
    expect(otherNs).toMatch(/namespace not authorized/);
    const otherSa = await refused("my-app-dev", await kube.createToken("dev", "other-app", { audience: "vault" }));
    expect(otherSa).toMatch(/service account name not authorized/);
  });

  it("refuses a token minted for another audience, and one with the API server's default audience", async () => {
    const other = await kube.createToken("dev", "my-app", { audience: "other" });
    expect(jwtClaims(other).aud).toEqual(["other"]);
    expect(await refused("my-app-dev", other)).toMatch(/aud|audience/i);
    const dflt = await kube.createToken("dev", "my-app");
    expect(jwtClaims(dflt).aud).toEqual([KUBE_ISSUER]);
    expect(await refused("my-app-dev", dflt)).toMatch(/aud|audience/i);
  });

  it("refuses an expired token (the same claims, signed by the cluster's key, moved two hours back)", async () => {
    const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
    // control: the re-signed token with unchanged times is accepted, so only its times differ below
    const same = await login("my-app-dev", kube.reissue(jwt, 0));
    expect([...same.auth.policies].sort()).toEqual(["default", "my-app-dev-read"]);
    const expired = kube.reissue(jwt, -2 * 3600);
    expect(jwtClaims(expired).exp as number).toBeLessThan(Date.now() / 1000 - 3000);
    // the API server's own TokenReview refuses it (proof that the refusal is the cluster's, not a local check)
    const review = await kube.api("POST", "/apis/authentication.k8s.io/v1/tokenreviews", {
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token: expired } },
    });
    const status = (JSON.parse(review.body) as { status: { authenticated?: boolean; error?: string } }).status;
    expect(status.authenticated ?? false).toBe(false);
    expect(await refused("my-app-dev", expired)).toMatch(/expired|not authenticated|permission denied|invalid/i);
  });
});

/** A kubernetes role for dev/my-app with its own policy, for the side specs. */
const ROLE = [
  "    roles:",
  "      - name: my-app-dev",
  "        bound_service_account_names: [my-app]",
  "        bound_service_account_namespaces: [dev]",
  "        audience: vault",
  "        token_policies: [side-read]",
  "        token_ttl: 1h",
  "        token_max_ttl: 4h",
  "policies:",
  "  - name: side-read",
  "    hcl: |",
  '      path "secret/data/dev/my-app" {',
  '        capabilities = ["read"]',
  "      }",
];

describe("misconfigurations sealkeeper names", () => {
  const sideSpec = (name: string, mount: string, config: string[]): string => {
    const file = join(dir, `${name}.yaml`);
    copyFileSync(kube.caFile, join(dir, `${name}-ca.pem`));
    writeFileSync(
      file,
      [
        "version: 1",
        "auth:",
        `  - path: ${mount}`,
        "    type: kubernetes",
        "    config:",
        `      kubernetes_host: ${kube.server}`,
        `      kubernetes_ca_cert_file: ${name}-ca.pem`,
        "      disable_local_ca_jwt: true",
        ...config.map((l) => `      ${l}`),
        ...ROLE,
        "",
      ].join("\n"),
    );
    return file;
  };

  it("a reviewer without system:auth-delegator: logins are refused and verify names the missing binding", async () => {
    writeFileSync(join(dir, "weak.jwt"), `${await kube.createToken("vault", "no-delegator", { duration: "4h" })}\n`, {
      mode: 0o600,
    });
    const spec = sideSpec("weak", "kubernetes-weak", ["token_reviewer_jwt_file: weak.jwt"]);
    expect((await cli(["bootstrap", "apply", "-f", spec])).code).toBe(0);
    const msg = await refused(
      "my-app-dev",
      await kube.createToken("dev", "my-app", { audience: "vault" }),
      "kubernetes-weak",
    ).catch((e: unknown) => String(e));
    expect(msg).toMatch(/forbidden|permission denied/i);
    const r = await cli(["bootstrap", "verify", "-f", spec]);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toContain(
      "system:serviceaccount:vault:no-delegator may not create tokenreviews (403): bind its service account to the ClusterRole system:auth-delegator",
    );
    expect(r.stdout).toContain("verify FAILED: kubernetes-weak/ reviewer:");
  });

  it("issuer validation with an issuer that is not the cluster's: logins are refused, verify names both issuers", async () => {
    writeFileSync(join(dir, "iss.jwt"), `${await kube.createToken("vault", "vault-auth", { duration: "4h" })}\n`, {
      mode: 0o600,
    });
    const wrong = "https://kubernetes.other-cluster.example";
    const spec = sideSpec("iss", "kubernetes-iss", [
      "token_reviewer_jwt_file: iss.jwt",
      "disable_iss_validation: false",
      `issuer: ${wrong}`,
    ]);
    expect((await cli(["bootstrap", "apply", "-f", spec])).code).toBe(0);
    const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
    expect(await refused("my-app-dev", jwt, "kubernetes-iss")).toMatch(/iss/i);
    const r = await cli(["bootstrap", "verify", "-f", spec]);
    expect(r.code, r.stdout).toBe(2);
    expect(r.stdout).toContain(
      `expects "${wrong}", but the cluster issues its tokens as "${KUBE_ISSUER}": every login is refused`,
    );
    // the fix verify names: the cluster's issuer; then the same token logs in and verify passes
    const fixed = sideSpec("iss", "kubernetes-iss", [
      "token_reviewer_jwt_file: iss.jwt",
      "disable_iss_validation: false",
      `issuer: ${KUBE_ISSUER}`,
    ]);
    expect((await cli(["bootstrap", "apply", "-f", fixed])).code).toBe(0);
    const ok = await login("my-app-dev", jwt, "kubernetes-iss");
    expect([...ok.auth.policies].sort()).toEqual(["default", "side-read"]);
    const v = await cli(["bootstrap", "verify", "-f", fixed]);
    expect(v.code, v.stdout).toBe(0);
    expect(v.stdout).toMatch(/kubernetes-iss\/\s+issuer\s+ok\s+the cluster issues its tokens as/);
  });

  it("issuer validation on and no issuer set: the server accepts the cluster's tokens (measured, not assumed)", async () => {
    // Vault's docs name kubernetes/serviceaccount as the default issuer; the servers' behaviour is what counts here
    const spec = sideSpec("iss0", "kubernetes-iss0", [
      "token_reviewer_jwt_file: iss.jwt",
      "disable_iss_validation: false",
    ]);
    expect((await cli(["bootstrap", "apply", "-f", spec])).code).toBe(0);
    const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
    const ok = await login("my-app-dev", jwt, "kubernetes-iss0");
    expect([...ok.auth.policies].sort()).toEqual(["default", "side-read"]);
  });

  it("a CA that is not the cluster's: verify names it", async () => {
    const spec = sideSpec("ca", "kubernetes-ca", ["token_reviewer_jwt_file: iss.jwt"]);
    // the example's CA (another cluster's) instead of this one's
    copyFileSync("examples/reference/kubernetes-ca.pem", join(dir, "ca-ca.pem"));
    const r = await cli(["bootstrap", "verify", "-f", spec, "--format", "json"]);
    expect(r.code, r.stdout).toBe(2);
    const report = JSON.parse(r.stdout) as { kubernetes: { auth: string; status: string; message: string }[] };
    expect(report.kubernetes).toContainEqual(
      expect.objectContaining({
        auth: "kubernetes-ca/",
        status: "fail",
        message: expect.stringMatching(/CA is not this cluster's/),
      }),
    );
  });
});

describe("--kubeconfig: the cluster fills in its own host, CA and issuer", () => {
  it("plan shows the kubeconfig's server, CA and the discovered issuer; apply writes them; its tokens log in", async () => {
    copyFileSync("examples/reference/kubernetes-ca.pem", join(dir, "placeholder-ca.pem"));
    const spec = join(dir, "from-kubeconfig.yaml");
    writeFileSync(
      spec,
      [
        "version: 1",
        "auth:",
        "  - path: kubernetes-kc",
        "    type: kubernetes",
        "    config:",
        "      kubernetes_host: https://kubernetes.default.svc",
        "      kubernetes_ca_cert_file: placeholder-ca.pem",
        "      token_reviewer_jwt_file: iss.jwt",
        "      disable_local_ca_jwt: true",
        "      disable_iss_validation: false",
        ...ROLE,
        "",
      ].join("\n"),
    );
    writeFileSync(join(dir, "iss.jwt"), `${await kube.createToken("vault", "vault-auth", { duration: "4h" })}\n`, {
      mode: 0o600,
    });
    const plan = await cli(["bootstrap", "plan", "-f", spec, "--kubeconfig", kube.kubeconfig]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stderr).toContain(
      `auth kubernetes-kc/: kubernetes_host ${kube.server} and its CA, issuer ${KUBE_ISSUER} (OIDC discovery) from kubeconfig context sealkeeper-test`,
    );
    expect(plan.stdout).toContain(`kubernetes_host: "${kube.server}"`);
    expect(plan.stdout).toContain(`issuer: "${KUBE_ISSUER}"`);
    expect(plan.stdout).not.toContain('"https://kubernetes.default.svc"');
    const wrongCtx = await cli(["bootstrap", "plan", "-f", spec, "--kubeconfig", kube.kubeconfig, "--context", "nope"]);
    expect(wrongCtx.code).toBe(1);
    expect(wrongCtx.stderr).toContain("has no context nope");
    expect((await cli(["bootstrap", "apply", "-f", spec, "--kubeconfig", kube.kubeconfig])).code).toBe(0);
    const cfg = await root.read<{ data: Record<string, unknown> }>("auth/kubernetes-kc/config");
    expect(cfg?.data).toMatchObject({
      kubernetes_host: kube.server,
      issuer: KUBE_ISSUER,
      disable_iss_validation: false,
    });
    expect(String(cfg?.data.kubernetes_ca_cert).trim()).toBe(readFileSync(kube.caFile, "utf8").trim());
    const ok = await login(
      "my-app-dev",
      await kube.createToken("dev", "my-app", { audience: "vault" }),
      "kubernetes-kc",
    );
    expect([...ok.auth.policies].sort()).toEqual(["default", "side-read"]);
    const v = await cli(["bootstrap", "verify", "-f", spec, "--kubeconfig", kube.kubeconfig]);
    expect(v.code, v.stdout).toBe(0);
  });
});

describe("the control plane's footprint", () => {
  it("etcd and kube-apiserver are running, their start-up and memory measured", () => {
    const rss = kube.rssKiB();
    process.stderr.write(
      `kube-auth: RSS after the tests: etcd ${Math.round(rss.etcd / 1024)} MiB, kube-apiserver ${Math.round(rss.apiserver / 1024)} MiB\n`,
    );
    expect(rss.etcd).toBeGreaterThan(0);
    expect(rss.apiserver).toBeGreaterThan(0);
  });
});
