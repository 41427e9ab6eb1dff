/**
 * Rekey (new unseal or recovery shares). Vault: /v1/sys/rekey/* and /v1/sys/rekey-recovery-key/* (unauthenticated).
 * OpenBao >= 2.4: /v1/sys/rotate/root/* and /v1/sys/rotate/recovery/* with a token (vault/logical_system_rotate.go):
 * the same bodies. One difference: OpenBao answers the init PUT of a recovery rotation with the new keys at once
 * (complete: true) when the cluster was initialised with no recovery shares.
 */
import type { RequestOptions, VaultClient } from "./client.js";
import {
  type EndpointCandidates,
  type KeyKind,
  type QuorumEndpoint,
  QuorumSysApi,
  type ShareSubmission,
} from "./sys-quorum.js";

/** GET <base>/init (and the answer to PUT init/update before completion), in the server's field names. */
export interface RekeyStatus {
  nonce: string;
  started: boolean;
  t: number;
  n: number;
  progress: number;
  required: number;
  pgp_fingerprints?: string[] | null;
  backup?: boolean;
  verification_required?: boolean;
  verification_nonce?: string;
}

/** The answer to the share that completes the old-share phase: the only copy of the new shares. */
export interface RekeyUpdateDone {
  nonce: string;
  complete: true;
  keys: string[];
  keys_base64: string[];
  pgp_fingerprints?: string[] | null;
  verification_required?: boolean;
  verification_nonce?: string;
}

/** GET <base>/verify, and PUT <base>/verify until complete. */
export interface RekeyVerifyStatus {
  nonce: string;
  started?: boolean;
  t?: number;
  n?: number;
  progress?: number;
  complete?: boolean;
}

export interface RekeyStartRequest {
  secret_shares: number;
  secret_threshold: number;
  require_verification?: boolean;
  pgp_keys?: string[];
  backup?: boolean;
}

export function isRekeyDone(body: RekeyStatus | RekeyUpdateDone): body is RekeyUpdateDone {
  return "complete" in body && body.complete === true;
}

export function rekeyEndpoints(kind: KeyKind): EndpointCandidates {
  const u = kind === "unseal" ? "sys/rekey" : "sys/rekey-recovery-key";
  const a = kind === "unseal" ? "sys/rotate/root" : "sys/rotate/recovery";
  return {
    operation: kind === "unseal" ? "rekey" : "recovery-key rekey",
    unauthenticated: { base: u, statusPath: `${u}/init` },
    authenticated: { base: a, statusPath: `${a}/init` },
    listenerOption: "disable_unauthed_rekey_endpoints",
  };
}

export class RekeyApi extends QuorumSysApi {
  static on(client: VaultClient, endpoint: QuorumEndpoint): RekeyApi {
    return new RekeyApi(client, endpoint);
  }

  /** GET init. */
  async status(): Promise<RekeyStatus> {
    return (await this.call<RekeyStatus>("GET", "init", { idempotent: true })).body;
  }

  /** PUT init: starts an attempt (OpenBao may complete a recovery rotation here, see the module comment). */
  async start(req: RekeyStartRequest): Promise<RekeyStatus | RekeyUpdateDone> {
    return (await this.call<RekeyStatus | RekeyUpdateDone>("PUT", "init", { body: req })).body;
  }

  /**
   * PUT update: one OLD share. The completing one returns the new shares (irreversible): pass `irreversible` for a
   * share that may complete it (no client deadline once sent, RequestOptions.irreversible).
   */
  async update(
    req: ShareSubmission,
    irreversible?: RequestOptions["irreversible"],
  ): Promise<RekeyStatus | RekeyUpdateDone> {
    return (await this.call<RekeyStatus | RekeyUpdateDone>("PUT", "update", { body: req, irreversible })).body;
  }

  /** GET verify. */
  async verifyStatus(): Promise<RekeyVerifyStatus> {
    return (await this.call<RekeyVerifyStatus>("GET", "verify", { idempotent: true })).body;
  }

  /** PUT verify: one NEW share. The completing one switches the keys (irreversible). */
  async verify(req: ShareSubmission): Promise<RekeyVerifyStatus> {
    return (await this.call<RekeyVerifyStatus>("PUT", "verify", { body: req })).body;
  }

  /** DELETE init: cancels the attempt (Vault 1.21 wants its nonce in the body). */
  async cancel(nonce: string): Promise<void> {
    await this.call("DELETE", "init", { body: { nonce } });
  }
}
