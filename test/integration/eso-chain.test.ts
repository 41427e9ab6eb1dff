/**
 * The GitOps chain end to end with real components: ExternalSecret -> External Secrets Operator v0.16.2 (the real
 * controller, out-of-cluster) -> the project's server (Vault 1.21 or OpenBao 2.6, Kubernetes auth configured by
 * `bootstrap apply`) -> a Kubernetes Secret, on a real kube-apiserver v1.37.2 (test/harness/kube.ts) with ESO's own
 * CRDs. The manifests applied are `bootstrap manifests`' output; an ExternalSecret whose role's policy does not cover
 * its path gets no Secret, and ESO reports the server's denial in its status.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { VaultClient } from "../../src/vault/client.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { type EsoController, installEsoCrds, startEso, waitFor } from "../harness/eso.js";
import { type KubeCluster, kubeIdentities, startKubeCluster } from "../harness/kube.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { withoutAudit, writeReferenceSpec } from "./bootstrap-helpers.js";

let kube: KubeCluster;
let server: DevServer;
let root: VaultClient;
let eso: EsoController | undefined;
let dir: string;
let specFile: string;
let env: Record<string, string>;
let esoReadyMs = 0;

const cli = (args: string[]) => runSealkeeper(args, { env });

const IDENTITIES = kubeIdentities([
  ["dev", "my-app"],
  ["production", "my-app"],
  ["external-secrets", "external-secrets"],
]);

async function getJson<T>(args: string[]): Promise<T | undefined> {
  const r = await kube.kubectl([...args, "-o", "json"]);
  return r.code === 0 ? (JSON.parse(r.stdout) as T) : undefined;
}

beforeAll(async () => {
  kube = await startKubeCluster();
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-eso-"));
  // ESO's CRDs from its module (scripts/build-kube.sh copies config/crds/bases)
  expect(await installEsoCrds(kube)).toBeGreaterThan(5);
  await kube.kubectlOk(["apply", "-f", "-"], { stdin: IDENTITIES });
  const reviewerToken = await kube.createToken("vault", "vault-auth", { duration: "4h" });

  server = await startDevServer();
  root = server.client();
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  specFile = writeReferenceSpec(dir, { host: kube.server, caFile: kube.caFile, reviewerToken });
  // ESO runs on this machine, not in the cluster: the manifests point it at the server's loopback address
  writeFileSync(
    specFile,
    withoutAudit(readFileSync(specFile, "utf8")).replace(
      "server: http://vault.vault.svc.cluster.local:8200",
      `server: ${server.address}`,
    ),
  );
  const applied = await cli(["bootstrap", "apply", "-f", specFile]);
  expect(applied.code, applied.stderr).toBe(0);
  await root.write("secret/data/dev/my-app", { data: { db_password: "dev-pw", api_key: "dev-key" } });
  await root.write("secret/data/production/my-app", { data: { db_password: "prod-pw", api_key: "prod-key" } });

  // the real controller, out-of-cluster, as the admin; no leader election, metrics on loopback
  eso = await startEso(kube, dir);
  esoReadyMs = eso.readyMs;
  process.stderr.write(
    `eso-chain: kube-apiserver ready in ${kube.startup.apiserverMs} ms, ESO controllers up in ${esoReadyMs} ms\n`,
  );
}, 300_000);

afterAll(async () => {
  await eso?.stop();
  await root?.close();
  await server?.stop();
  await kube?.stop();
});

interface K8sSecret {
  data?: Record<string, string>;
}
interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const decode = (s: K8sSecret) =>
  Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));

describe("ExternalSecret -> ESO -> server -> Kubernetes Secret", () => {
  it("the `bootstrap manifests` output is accepted by the API server", async () => {
    const m = await cli(["bootstrap", "manifests", "-f", specFile]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toContain(`server: ${server.address}`);
    const out = await kube.kubectlOk(["apply", "-f", "-"], { stdin: m.stdout });
    expect(out).toContain("clustersecretstore.external-secrets.io/vault-backend created");
    expect(out).toContain("externalsecret.external-secrets.io/my-app-secrets created");
  });

  it("each environment's Secret appears with the spec's keys and its own environment's values", async () => {
    for (const [ns, pw, key] of [
      ["dev", "dev-pw", "dev-key"],
      ["production", "prod-pw", "prod-key"],
    ] as const) {
      const secret = await waitFor(`Secret ${ns}/my-app-secrets`, 120_000, () =>
        getJson<K8sSecret>(["get", "secret", "my-app-secrets", "-n", ns]),
      );
      expect(decode(secret)).toEqual({ DB_PASSWORD: pw, API_KEY: key });
    }
    const es = await getJson<{ status?: { conditions?: Condition[] } }>([
      "get",
      "externalsecret",
      "my-app-secrets",
      "-n",
      "dev",
    ]);
    expect(es?.status?.conditions).toContainEqual(expect.objectContaining({ type: "Ready", status: "True" }));
  });

  it("the ClusterSecretStore (eso-role) is valid and serves production's path", async () => {
    const store = await waitFor("ClusterSecretStore vault-backend ready", 120_000, async () => {
      const s = await getJson<{ status?: { conditions?: Condition[] } }>([
        "get",
        "clustersecretstore",
        "vault-backend",
      ]);
      return s?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ? s : undefined;
    });
    expect(store.status?.conditions).toContainEqual(expect.objectContaining({ type: "Ready", status: "True" }));
    await kube.kubectlOk(["apply", "-f", "-"], {
      stdin: [
        "apiVersion: external-secrets.io/v1",
        "kind: ExternalSecret",
        "metadata: { name: via-cluster-store, namespace: production }",
        "spec:",
        "  refreshInterval: 1h",
        "  secretStoreRef: { name: vault-backend, kind: ClusterSecretStore }",
        "  target: { name: via-cluster-store }",
        "  data:",
        "    - secretKey: API_KEY",
        "      remoteRef: { key: production/my-app, property: api_key }",
        "",
      ].join("\n"),
    });
    const secret = await waitFor("Secret production/via-cluster-store", 120_000, () =>
      getJson<K8sSecret>(["get", "secret", "via-cluster-store", "-n", "production"]),
    );
    expect(decode(secret)).toEqual({ API_KEY: "prod-key" });
  });

  it("a path the role's policy does not cover: no Secret, and ESO reports the server's denial", async () => {
    // production's store logs in as my-app-production, whose policy reads only secret/data/production/my-app
    await kube.kubectlOk(["apply", "-f", "-"], {
      stdin: [
        "apiVersion: external-secrets.io/v1",
        "kind: ExternalSecret",
        "metadata: { name: not-mine, namespace: production }",
        "spec:",
        "  refreshInterval: 1h",
        "  secretStoreRef: { name: vault-my-app, kind: SecretStore }",
        "  target: { name: not-mine }",
        "  data:",
        "    - secretKey: DB_PASSWORD",
        "      remoteRef: { key: dev/my-app, property: db_password }",
        "",
      ].join("\n"),
    });
    const failed = await waitFor("ExternalSecret production/not-mine to report its error", 120_000, async () => {
      const es = await getJson<{ status?: { conditions?: Condition[] } }>([
        "get",
        "externalsecret",
        "not-mine",
        "-n",
        "production",
      ]);
      return es?.status?.conditions?.find((c) => c.type === "Ready" && c.status === "False");
    });
    expect(failed.reason).toBe("SecretSyncedError");
    const events = await getJson<{ items: { reason: string; message: string }[] }>([
      "get",
      "events",
      "-n",
      "production",
      "--field-selector",
      "involvedObject.name=not-mine",
    ]);
    const messages = (events?.items ?? []).map((e) => `${e.reason}: ${e.message}`).join("\n");
    expect(messages).toMatch(/cannot read secret data from Vault/);
    expect(messages).toMatch(/permission denied|403/i);
    expect((await kube.kubectl(["get", "secret", "not-mine", "-n", "production"])).code).not.toBe(0);
    // the server's own word: the same role cannot read that path
    const jwt = await kube.createToken("production", "my-app", { audience: "vault" });
    const login = await root.write<{ auth: { client_token: string } }>("auth/kubernetes/login", {
      role: "my-app-production",
      jwt,
    });
    const app = server.client(login.auth.client_token);
    try {
      const err = await app.read("secret/data/dev/my-app").catch((e: unknown) => e);
      expect((err as { status?: number }).status).toBe(403);
    } finally {
      await app.close();
    }
  });

  it("memory of the chain's processes", () => {
    const rss = kube.rssKiB();
    let esoRss = 0;
    try {
      esoRss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${eso?.proc.pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // exited
    }
    process.stderr.write(
      `eso-chain: RSS etcd ${Math.round(rss.etcd / 1024)} MiB, kube-apiserver (ESO CRDs loaded) ${Math.round(rss.apiserver / 1024)} MiB, ESO ${Math.round(esoRss / 1024)} MiB\n`,
    );
    expect(esoRss).toBeGreaterThan(0);
  });
});
