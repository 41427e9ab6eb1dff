/**
 * The Helm values `autounseal awskms --output helm` generates, checked by the real tools: `helm lint` and
 * `helm template` (helm v3.22 from Go modules) of the real vault-helm 0.34.1 and openbao-helm 0.29.2 charts
 * (../shared/charts): lint clean, the seal stanza exactly once in the rendered server config, HA raft with a
 * retry_join per replica, the IRSA annotation on the service account; the render accepted by a real kube-apiserver
 * v1.37.2 (`kubectl apply --dry-run=server`, test/harness/kube.ts).
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { type KubeCluster, startKubeCluster } from "../harness/kube.js";
import { KUBE_VERSIONS, kubeBinaryPath } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

const CHARTS = resolve(import.meta.dirname, "../../../shared/charts");
const CHART = { vault: join(CHARTS, "vault-0.34.1.tgz"), openbao: join(CHARTS, "openbao-0.29.2.tgz") } as const;
const KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE = "arn:aws:iam::111122223333:role/vault-unseal";

let dir: string;
/** A real kube-apiserver the renders are dry-run against (test/harness/kube.ts). */
let kube: KubeCluster;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-helm-"));
  kube = await startKubeCluster();
  await kube.kubectlOk(["create", "namespace", "vault"]);
  // no controller-manager here: the namespace's default service account (the chart's test pod runs as it) is made by hand
  await kube.kubectlOk(["create", "serviceaccount", "default", "-n", "vault"]);
}, 300_000);

afterAll(async () => {
  await kube?.stop();
});

function helm(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(
      kubeBinaryPath("helm"),
      args,
      {
        env: {
          PATH: process.env.PATH,
          HOME: dir,
          HELM_CACHE_HOME: join(dir, "cache"),
          HELM_CONFIG_HOME: join(dir, "cfg"),
        },
        maxBuffer: 32 * 1024 * 1024,
      },
      (err, stdout, stderr) =>
        res({
          code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        }),
    );
  });
}

async function values(target: "vault" | "openbao", extra: string[] = []): Promise<string> {
  const r = await runSealkeeper([
    "autounseal",
    "awskms",
    "--region",
    "eu-west-1",
    "--key-id",
    KEY_ARN,
    "--role-arn",
    ROLE,
    "--target",
    target,
    "--output",
    "helm",
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  const file = join(dir, `values-${target}-${extra.join("-") || "plain"}.yaml`);
  writeFileSync(file, r.stdout);
  return file;
}

interface K8sObject {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  data?: Record<string, string>;
  spec?: { replicas?: number };
}

const cases: { target: "vault" | "openbao"; extra: string[] }[] = [
  { target: "vault", extra: [] },
  { target: "openbao", extra: [] },
  { target: "vault", extra: ["--helm-tls-secret", "vault-tls", "--replicas", "5"] },
  { target: "openbao", extra: ["--helm-tls-secret", "bao-tls", "--release", "bao"] },
];

describe.each(cases)("$target chart with generated values $extra", ({ target, extra }) => {
  let file: string;
  let objects: K8sObject[];
  const release = extra.includes("--release") ? "bao" : target;
  // the charts' fullname: the release when it contains the chart's name, else <release>-<chart>
  const fullname = release.includes(target) ? release : `${release}-${target}`;
  const replicas = extra.includes("--replicas") ? 5 : 3;

  beforeAll(async () => {
    file = await values(target, [...extra]);
  });

  it("helm lint passes", async () => {
    const r = await helm(["lint", CHART[target], "-f", file, "--kube-version", KUBE_VERSIONS.kube]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  let r: { code: number; stdout: string; stderr: string };
  it("helm template renders the seal stanza exactly once, in HA raft mode", async () => {
    r = await helm([
      "template",
      release,
      CHART[target],
      "-f",
      file,
      "--namespace",
      "vault",
      "--kube-version",
      KUBE_VERSIONS.kube,
    ]);
    expect(r.code, r.stderr).toBe(0);
    objects = parseAllDocuments(r.stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((o): o is K8sObject => o !== null);
    expect(r.stdout.match(/seal "awskms"/g)).toHaveLength(1);
    const configMaps = objects.filter((o) => o.kind === "ConfigMap" && o.metadata.name === `${fullname}-config`);
    expect(configMaps).toHaveLength(1);
    const config = Object.values(configMaps[0]!.data ?? {}).join("\n");
    expect(config.match(/seal "awskms"/g)).toHaveLength(1);
    expect(config).toContain(`kms_key_id = "${KEY_ARN}"`);
    expect(config).toMatch(/storage "raft"/);
    expect(config.match(/retry_join \{/g)).toHaveLength(replicas);
    const sts = objects.find((o) => o.kind === "StatefulSet");
    expect(sts?.spec?.replicas).toBe(replicas);
    // every retry_join names a pod the chart really creates, behind its real headless service
    const headless = objects.find((o) => o.kind === "Service" && o.metadata.name.endsWith("-internal"));
    expect(headless).toBeDefined();
    for (let i = 0; i < replicas; i++) {
      expect(config).toContain(`://${sts!.metadata.name}-${i}.${headless!.metadata.name}:8200"`);
    }
    const sa = objects.find((o) => o.kind === "ServiceAccount" && o.metadata.name === fullname);
    expect(sa?.metadata.annotations?.["eks.amazonaws.com/role-arn"]).toBe(ROLE);
  });

  it("the render is accepted by the real API server (kubectl apply --dry-run=server)", async () => {
    expect(r?.code, "the render above").toBe(0);
    const out = await kube.kubectl(["apply", "--dry-run=server", "-n", "vault", "-f", "-"], { stdin: r.stdout });
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(/statefulset\.apps\/\S+ created \(server dry run\)/);
    expect(out.stdout).toMatch(/configmap\/\S+-config created \(server dry run\)/);
  });
});
