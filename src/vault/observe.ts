import { describeError, SealkeeperError } from "../errors.js";
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
}

const HEALTH_ROLE: Record<number, string> = {
  200: "active",
  429: "standby",
  472: "dr-standby",
  473: "perf-standby",
  501: "uninitialised",
  503: "sealed",
};

/** Observes one node: seal-status and health, concurrently. Never throws: an unreachable node is reported as such. */
export async function observeNode(client: VaultClient): Promise<NodeStatus> {
  try {
    // both settle before the node is reported: a request left in flight would outlive the command (and its timeout)
    const [sealed, healthy] = await Promise.allSettled([client.sealStatus(), client.health()]);
    if (sealed.status === "rejected") throw sealed.reason;
    if (healthy.status === "rejected") throw healthy.reason;
    const [seal, health] = [sealed.value, healthy.value];
    return {
      address: client.address,
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
      haRole: HEALTH_ROLE[health.status] ?? `http-${health.status}`,
      version: seal.version,
      clusterName: seal.cluster_name ?? health.body?.cluster_name,
      storageType: seal.storage_type,
    };
  } catch (err) {
    if (!(err instanceof SealkeeperError)) throw err;
    return { address: client.address, reachable: false, error: describeError(err) };
  }
}

/** Observes every node concurrently; order follows the input. */
export function observeNodes(clients: VaultClient[]): Promise<NodeStatus[]> {
  return Promise.all(clients.map(observeNode));
}
