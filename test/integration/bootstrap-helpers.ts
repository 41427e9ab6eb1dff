import { copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { auditConfigStanza } from "../../src/bootstrap/kinds/audit.js";
import type { BootstrapSpec } from "../../src/bootstrap/spec.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { serverKind } from "../harness/paths.js";

/**
 * A dev server for a spec with audit devices. Vault enables them through the API (the spec's apply does it); OpenBao
 * refuses that unless told to, and takes them from its server configuration instead: there they are declared in a
 * config file, with the very stanza plan prints for the purpose (auditConfigStanza).
 */
export async function startServerForAudit(audit: BootstrapSpec["audit"]): Promise<DevServer> {
  const config = auditServerConfig(audit);
  if (config === "") return startDevServer();
  const file = join(mkdtempSync(join(tmpdir(), "sealkeeper-audit-config-")), "audit.hcl");
  writeFileSync(file, config);
  return startDevServer({ args: [`-config=${file}`] });
}

/** The server-config lines that declare `audit` on OpenBao; nothing on Vault (the spec's apply enables them). */
export function auditServerConfig(audit: BootstrapSpec["audit"]): string {
  if (serverKind() === "vault" || audit.length === 0) return "";
  return `${audit.map(auditConfigStanza).join("\n")}\n`;
}

/** The spec text without its audit: section (for the tests of what happens with no audit device). */
export function withoutAudit(text: string): string {
  return text.replace(/^audit:\n(?:(?:[ \t]+.*)?\n)*/m, "");
}

const REF = "examples/reference";

/** The reference spec's audit log path (the Helm charts' audit volume): tests point it into their own directory. */
export const REFERENCE_AUDIT_PATH = "/vault/audit/audit.log";

/** Where the reference spec's kubernetes auth points: a real API server (test/harness/kube.ts) or the example's own. */
export interface ReferenceCluster {
  /** kubernetes_host */
  host: string;
  /** PEM file of the cluster CA */
  caFile: string;
  reviewerToken: string;
}

/**
 * The example's own placeholders (https://kubernetes.default.svc, its CA and reviewer JWT files): for the tests that
 * configure kubernetes auth but never log in through it (Vault does not contact the API server before a login).
 */
export const EXAMPLE_CLUSTER: ReferenceCluster = {
  host: "https://kubernetes.default.svc",
  caFile: join(REF, "kubernetes-ca.pem"),
  reviewerToken: readFileSync(join(REF, "token-reviewer.jwt"), "utf8").trim(),
};

/**
 * Copies the reference spec into `dir`, pointing kubernetes_host, the CA and the reviewer JWT at `cluster` and the
 * file audit device at `auditLog` (default dir/audit.log).
 */
export function writeReferenceSpec(
  dir: string,
  cluster: ReferenceCluster = EXAMPLE_CLUSTER,
  auditLog = join(dir, "audit.log"),
): string {
  const text = readFileSync(join(REF, "bootstrap.yaml"), "utf8")
    .replace("kubernetes_host: https://kubernetes.default.svc", `kubernetes_host: ${cluster.host}`)
    .replace(`file_path: ${REFERENCE_AUDIT_PATH}`, `file_path: ${auditLog}`);
  copyFileSync(cluster.caFile, join(dir, "kubernetes-ca.pem"));
  writeFileSync(join(dir, "token-reviewer.jwt"), `${cluster.reviewerToken}\n`, { mode: 0o600 });
  const file = join(dir, "bootstrap.yaml");
  writeFileSync(file, text);
  return file;
}

/** Audit entries of type request, as { operation, path }. */
export function auditRequests(logPath: string): { operation: string; path: string }[] {
  if (!existsSync(logPath)) return [];
  return readFileSync(logPath, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as { type: string; request?: { operation?: string; path?: string } })
    .filter((e) => e.type === "request")
    .map((e) => ({ operation: e.request?.operation ?? "", path: e.request?.path ?? "" }));
}

/** Requests that change state: everything but read and list. */
export function countWrites(entries: { operation: string }[]): number {
  return entries.filter((e) => e.operation !== "read" && e.operation !== "list").length;
}

/**
 * Writes generateAppsSpec's spec to `file`, with the kubernetes CA it names beside it (the reference example's).
 */
export function writeAppsSpec(file: string, n: number, opts: { ttl?: string } = {}): void {
  copyFileSync(join(REF, "kubernetes-ca.pem"), join(dirname(file), "kubernetes-ca.pem"));
  writeFileSync(file, generateAppsSpec(n, opts));
}

/**
 * A spec of n apps (one environment each: n policies and n roles) on kv-v2 at secret/ and kubernetes auth, for the
 * fault tests and the benchmark. `ttl` lets a test change every role at once. Its kubernetes config names a CA file
 * (kubernetes-ca.pem beside the spec: writeAppsSpec puts it there): with disable_local_ca_jwt OpenBao 2.6.2 refuses a
 * config without one (400 "kubernetes_ca_cert must be given when disable_local_ca_jwt is true"); Vault 1.21 takes it.
 */
export function generateAppsSpec(n: number, opts: { ttl?: string } = {}): string {
  const lines = [
    "version: 1",
    "mounts:",
    "  - path: secret",
    "    type: kv",
    "    options: { version: 2 }",
    "auth:",
    "  - path: kubernetes",
    "    type: kubernetes",
    "    config:",
    "      kubernetes_host: https://kubernetes.default.svc",
    "      kubernetes_ca_cert_file: kubernetes-ca.pem",
    "      disable_local_ca_jwt: true",
    "apps:",
  ];
  for (let i = 0; i < n; i++) {
    const name = `app${String(i).padStart(3, "0")}`;
    lines.push(
      `  - name: ${name}`,
      "    audience: vault",
      `    token_ttl: ${opts.ttl ?? "1h"}`,
      "    token_max_ttl: 4h",
      "    environments:",
      `      - name: prod`,
      `        namespace: team-${i % 10}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
