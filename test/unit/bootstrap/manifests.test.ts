import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { buildManifests, renderManifests, writeManifests } from "../../../src/bootstrap/manifests.js";
import { loadSpec } from "../../../src/bootstrap/spec.js";
import { runSealkeeper } from "../../harness/run-cli.js";

const spec = loadSpec("examples/reference/bootstrap.yaml");

interface StoreDoc {
  metadata: { namespace: string };
  spec: { provider: { vault: { auth: { kubernetes: { role: string; serviceAccountRef: unknown } } } } };
}
interface ExternalSecretDoc {
  metadata: unknown;
  spec: { secretStoreRef: unknown; data: unknown };
}

describe("ESO manifests", () => {
  it("emits the article's ClusterSecretStore for eso-role", () => {
    const store = buildManifests(spec).find((m) => m.doc.kind === "ClusterSecretStore")!;
    expect(store.doc).toEqual({
      apiVersion: "external-secrets.io/v1",
      kind: "ClusterSecretStore",
      metadata: { name: "vault-backend", annotations: { "argocd.argoproj.io/sync-wave": "-1" } },
      spec: {
        provider: {
          vault: {
            server: "http://vault.vault.svc.cluster.local:8200",
            path: "secret",
            version: "v2",
            auth: {
              kubernetes: {
                mountPath: "kubernetes",
                role: "eso-role",
                serviceAccountRef: { name: "external-secrets", namespace: "external-secrets", audiences: ["vault"] },
              },
            },
          },
        },
      },
    });
  });

  it("emits per environment a SecretStore with that environment's role and an ExternalSecret mapping its keys", () => {
    const docs = buildManifests(spec).filter((m) => m.file.startsWith("apps/my-app/production/"));
    const store = docs.find((m) => m.doc.kind === "SecretStore")!.doc as unknown as StoreDoc;
    expect(store.metadata.namespace).toBe("production");
    expect(store.spec.provider.vault.auth.kubernetes.role).toBe("my-app-production");
    expect(store.spec.provider.vault.auth.kubernetes.serviceAccountRef).toEqual({
      name: "my-app",
      audiences: ["vault"],
    });
    const es = docs.find((m) => m.doc.kind === "ExternalSecret")!.doc as unknown as ExternalSecretDoc;
    expect(es.metadata).toEqual({ name: "my-app-secrets", namespace: "production" });
    expect(es.spec.secretStoreRef).toEqual({ name: "vault-my-app", kind: "SecretStore" });
    expect(es.spec.data).toEqual([
      { secretKey: "DB_PASSWORD", remoteRef: { key: "production/my-app", property: "db_password" } },
      { secretKey: "API_KEY", remoteRef: { key: "production/my-app", property: "api_key" } },
    ]);
  });

  it("renders valid multi-document YAML with no secret in it", () => {
    const text = renderManifests(spec);
    const docs = parseAllDocuments(text);
    expect(docs.map((d) => d.errors.length)).toEqual([0, 0, 0, 0, 0]);
    expect(docs.map((d) => d.get("kind"))).toEqual([
      "ClusterSecretStore",
      "SecretStore",
      "ExternalSecret",
      "SecretStore",
      "ExternalSecret",
    ]);
    expect(text).not.toContain(spec.auth[0]!.config!.token_reviewer_jwt!);
    expect(text).not.toContain("BEGIN CERTIFICATE");
  });

  it("writes one file per manifest with --out", async () => {
    const dir = mkdtempSync(join(tmpdir(), "manifests-"));
    const r = await runSealkeeper(["bootstrap", "manifests", "-f", "examples/reference/bootstrap.yaml", "--out", dir]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, "apps/my-app/dev/externalsecret.yaml"), "utf8")).toContain("key: dev/my-app");
    expect(writeManifests(spec, dir)).toHaveLength(5);
  });
});

describe("policy lint CLI", () => {
  it("passes the reference spec", async () => {
    const r = await runSealkeeper(["policy", "lint", "examples/reference/bootstrap.yaml", "--strict"]);
    expect(r).toMatchObject({ code: 0, stdout: "1 file(s): no findings\n" });
  });
  it("--strict exits 1 on findings, each naming file:line, rule and fix", async () => {
    const f = "test/unit/bootstrap/fixtures/lint/sudo-capability.yaml";
    const r = await runSealkeeper(["policy", "lint", f, "--strict"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/sudo-capability\.yaml:12: sudo-capability: "secret\/data\/ops" grants sudo \(fix: /);
    expect((await runSealkeeper(["policy", "lint", f])).code).toBe(0);
  });
  it("names an unreadable file", async () => {
    const r = await runSealkeeper(["policy", "lint", "nope.hcl"]);
    expect(r).toMatchObject({ code: 1, stderr: "error: cannot read policy file nope.hcl: ENOENT\n" });
  });
});
