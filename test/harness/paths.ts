import { homedir } from "node:os";
import { join } from "node:path";

/** Which real server the tests drive: SEALKEEPER_SERVER=vault (default here) or openbao. */
export type ServerKind = "vault" | "openbao";

export const SERVER_VERSIONS = { vault: "1.21.0", openbao: "2.6.2-dd9c19c37a87" } as const;

export function serverKind(env: NodeJS.ProcessEnv = process.env): ServerKind {
  const kind = env.SEALKEEPER_SERVER ?? "vault";
  if (kind !== "vault" && kind !== "openbao")
    throw new Error(`SEALKEEPER_SERVER must be vault or openbao, got ${kind}`);
  return kind;
}

export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.SEALKEEPER_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "sealkeeper");
}

/** Where scripts/build-server.sh leaves the binary (the same rule as the script). */
export function serverBinaryPath(kind: ServerKind = serverKind(), env: NodeJS.ProcessEnv = process.env): string {
  return kind === "vault"
    ? join(cacheRoot(env), `vault-${SERVER_VERSIONS.vault}`, "vault")
    : join(cacheRoot(env), `openbao-${SERVER_VERSIONS.openbao}`, "bao");
}
