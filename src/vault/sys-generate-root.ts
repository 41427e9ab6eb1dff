/**
 * Root token generation by quorum. Vault: /v1/sys/generate-root/{attempt,update} (unauthenticated). OpenBao 2.6:
 * /v1/sys/generate-root-token/{attempt,update} with a token (vault/logical_system_generate_root.go): the same bodies.
 */
import type { RequestOptions, VaultClient } from "./client.js";
import { type EndpointCandidates, type QuorumEndpoint, QuorumSysApi, type ShareSubmission } from "./sys-quorum.js";

/** The status body (GET/PUT attempt, PUT update), in the server's own field names. */
export interface GenerateRootStatus {
  nonce: string;
  started: boolean;
  progress: number;
  required: number;
  complete: boolean;
  encoded_token?: string;
  encoded_root_token?: string;
  pgp_fingerprint?: string;
  /** Only in the answer to a PUT attempt with neither otp nor pgp_key: the server-generated OTP. */
  otp?: string;
  otp_length?: number;
}

/** PUT attempt: a PGP key (standard base64 of the binary key) makes the server encrypt the token; nothing: an OTP. */
export interface GenerateRootStartRequest {
  pgp_key?: string;
}

export const GENERATE_ROOT_ENDPOINTS: EndpointCandidates = {
  operation: "root generation",
  unauthenticated: { base: "sys/generate-root", statusPath: "sys/generate-root/attempt" },
  authenticated: { base: "sys/generate-root-token", statusPath: "sys/generate-root-token/attempt" },
  listenerOption: "disable_unauthed_generate_root_endpoints",
};

export class GenerateRootApi extends QuorumSysApi {
  static on(client: VaultClient, endpoint: QuorumEndpoint): GenerateRootApi {
    return new GenerateRootApi(client, endpoint);
  }

  /** GET attempt. */
  async status(): Promise<GenerateRootStatus> {
    return (await this.call<GenerateRootStatus>("GET", "attempt", { idempotent: true })).body;
  }

  /** PUT attempt: starts one. The answer carries the OTP when the server generated it. */
  async start(req: GenerateRootStartRequest): Promise<GenerateRootStatus> {
    return (await this.call<GenerateRootStatus>("PUT", "attempt", { body: req })).body;
  }

  /**
   * PUT update: one share. The share that completes the attempt returns the encoded token (irreversible): pass
   * `irreversible` for a share that may complete it (no client deadline once sent, RequestOptions.irreversible).
   */
  async update(req: ShareSubmission, irreversible?: RequestOptions["irreversible"]): Promise<GenerateRootStatus> {
    return (await this.call<GenerateRootStatus>("PUT", "update", { body: req, irreversible })).body;
  }

  /** DELETE attempt: cancels whatever attempt runs (no error when none does). */
  async cancel(): Promise<void> {
    await this.call("DELETE", "attempt");
  }
}
