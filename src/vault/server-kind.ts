/**
 * Which server answers: HashiCorp Vault or OpenBao. They share the API but differ where docs/servers.md says (e.g.
 * OpenBao standbys answer reads from their own replica). Told from sys/health, which needs no token.
 */
import type { VaultClient } from "./client.js";
import type { HealthStatus } from "./types.js";

export type ServerKind = "vault" | "openbao";

/**
 * From a sys/health body: HashiCorp Vault reports `enterprise` (false on the open-source server) and OpenBao does not;
 * OpenBao's versions start at 2, Vault 1.21's at 1. Both must agree for "openbao".
 */
export function serverKindFromHealth(body: Partial<HealthStatus> & { enterprise?: unknown }): ServerKind {
  const major = Number.parseInt(String(body.version ?? "").replace(/^v/, ""), 10);
  return body.enterprise === undefined && major >= 2 ? "openbao" : "vault";
}

export async function serverKindOf(client: VaultClient): Promise<ServerKind> {
  return serverKindFromHealth((await client.health()).body);
}
