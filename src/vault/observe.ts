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
    const [seal, health] = await Promise.all([client.sealStatus(), client.health()]);
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
