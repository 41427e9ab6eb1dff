import { describeError, SealkeeperError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "./client.js";

/** What `status` reports per node; the JSON output is exactly this object. */
export interface NodeStatus {
  address: string;
  reachable: boolean;
  initialized?: boolean;
  sealed?: boolean;
  /** unseal (or recovery, under auto-unseal) threshold and shares */
  threshold?: number;
  shares?: number;
  progress?: number;
  nonce?: string;
  sealType?: string;
  recoverySeal?: boolean;
  migration?: boolean;
  /** active, standby, perf-standby, dr-standby, sealed, uninitialised */
  haRole?: string;
  version?: string;
  clusterName?: string;
  storageType?: string;
  error?: string;
  /** What is notable about a node that is up (e.g. a standby mid-migration whose seal-status answers 500). */
  note?: string;
}

const HEALTH_ROLE: Record<number, string> = {
  200: "active",
  429: "standby",
  472: "dr-standby",
  473: "perf-standby",
  // Vault 1.19+ sys/health haunhealthycode: a standby that has lost contact with its active node for too long
  474: "standby-unhealthy",
  501: "uninitialised",
  503: "sealed",
  // Vault 1.19+ sys/health removedcode: a node removed from the raft cluster
  530: "removed",
};

/**
 * OpenBao 2.5+ standbys serve reads ("horizontal read scalability", on unless `disable_standby_reads = true`): a
 * standby unsealed with migrate=true runs the read-only post-unseal setup, which drops the seal config that migration
 * mode had cached (vault/core.go postUnseal: `c.seal.SetBarrierConfig(ctx, nil)`, "purge these for safety"). From
 * then on seal-status, sys/init and sys/health re-read the stored Shamir config against the configured awskms seal
 * (vault/seal_autoseal.go BarrierConfig) and answer 500 with this message, until the node that becomes active has
 * migrated the seal and written the new config. OpenBao's own seal-migration test waits through the same error
 * (vault/external_tests/sealmigration/testshared.go, awaitMigration). Vault 1.21 standbys do not run post-unseal,
 * and keep answering `sealed: false, migration: true`.
 */
export const STALE_SEAL_CONFIG = /barrier seal type of "([^"]+)" does not match loaded type of "([^"]+)"/;

/**
 * A seal-status 500 carrying STALE_SEAL_CONFIG, confirmed with sys/leader (unauthenticated, answered only by an
 * unsealed node): an unsealed standby waiting for the new active node to migrate the seal. Undefined otherwise.
 */
export async function staleSealStandby(
  client: VaultClient,
  err: unknown,
): Promise<{ stored: string; loaded: string; text: string } | undefined> {
  if (!(err instanceof VaultHttpError) || err.status < 500) return undefined;
  const stale = err.errors.map((e) => STALE_SEAL_CONFIG.exec(e)).find((m) => m !== null);
  if (!stale) return undefined;
  const leader = await client.leader().catch(() => undefined);
  if (leader?.haEnabled !== true || leader.isSelf) return undefined;
  return { stored: stale[1]!, loaded: stale[2]!, text: `seal-status answers ${err.status} (${stale[0]})` };
}

/** Observes one node: seal-status and health, concurrently. Never throws: an unreachable node is reported as such. */
export async function observeNode(client: VaultClient): Promise<NodeStatus> {
  try {
    // both settle before the node is reported: a request left in flight would outlive the command (and its timeout)
    const [sealed, healthy] = await Promise.allSettled([client.sealStatus(), client.health()]);
    if (sealed.status === "rejected") throw sealed.reason;
    const seal = sealed.value;
    if (healthy.status === "rejected") {
      const err = healthy.reason;
      // seal-status answered, health did not: up, its role unknown (seen on OpenBao 2.6 right after a standby was
      // unsealed with migrate=true: health 500 with no message for a moment)
      if (!(err instanceof VaultHttpError)) throw err;
      return {
        ...fromSealStatus(client.address, seal),
        note: `sys/health answers ${err.status}${err.errors.length > 0 ? ` (${err.errors.join("; ")})` : ""}`,
      };
    }
    const health = healthy.value;
    return {
      ...fromSealStatus(client.address, seal),
      haRole: HEALTH_ROLE[health.status] ?? `http-${health.status}`,
      ...(health.status === 474
        ? {
            note: "standby that has lost contact with its active node (health 474): check the active node and the network",
          }
        : health.status === 530
          ? { note: "removed from the raft cluster (health 530)" }
          : {}),
      clusterName: seal.cluster_name ?? health.body?.cluster_name,
    };
  } catch (err) {
    if (!(err instanceof SealkeeperError)) throw err;
    const stale = await staleSealStandby(client, err);
    if (stale) {
      // up and unsealed, a standby in the middle of a seal migration (OpenBao): not "unreachable"
      return {
        address: client.address,
        reachable: true,
        initialized: true,
        sealed: false,
        sealType: stale.loaded,
        migration: true,
        haRole: "standby",
        note: `unsealed with migrate=true, waiting for the new active node to migrate the seal from ${stale.stored}; its ${stale.text}`,
      };
    }
    return { address: client.address, reachable: false, error: describeError(err) };
  }
}

/** Observes every node concurrently; order follows the input. */
export function observeNodes(clients: VaultClient[]): Promise<NodeStatus[]> {
  return Promise.all(clients.map(observeNode));
}

/** What seal-status alone tells about a node. */
function fromSealStatus(address: string, seal: Awaited<ReturnType<VaultClient["sealStatus"]>>): NodeStatus {
  return {
    address,
    reachable: true,
    initialized: seal.initialized,
    sealed: seal.sealed,
    threshold: seal.t,
    shares: seal.n,
    progress: seal.progress,
    nonce: seal.nonce || undefined,
    sealType: seal.type,
    recoverySeal: seal.recovery_seal,
    migration: seal.migration,
    version: seal.version,
    clusterName: seal.cluster_name,
    storageType: seal.storage_type,
  };
}
