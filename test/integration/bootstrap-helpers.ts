import { copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TokenReviewResponder } from "../harness/tokenreview.js";

const REF = "examples/reference";

/** Copies the reference spec into `dir`, pointing kubernetes_host at the responder and the reviewer JWT at its token. */
export function writeReferenceSpec(dir: string, responder: TokenReviewResponder): string {
  const text = readFileSync(join(REF, "bootstrap.yaml"), "utf8").replace(
    "kubernetes_host: https://kubernetes.default.svc",
    `kubernetes_host: ${responder.url}`,
  );
  copyFileSync(join(REF, "kubernetes-ca.pem"), join(dir, "kubernetes-ca.pem"));
  writeFileSync(join(dir, "token-reviewer.jwt"), `${responder.reviewerToken}\n`, { mode: 0o600 });
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
 * A spec of n apps (one environment each: n policies and n roles) on kv-v2 at secret/ and kubernetes auth, for the
 * fault tests and the benchmark. `ttl` lets a test change every role at once.
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
    "      disable_local_ca_jwt: true",
    "apps:",
  ];
  for (let i = 0; i < n; i++) {
    const name = `app${String(i).padStart(3, "0")}`;
    lines.push(
      `  - name: ${name}`,
      `    token_ttl: ${opts.ttl ?? "1h"}`,
      "    token_max_ttl: 4h",
      "    environments:",
      `      - name: prod`,
      `        namespace: team-${i % 10}`,
    );
  }
  return `${lines.join("\n")}\n`;
}
