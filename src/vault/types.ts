/** Response and request shapes of the Vault/OpenBao HTTP API, in the server's own field names. */

export interface SealStatus {
  type: string;
  initialized: boolean;
  sealed: boolean;
  /** threshold (recovery threshold under auto-unseal) */
  t: number;
  /** shares (recovery shares under auto-unseal) */
  n: number;
  progress: number;
  nonce: string;
  version: string;
  migration?: boolean;
  recovery_seal?: boolean;
  storage_type?: string;
  cluster_name?: string;
  cluster_id?: string;
  build_date?: string;
  commit_date?: string;
}

export interface HealthStatus {
  initialized: boolean;
  sealed: boolean;
  standby: boolean;
  performance_standby?: boolean;
  version?: string;
  cluster_name?: string;
  cluster_id?: string;
  server_time_utc?: number;
}

export interface InitRequest {
  secret_shares?: number;
  secret_threshold?: number;
  pgp_keys?: string[];
  root_token_pgp_key?: string;
  recovery_shares?: number;
  recovery_threshold?: number;
  recovery_pgp_keys?: string[];
}

export interface InitResponse {
  keys: string[];
  keys_base64: string[];
  recovery_keys?: string[];
  recovery_keys_base64?: string[];
  root_token: string;
}

export interface UnsealRequest {
  key?: string;
  reset?: boolean;
  migrate?: boolean;
}

/** One server of GET sys/storage/raft/configuration. */
/** What GET /v1/sys/leader says of a node's HA role. */
export interface LeaderStatus {
  haEnabled: boolean;
  isSelf: boolean;
  /** The active node's API address; "" when unknown. */
  leaderAddress: string;
}

export interface RaftServer {
  node_id: string;
  address?: string;
  leader?: boolean;
  voter: boolean;
}
