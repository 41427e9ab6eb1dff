import { homedir } from "node:os";
import { join } from "node:path";

/** Which real server the tests drive: SEALKEEPER_SERVER=vault or openbao (vitest sets it per integration project). */
export type ServerKind = "vault" | "openbao";

export const SERVERS: readonly ServerKind[] = ["vault", "openbao"];

export const SERVER_VERSIONS = { vault: "1.21.0", openbao: "2.6.2-dd9c19c37a87" } as const;

/** The server's own name, for test titles and messages. */
export const SERVER_NAMES = { vault: "Vault 1.21.0", openbao: "OpenBao 2.6.2" } as const;

export function serverKind(env: NodeJS.ProcessEnv = process.env): ServerKind {
  const kind = env.SEALKEEPER_SERVER ?? "vault";
  if (kind !== "vault" && kind !== "openbao")
    throw new Error(`SEALKEEPER_SERVER must be vault or openbao, got ${kind}`);
  return kind;
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.SEALKEEPER_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "sealkeeper");
}

/** Where scripts/build-vault.sh and scripts/build-openbao.sh leave the binary (the same rule as the scripts). */
export function serverBinaryPath(kind: ServerKind = serverKind(), env: NodeJS.ProcessEnv = process.env): string {
  return kind === "vault"
    ? join(cacheRoot(env), `vault-${SERVER_VERSIONS.vault}`, "vault")
    : join(cacheRoot(env), `openbao-${SERVER_VERSIONS.openbao}`, "bao");
}

/** The script that builds (or reuses) that server and prints its path. */
export function serverBuildScript(kind: ServerKind): string {
  return kind === "vault" ? "scripts/build-vault.sh" : "scripts/build-openbao.sh";
}

/** The Kubernetes test-bed components scripts/build-kube.sh builds (same versions and cache layout as the script). */
export const KUBE_VERSIONS = { kube: "1.37.2", etcd: "3.7.3", eso: "0.16.2", helm: "3.22.0" } as const;

export type KubeComponent = "kube-apiserver" | "kubectl" | "etcd" | "external-secrets" | "helm";

export function kubeBinaryPath(name: KubeComponent, env: NodeJS.ProcessEnv = process.env): string {
  const dir = {
    "kube-apiserver": `kube-${KUBE_VERSIONS.kube}`,
    kubectl: `kube-${KUBE_VERSIONS.kube}`,
    etcd: `etcd-${KUBE_VERSIONS.etcd}`,
    "external-secrets": `eso-${KUBE_VERSIONS.eso}`,
    helm: `helm-${KUBE_VERSIONS.helm}`,
  }[name];
  return join(cacheRoot(env), dir, name);
}

/** ESO's CRDs, copied out of its module by scripts/build-kube.sh. */
export function esoCrdDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(cacheRoot(env), `eso-${KUBE_VERSIONS.eso}`, "crds");
}
