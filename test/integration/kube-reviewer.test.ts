/**
 * `bootstrap plan|apply --create-reviewer` against a real kube-apiserver v1.37.2 (test/harness/kube.ts) and the
 * project's server (Vault 1.21 or OpenBao 2.6, per vitest project): plan lists the reviewer's service account, its
 * system:auth-delegator binding and the token and creates nothing; apply creates them and sets the token as
 * token_reviewer_jwt; a token from `kubectl create token` then logs in (the server's TokenReview goes through the
 * reviewer's token: disable_local_ca_jwt leaves it no other); a rerun is a no-op; --rotate-reviewer-token mints a new
 * one; --in-cluster from a fake service-account directory (a token of an account holding only the RBAC rules
 * docs/bootstrap.md names) does the same for a second reviewer; the flag errors are clear.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VaultClient } from "../../src/vault/client.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { KUBE_ISSUER, type KubeCluster, startKubeCluster } from "../harness/kube.js";
import { type CliRun, runSealkeeper } from "../harness/run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "sealkeeper-kube-reviewer-"));
const specFile = join(dir, "spec.yaml");
let kube: KubeCluster;
let server: DevServer;
let root: VaultClient;

/** Every run must keep every JWT (the minted reviewer token above all) off its output. */
async function cli(args: string[], extraEnv: Record<string, string> = {}): Promise<CliRun> {
  const env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken, ...extraEnv };
  const r = await runSealkeeper(args, { env });
  expect(`${r.stdout}\n${r.stderr}`, "no JWT in the output").not.toMatch(/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/);
  return r;
}

/** The rules --create-reviewer needs, as docs/bootstrap.md lists them, for the in-cluster identity vault/sealkeeper. */
const IN_CLUSTER_RBAC = [
  "apiVersion: v1\nkind: Namespace\nmetadata: { name: dev }\n",
  "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: my-app, namespace: dev }\n",
  "apiVersion: v1\nkind: Namespace\nmetadata: { name: vault }\n",
  "apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: sealkeeper, namespace: vault }\n",
  [
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: ClusterRole",
    "metadata: { name: sealkeeper-create-reviewer }",
    "rules:",
    '  - { apiGroups: [""], resources: [serviceaccounts], verbs: [get, create] }',
    '  - { apiGroups: [""], resources: [serviceaccounts/token], verbs: [create] }',
    '  - { apiGroups: [""], resources: [namespaces], verbs: [get] }',
    "  - { apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [get, create] }",
    '  - { apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: ["system:auth-delegator"] }',
    "",
  ].join("\n"),
  [
    "apiVersion: rbac.authorization.k8s.io/v1",
    "kind: ClusterRoleBinding",
    "metadata: { name: sealkeeper-create-reviewer }",
    "roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: sealkeeper-create-reviewer }",
    "subjects: [{ kind: ServiceAccount, name: sealkeeper, namespace: vault }]",
    "",
  ].join("\n"),
].join("---\n");

/** A spec with only placeholders for the cluster: --kubeconfig / --in-cluster fill host, CA and issuer. */
const SPEC = [
  "version: 1",
  "auth:",
  "  - path: kubernetes",
  "    type: kubernetes",
  "    config:",
  "      kubernetes_host: https://kubernetes.default.svc",
  "      disable_local_ca_jwt: true",
  "      disable_iss_validation: false",
  "    roles:",
  "      - name: my-app-dev",
  "        bound_service_account_names: [my-app]",
  "        bound_service_account_namespaces: [dev]",
  "        audience: vault",
  "        token_policies: [my-app-dev-read]",
  "        token_ttl: 1h",
  "        token_max_ttl: 4h",
  "policies:",
  "  - name: my-app-dev-read",
  "    hcl: |",
  '      path "secret/data/dev/my-app" {',
  '        capabilities = ["read"]',
  "      }",
  "",
].join("\n");

beforeAll(async () => {
  kube = await startKubeCluster();
  await kube.kubectlOk(["apply", "-f", "-"], { stdin: IN_CLUSTER_RBAC });
  writeFileSync(specFile, SPEC);
  server = await startDevServer();
  root = server.client();
}, 300_000);

afterAll(async () => {
  await root?.close();
  await server?.stop();
  await kube?.stop();
  // the fake service-account directories hold (test) tokens
  rmSync(dir, { recursive: true, force: true });
});

