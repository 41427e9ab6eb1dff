/**
 * Root token revocation: confirm the token is a root token, revoke it, then prove it is gone (lookup-self answers
 * 403). The token itself is never printed; only its accessor.
 */
import { SealkeeperError, UsageError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import { GENERATE_ROOT_ENDPOINTS } from "../vault/sys-generate-root.js";
import { probeQuorumStatus } from "../vault/sys-quorum.js";
import { rekeyEndpoints } from "../vault/sys-rekey.js";

export interface TokenInfo {
  accessor: string;
  policies: string[];
  displayName: string;
  /** 0 for a root token that never expires. */
  ttl: number;
}

export interface RevokeResult {
  accessor: string;
  /** The status lookup-self answered after the revoke: 403 proves the token is gone. */
  lookupStatusAfter: number;
  /** Said before revoking: what is left to regain admin access. */
  warnings: string[];
}

/**
 * Looks the client's token up and confirms it is a root token.
 * @throws UsageError when it is not a root token (naming its policies, never the token); VaultHttpError 403 when the
 *   token is not valid at all.
 */
export async function lookupRootToken(client: VaultClient): Promise<TokenInfo> {
  let res: { data?: { accessor?: string; policies?: string[]; display_name?: string; ttl?: number } } | undefined;
  try {
    res = await client.read("auth/token/lookup-self");
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 403) {
      throw new UsageError("the token is not valid (lookup-self: 403): nothing to revoke", { cause: err });
    }
    throw err;
  }
  const d = res?.data ?? {};
  const info: TokenInfo = {
    accessor: d.accessor ?? "",
    policies: d.policies ?? [],
    displayName: d.display_name ?? "",
    ttl: d.ttl ?? 0,
  };
  if (!info.policies.includes("root")) {
    throw new UsageError(
      `refusing to revoke: the token is not a root token (policies: ${info.policies.join(", ") || "none"})`,
      {
        hint: "root revoke is for the root token from init or generate-root; revoke other tokens with vault token revoke",
      },
    );
  }
  return info;
}

/**
 * Everything checked before a revoke: the token is root, and what will be left to regain admin access (warnings).
 * @throws like lookupRootToken.
 */
export async function assessRootRevoke(client: VaultClient): Promise<{ info: TokenInfo; warnings: string[] }> {
  const info = await lookupRootToken(client);
  const warnings: string[] = [];
  const auth = await client.read<{ data?: Record<string, { type?: string }> } & Record<string, unknown>>("sys/auth");
  const table = (auth?.data ?? auth ?? {}) as Record<string, { type?: string }>;
  const others = Object.entries(table).filter(
    ([k, v]) => k.endsWith("/") && typeof v === "object" && v !== null && v.type !== "token",
  );
  if (others.length === 0) {
    warnings.push("no auth method besides token/ is enabled: after this, nobody can log in to administer the server");
  }
  warnings.push(await wayBackToRoot(client));
  return { info, warnings };
}

/**
 * What regaining root (and rekeying) takes on this server: a quorum always; where the unauthenticated endpoints are off
 * (OpenBao: generate-root since 2.5.3, rekey since 2.5.0, by default; docs/servers.md: 404/405 to a GET of the status,
 * which changes nothing), also a token allowed on the authenticated paths that outlives this one, or the listener
 * option and a restart. Never fails the revoke.
 */
async function wayBackToRoot(client: VaultClient): Promise<string> {
  const quorum =
    "after revocation the only way back to root is generate-root, which needs a quorum of unseal (or recovery) key holders";
  const off = async (statusPath: string) => {
    try {
      await probeQuorumStatus(client, statusPath, "unauthenticated");
      return false;
    } catch (err) {
      return err instanceof VaultHttpError && (err.status === 404 || err.status === 405);
    }
  };
  const kind = (await client.sealStatus().catch(() => undefined))?.type === "shamir" ? "unseal" : "recovery";
  const rekey = rekeyEndpoints(kind);
  const [rootOff, rekeyOff] = await Promise.all([
    off(GENERATE_ROOT_ENDPOINTS.unauthenticated.statusPath),
    off(rekey.unauthenticated.statusPath),
  ]);
  if (!rootOff && !rekeyOff) return quorum;
  const gone = [
    ...(rootOff ? [`root generation (/v1/${GENERATE_ROOT_ENDPOINTS.authenticated.base}/*)`] : []),
    ...(rekeyOff ? [`rekey (/v1/${rekey.authenticated.base}/*)`] : []),
  ];
  const options = [
    ...(rootOff ? [`${GENERATE_ROOT_ENDPOINTS.listenerOption} = false`] : []),
    ...(rekeyOff ? [`${rekey.listenerOption} = false`] : []),
  ];
  return (
    `${quorum}. On this server the unauthenticated endpoints are off, so ${gone.join(" and ")} ` +
    `${gone.length > 1 ? "each need" : "needs"} the quorum AND a token allowed on that path: make one BEFORE revoking, ` +
    "not as a child of this token (an orphan token of a policy allowing only those paths, or a login through an auth " +
    `method); without one, the way back is ${options.join(" and ")} on a listener (ideally a temporary loopback one) ` +
    "and a restart of the node, which a Shamir node then needs unsealing for (docs/ceremonies.md, Break-glass)"
  );
}

export interface RevokeOptions {
  /** Refuse while no audit device is enabled (after the revoke, nobody could add one without a quorum). */
  requireAudit?: boolean;
}

/** Paths of the enabled audit devices (sys/audit; needs sudo, which a root token has). */
export async function enabledAuditDevices(client: VaultClient): Promise<string[]> {
  const res = await client.read<{ data?: Record<string, unknown> } & Record<string, unknown>>("sys/audit");
  const table = (res?.data ?? res ?? {}) as Record<string, unknown>;
  return Object.keys(table).filter((k) => k.endsWith("/"));
}

/**
 * Revokes the client's root token and proves it is gone. Afterwards the client has no token.
 * @throws UsageError when the token is not root, or (requireAudit) when no audit device is enabled: nothing revoked;
 *   SealkeeperError when the token still answers lookup-self after the revoke.
 */
export async function revokeRootToken(client: VaultClient, opts: RevokeOptions = {}): Promise<RevokeResult> {
  const { info, warnings } = await assessRootRevoke(client);
  if (opts.requireAudit && (await enabledAuditDevices(client)).length === 0) {
    throw new UsageError("refusing to revoke the root token: no audit device is enabled", {
      hint:
        "add an audit device under audit: in the spec and apply (on OpenBao: an audit stanza in the server config), " +
        "or pass --allow-no-audit to revoke anyway",
    });
  }
  await client.write("auth/token/revoke-self", {});
  const after = await client.request("GET", "auth/token/lookup-self", { accept: [403] });
  if (after.status !== 403) {
    throw new SealkeeperError(`the token (accessor ${info.accessor}) still answers lookup-self after revoke-self`);
  }
  client.setToken(undefined);
  return { accessor: info.accessor, lookupStatusAfter: after.status, warnings };
}
