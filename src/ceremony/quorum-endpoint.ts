/**
 * Which API a quorum operation (generate-root, rekey) can use on this server. HashiCorp Vault (and OpenBao before
 * 2.5) serves them unauthenticated under /sys/generate-root/* and /sys/rekey*; OpenBao >= 2.5.3 turns those off by
 * default (listener options `disable_unauthed_generate_root_endpoints`, `disable_unauthed_rekey_endpoints`) and offers
 * authenticated replacements (/sys/generate-root-token/*, /sys/rotate/root|recovery/*) that need a token.
 * The probe is a GET of the status path, which changes nothing on the server.
 */
import { SealkeeperError, VaultConnectionError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import { type EndpointCandidates, probeQuorumStatus, type QuorumEndpoint } from "../vault/sys-quorum.js";

export type { EndpointCandidates, QuorumEndpoint } from "../vault/sys-quorum.js";

export type EndpointPreference = "auto" | "unauthenticated" | "authenticated";

/** Neither API is usable. exitCode 2 (the server refused), with a hint saying exactly what to change. */
export class EndpointUnavailableError extends SealkeeperError {
  constructor(message: string, hint: string) {
    super(message, { exitCode: 2, hint });
  }
}

/** An attempt is already running and the caller did not say --resume (or asked to resume what cannot be). Exit 2. */
export class AttemptInProgressError extends SealkeeperError {
  constructor(message: string, hint: string) {
    super(message, { exitCode: 2, hint });
  }
}

/**
 * Vault answers rekey calls on a standby with a redirect to the active node (generate-root is forwarded instead):
 * following it would send shares to an address nobody typed, so say which node to use.
 */
async function standbyError(client: VaultClient, operation: string): Promise<SealkeeperError> {
  let leader = "";
  try {
    leader = await client.leaderAddress();
  } catch {
    // the hint is still right without the address
  }
  return new SealkeeperError(`${client.address} is a standby: ${operation} runs on the active node`, {
    exitCode: 2,
    hint: leader ? `use -a ${leader}` : "give the active node's address with -a (sealkeeper status shows it)",
  });
}

/** A 404/405 means "this server has no such path here" (not registered, or turned off by a listener option). */
function isAbsent(err: unknown): boolean {
  return err instanceof VaultHttpError && (err.status === 404 || err.status === 405);
}

/**
 * Finds the API to use and returns it with the status body the probe read.
 * @throws EndpointUnavailableError when neither API is usable, naming what each answered and what to do;
 *   VaultConnectionError when the node cannot be reached; VaultHttpError for any other server error (e.g. 503 sealed).
 */
export async function detectQuorumEndpoint<T>(
  client: VaultClient,
  candidates: EndpointCandidates,
  preference: EndpointPreference = "auto",
): Promise<{ endpoint: QuorumEndpoint; status: T }> {
  const { operation, unauthenticated: u, authenticated: a, listenerOption } = candidates;
  let unauthAnswer = "not tried";
  if (preference !== "authenticated") {
    try {
      const res = await probeQuorumStatus<T>(client, u.statusPath, "unauthenticated");
      if (res.redirect) throw await standbyError(client, operation);
      return { endpoint: { kind: "unauthenticated", base: u.base }, status: res.body };
    } catch (err) {
      if (!isAbsent(err)) throw err;
      unauthAnswer = `${(err as VaultHttpError).status} (${(err as VaultHttpError).errors.join("; ") || "no message"})`;
    }
  }
  let authAnswer = "not tried";
  if (preference !== "unauthenticated") {
    if (!client.hasToken()) {
      authAnswer = "not tried: no token (set BAO_TOKEN or VAULT_TOKEN)";
    } else {
      try {
        const res = await probeQuorumStatus<T>(client, a.statusPath, "authenticated");
        if (res.redirect) throw await standbyError(client, operation);
        return { endpoint: { kind: "authenticated", base: a.base }, status: res.body };
      } catch (err) {
        if (err instanceof VaultConnectionError) throw err;
        if (!(err instanceof VaultHttpError) || !(isAbsent(err) || err.status === 403)) throw err;
        authAnswer =
          err.status === 403
            ? "403: the token may not use it (it needs update on the path and read on its status)"
            : `${err.status} (this server has no such path)`;
      }
    }
  }
  const lines = [`/v1/${u.statusPath}: ${unauthAnswer}`, `/v1/${a.statusPath} (needs a token): ${authAnswer}`];
  throw new EndpointUnavailableError(
    `${client.address} offers no usable ${operation} API: ${lines.join("; ")}`,
    `either set ${listenerOption} = false in the server's listener "tcp" stanza and restart it (OpenBao >= 2.5 turns ` +
      `the unauthenticated endpoints off by default), or give a token allowed on /v1/${a.base}/* (OpenBao >= 2.6) ` +
      "through BAO_TOKEN/VAULT_TOKEN",
  );
}