const absent = async (args: string[]) => {
  const r = await kube.kubectl(["get", ...args]);
  expect(r.code, r.stdout).not.toBe(0);
  expect(r.stderr).toMatch(/NotFound/);
};

/** dev/my-app's own token (minted by the API server) logs in with exactly its role's policies. */
async function appLogsIn(): Promise<void> {
  const jwt = await kube.createToken("dev", "my-app", { audience: "vault" });
  const res = await root.write<{ auth: { token_policies: string[]; client_token: string } }>("auth/kubernetes/login", {
    role: "my-app-dev",
    jwt,
  });
  expect([...res.auth.token_policies].sort()).toEqual(["default", "my-app-dev-read"]);
  const app = server.client(res.auth.client_token);
  await app.write("auth/token/revoke-self", {});
  await app.close();
}

const kc = () => ["--kubeconfig", kube.kubeconfig];

describe("--create-reviewer with --kubeconfig", () => {
  it("plan lists the service account, the binding and the token, and creates nothing", async () => {
    const r = await cli(["bootstrap", "plan", "-f", specFile, ...kc(), "--create-reviewer", "--detailed-exitcode"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toContain(`Kubernetes (kubeconfig context sealkeeper-test, ${kube.server}), --create-reviewer:`);
    expect(r.stdout).toContain("+ create serviceaccount kube-system/sealkeeper-token-reviewer");
    expect(r.stdout).toContain(
      "+ create clusterrolebinding sealkeeper-token-reviewer-auth-delegator: ClusterRole system:auth-delegator to serviceaccount kube-system/sealkeeper-token-reviewer",
    );
    expect(r.stdout).toMatch(
      /\+ create token for serviceaccount kube-system\/sealkeeper-token-reviewer \(TokenRequest, expires in 365d, about \d{4}-\d\d-\d\dT[\d:]+Z\) as token_reviewer_jwt of auth kubernetes\/: the service account is new/,
    );
    expect(r.stdout).toContain("token_reviewer_jwt: (sensitive)");
    expect(r.stdout).toContain(`issuer: "${KUBE_ISSUER}"`);
    await absent(["serviceaccount", "sealkeeper-token-reviewer", "-n", "kube-system"]);
    await absent(["clusterrolebinding", "sealkeeper-token-reviewer-auth-delegator"]);
    expect(await root.read("auth/kubernetes/config").catch(() => undefined)).toBeUndefined();

    const json = await cli(["bootstrap", "plan", "-f", specFile, ...kc(), "--create-reviewer", "--format", "json"]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).kubernetes).toMatchObject({
      serviceAccount: { namespace: "kube-system", name: "sealkeeper-token-reviewer", action: "create" },
      clusterRoleBinding: { name: "sealkeeper-token-reviewer-auth-delegator", action: "create" },
      token: { action: "create", expirationSeconds: 31_536_000, for: ["kubernetes"] },
    });
  });

  it("apply creates them and sets the token; a token from `kubectl create token` then logs in", async () => {
    const r = await cli(["bootstrap", "apply", "-f", specFile, ...kc(), "--create-reviewer"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("created serviceaccount kube-system/sealkeeper-token-reviewer");
    expect(r.stderr).toContain("created clusterrolebinding sealkeeper-token-reviewer-auth-delegator");
    const expiry =
      /minted a token for serviceaccount kube-system\/sealkeeper-token-reviewer \(TokenRequest\), expires (\S+)/.exec(
        r.stderr,
      );
    expect(expiry, r.stderr).not.toBeNull();
    // a year, as asked (the API server did not shorten it)
    const days = (Date.parse(expiry![1]!) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364);
    expect(r.stderr).not.toContain("shortened");
    const sa = JSON.parse(
      await kube.kubectlOk(["get", "serviceaccount", "sealkeeper-token-reviewer", "-n", "kube-system", "-o", "json"]),
    );
    expect(sa.metadata.labels).toEqual({ "app.kubernetes.io/managed-by": "sealkeeper" });
    const crb = JSON.parse(
      await kube.kubectlOk(["get", "clusterrolebinding", "sealkeeper-token-reviewer-auth-delegator", "-o", "json"]),
    );
    expect(crb.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "ClusterRole",
      name: "system:auth-delegator",
    });
    expect(crb.subjects).toEqual([
      { kind: "ServiceAccount", name: "sealkeeper-token-reviewer", namespace: "kube-system" },
    ]);
    const cfg = await root.read<{ data: Record<string, unknown> }>("auth/kubernetes/config");
    expect(cfg?.data).toMatchObject({
      kubernetes_host: kube.server,
      token_reviewer_jwt_set: true,
      issuer: KUBE_ISSUER,
    });
    await appLogsIn();
    // the reviewer's rights are what makes that work: the API server says it may create tokenreviews
    const review = await kube.kubectlOk([
      "auth",
      "can-i",
      "create",
      "tokenreviews.authentication.k8s.io",
      "--as=system:serviceaccount:kube-system:sealkeeper-token-reviewer",
    ]);
    expect(review.trim()).toBe("yes");
  });

  it("a rerun is a no-op: plan --detailed-exitcode exits 0 and apply mints nothing", async () => {
    const plan = await cli(["bootstrap", "plan", "-f", specFile, ...kc(), "--create-reviewer", "--detailed-exitcode"]);
    expect(plan.code, plan.stdout + plan.stderr).toBe(0);
    expect(plan.stdout).toContain("= serviceaccount kube-system/sealkeeper-token-reviewer exists");
    expect(plan.stdout).toContain("= clusterrolebinding sealkeeper-token-reviewer-auth-delegator exists");
    expect(plan.stdout).toContain("= auth kubernetes/ keeps the reviewer token it has");
    expect(plan.stdout).toContain("Kubernetes: no changes.");
    expect(plan.stdout).toContain("No changes: the server matches the spec.");
    const apply = await cli(["bootstrap", "apply", "-f", specFile, ...kc(), "--create-reviewer"]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stderr).not.toMatch(/created|minted/);
    await appLogsIn();
    // verify cannot read the reviewer token back: it says so, and passes on what it can check
    const v = await cli(["bootstrap", "verify", "-f", specFile, ...kc()]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/kubernetes\/\s+reviewer\s+skipped\s+no token_reviewer_jwt in the spec: not checked/);
  });

  it("--rotate-reviewer-token: plan shows a new token, apply mints it, logins still work", async () => {
    const args = [
      "-f",
      specFile,
      ...kc(),
      "--create-reviewer",
      "--rotate-reviewer-token",
      "--reviewer-token-ttl",
      "48h",
    ];
    const plan = await cli(["bootstrap", "plan", ...args, "--detailed-exitcode"]);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stdout).toContain("expires in 2d");
    expect(plan.stdout).toContain("token_reviewer_jwt: (set) -> (sensitive)");
    const apply = await cli(["bootstrap", "apply", ...args]);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stderr).toMatch(/minted a token for serviceaccount kube-system\/sealkeeper-token-reviewer/);
    expect(apply.stderr).not.toContain("created");
    await appLogsIn();
    // --format json: the cluster's side, with the expiry the API server gave
    const json = await cli(["bootstrap", "apply", ...args, "--format", "json"]);
    expect(json.code, json.stderr).toBe(0);
    const k8s = JSON.parse(json.stdout).kubernetes;
    expect(k8s).toMatchObject({
      serviceAccount: { action: "exists" },
      token: { action: "create", for: ["kubernetes"] },
    });
    expect(Date.parse(k8s.token.expiresAt) - Date.now()).toBeGreaterThan(47 * 3600_000);
    await appLogsIn();
    expect(
      (await cli(["bootstrap", "plan", "-f", specFile, ...kc(), "--create-reviewer", "--detailed-exitcode"])).code,
    ).toBe(0);
  });

  it("a binding of that name that binds something else is refused, not overwritten", async () => {
    await kube.kubectlOk([
      "create",
      "clusterrolebinding",
      "clash-auth-delegator",
      "--clusterrole=view",
      "--serviceaccount=kube-system:clash",
    ]);
    const r = await cli([
      "bootstrap",
      "apply",
      "-f",
      specFile,
      ...kc(),
      "--create-reviewer",
      "--reviewer-name",
      "clash",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "--create-reviewer: clusterrolebinding clash-auth-delegator exists but does not bind the ClusterRole system:auth-delegator to serviceaccount kube-system/clash (it binds ClusterRole view)",
    );
    await absent(["serviceaccount", "clash", "-n", "kube-system"]);
    const crb = JSON.parse(await kube.kubectlOk(["get", "clusterrolebinding", "clash-auth-delegator", "-o", "json"]));
    expect(crb.roleRef.name).toBe("view");
  });
});

describe("--in-cluster", () => {
  /** A service-account directory as a pod has it, for `namespace/name`'s token, pointing at the loopback API server. */
  async function podEnv(namespace: string, name: string): Promise<Record<string, string>> {
    const sa = mkdtempSync(join(dir, `sa-${name}-`));
    writeFileSync(join(sa, "token"), await kube.createToken(namespace, name), { mode: 0o600 });
    writeFileSync(join(sa, "ca.crt"), readFileSync(kube.caFile, "utf8"));
    writeFileSync(join(sa, "namespace"), namespace);
    const port = new URL(kube.server).port;
    return { KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: port, SEALKEEPER_SERVICEACCOUNT_DIR: sa };
  }

  it("a pod's service account with the documented rules creates its own reviewer; logins work; a rerun is a no-op", async () => {
    const pod = await podEnv("vault", "sealkeeper");
    const args = [
      "-f",
      specFile,
      "--in-cluster",
      "--create-reviewer",
      "--reviewer-namespace",
      "vault",
      "--reviewer-name",
      "vault-reviewer",
    ];
    const plan = await cli(["bootstrap", "plan", ...args, "--detailed-exitcode"], pod);
    expect(plan.code, plan.stderr).toBe(2);
    expect(plan.stderr).toContain(
      `auth kubernetes/: kubernetes_host ${kube.server} and its CA, issuer ${KUBE_ISSUER} (OIDC discovery) from the pod's service account (in-cluster)`,
    );
    expect(plan.stdout).toContain("+ create serviceaccount vault/vault-reviewer");
    expect(plan.stdout).toContain("+ create clusterrolebinding vault-reviewer-auth-delegator");
    await absent(["serviceaccount", "vault-reviewer", "-n", "vault"]);
    const apply = await cli(["bootstrap", "apply", ...args], pod);
    expect(apply.code, apply.stderr).toBe(0);
    expect(apply.stderr).toContain("created serviceaccount vault/vault-reviewer");
    expect(apply.stderr).toContain("minted a token for serviceaccount vault/vault-reviewer");
    await kube.kubectlOk(["get", "clusterrolebinding", "vault-reviewer-auth-delegator"]);
    await appLogsIn();
    expect((await cli(["bootstrap", "plan", ...args, "--detailed-exitcode"], pod)).code).toBe(0);
  });

  it("a service account without those rules: a clear error naming the rules, nothing created", async () => {
    const pod = await podEnv("dev", "my-app");
    const r = await cli(
      ["bootstrap", "plan", "-f", specFile, "--in-cluster", "--create-reviewer", "--reviewer-name", "nope"],
      pod,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--create-reviewer: GET serviceaccount kube-system/nope answered 403:");
    expect(r.stderr).toMatch(/system:serviceaccount:dev:my-app.*cannot get resource "serviceaccounts"/);
    expect(r.stderr).toContain("bind on the ClusterRole system:auth-delegator");
  });

  it("missing service-account files, and the flag combinations that make no sense, are clear errors", async () => {
    const empty = mkdtempSync(join(dir, "sa-empty-"));
    const port = new URL(kube.server).port;
    const noFiles = {
      KUBERNETES_SERVICE_HOST: "127.0.0.1",
      KUBERNETES_SERVICE_PORT: port,
      SEALKEEPER_SERVICEACCOUNT_DIR: empty,
    };
    const cases: [string[], Record<string, string>, string][] = [
      [
        ["--in-cluster"],
        noFiles,
        `--in-cluster: cannot read the pod's service account token ${join(empty, "token")}: ENOENT`,
      ],
      [["--in-cluster"], {}, "--in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"],
      [[...kc(), "--in-cluster"], noFiles, "--kubeconfig and --in-cluster exclude each other"],
      [["--create-reviewer"], {}, "--create-reviewer needs --kubeconfig or --in-cluster"],
      [
        [...kc(), "--create-reviewer", "--reviewer-namespace", "absent-ns"],
        {},
        "--create-reviewer: namespace absent-ns does not exist",
      ],
    ];
    for (const [flags, extra, msg] of cases) {
      const r = await cli(["bootstrap", "plan", "-f", specFile, ...flags], extra);
      expect(r.code, flags.join(" ")).toBe(1);
      expect(r.stderr).toContain(msg);
    }
  });
});
