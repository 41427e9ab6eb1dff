/**
 * What the quorum sys APIs (generate-root, rekey/rotate) have in common: each exists twice, as HashiCorp Vault's
 * unauthenticated paths (also OpenBao before 2.5) and as OpenBao's token-protected replacements, with the same
 * request and response bodies under another base path. A QuorumEndpoint says which one a call goes to.
 */
import type { HttpMethod, RawResponse, RequestOptions, VaultClient } from "./client.js";

/** Which kind of shares the people hold: unseal shares (Shamir seal) or recovery shares (auto-unseal). */
export type KeyKind = "unseal" | "recovery";

export interface QuorumEndpoint {
  /** unauthenticated: Vault's classic paths; authenticated: OpenBao's token-protected ones. */
  kind: "unauthenticated" | "authenticated";
  /** Path prefix without /v1/, e.g. "sys/generate-root" or "sys/rotate/root". */
  base: string;
}

export interface EndpointCandidates {
  /** What the operation is called in messages: "root generation", "rekey". */
  operation: string;
  unauthenticated: { base: string; statusPath: string };
  authenticated: { base: string; statusPath: string };
  /** The listener option that re-enables the unauthenticated path on OpenBao. */
  listenerOption: string;
}

/** One share as every quorum update endpoint takes it: hex key, and the nonce of the attempt it belongs to. */
export interface ShareSubmission {
  key: string;
  nonce: string;
}

/** The answer of a status probe: 200 with the body, or 307 (a standby redirecting to the active node). */
export interface ProbeAnswer<T> {
  redirect: boolean;
  body: T;
}

/**
 * GET of a quorum status path, with the token only for the authenticated kind. Changes nothing on the server.
 * @throws VaultHttpError (404/405 when the path is absent or disabled, 403, 503 sealed), VaultConnectionError.
 */
export async function probeQuorumStatus<T>(
  client: VaultClient,
  statusPath: string,
  kind: QuorumEndpoint["kind"],
): Promise<ProbeAnswer<T>> {
  const res = await client.request<T>("GET", statusPath, {
    auth: kind === "authenticated",
    idempotent: true,
    accept: [307],
  });
  return { redirect: res.status === 307, body: unwrapLogical(res.body) };
}

/**
 * OpenBao's authenticated quorum paths are logical endpoints of the system backend: their answer is the usual
 * envelope `{request_id, data: {...}, ...}` (seen on OpenBao 2.6.2: GET sys/generate-root-token/attempt), where
 * Vault's unauthenticated ones answer with the fields at the top level. Either way, the fields are returned.
 */
export function unwrapLogical<T>(body: T): T {
  if (body && typeof body === "object" && "request_id" in body) {
    const data = (body as { data?: unknown }).data;
    if (data && typeof data === "object") return data as T;
  }
  return body;
}

/** Base of the typed per-API classes: one endpoint, the token sent only on the authenticated kind. */
export abstract class QuorumSysApi {
  constructor(
    readonly client: VaultClient,
    readonly endpoint: QuorumEndpoint,
  ) {}

  protected async call<T>(
    method: HttpMethod,
    sub: string,
    opts: Omit<RequestOptions, "auth"> = {},
  ): Promise<RawResponse<T>> {
    const res = await this.client.request<T>(method, `${this.endpoint.base}/${sub}`, {
      ...opts,
      auth: this.endpoint.kind === "authenticated",
    });
    return { status: res.status, body: unwrapLogical(res.body) };
  }
}
