/**
 * verifyBootstrap: proves least privilege on the live server. For every role in the spec it creates a short-lived
 * token carrying exactly that role's policies, asks the server (sys/capabilities-self, as that token) what it may do
 * on its own paths and on neighbouring ones (other apps, other environments, sys/), revokes the token, and compares
 * with what the spec grants. Any capability beyond the spec is an excess and fails verify.
 */
import { SealkeeperError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import type { RoleBase } from "./kinds/role-fields.js";
import { checkKubernetesAuth, type KubeAuthCheck } from "./kube-check.js";
import { parsePolicyHcl } from "./policy-hcl.js";
import { runPool } from "./pool.js";
import type { BootstrapSpec } from "./spec.js";

/** The authPath of an identity entity's row (`identity/entity/alice`): not an auth method. */
const ENTITY_PATH = "identity/entity";

/**
 * Every identity the spec defines: the kubernetes, jwt and approle roles, and each identity entity with its
 * effective policies (its own and those of every group the spec makes it a member of: what a token of any of its
 * logins gets as identity_policies, besides the role's own).
 */
export function specIdentities(spec: BootstrapSpec): RoleBase[] {
  const entities: RoleBase[] = spec.entities.map((e) => ({
    authPath: ENTITY_PATH,
    name: e.name,
    token_policies: [
      ...new Set([
        ...e.policies,
        ...spec.groups.filter((g) => g.memberEntities.includes(e.name)).flatMap((g) => g.policies),
      ]),
    ],
    token_no_default_policy: true,
    fieldLines: {},
    source: e.source,
  }));
  return [...spec.roles, ...spec.jwtRoles, ...spec.appRoles, ...entities];
}

export interface VerifyRow {
  role: string;
  path: string;
  /** own: a path the role's policies name exactly; neighbour: anything else probed. */
  kind: "own" | "neighbour";
  expected: string[];
  actual: string[];
  status: "ok" | "excess" | "missing";
}

export interface VerifyReport {
  ok: boolean;
  rows: VerifyRow[];
  /** The Kubernetes end of each kubernetes auth method (kube-check.ts); empty when not asked for. */
  kubernetes: KubeAuthCheck[];
}

export interface VerifyOptions {
  concurrency?: number;
  /** Lifetime of each probe token (they are revoked at once anyway). */
  probeTtl?: string;
  /**
   * Create the probe tokens through this token role (auth/token/create/ROLE) instead of auth/token/create: a token
   * that is not root may then verify, as long as the role allows the spec's policies (the verifier that
   * `bootstrap export --self-init` provisions).
   */
  tokenRole?: string;
  /**
   * Also check each kubernetes auth method's API server from here with the spec's host, CA and reviewer token
   * (kube-check.ts): a failing check fails verify; an unreachable API server is only reported.
   */
  kubernetes?: boolean;
}

type Grant = { pattern: string; caps: string[] };

/**
 * Runs the check for every role. The client's token must be able to create tokens with arbitrary policies (root, or
 * sudo on auth/token/create), or, with `tokenRole`, update on auth/token/create/ROLE for a role allowing them.
 * @throws VaultHttpError when a probe token cannot be created (e.g. 403 for a token that is not root).
 */
export async function verifyBootstrap(
  client: VaultClient,
  spec: BootstrapSpec,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const grantsByPolicy = new Map<string, Grant[]>();
  for (const p of spec.policies) {
    try {
      grantsByPolicy.set(
        p.name,
        parsePolicyHcl(p.text).map((r) => ({ pattern: r.path, caps: r.capabilities })),
      );
    } catch {
      grantsByPolicy.set(p.name, []);
    }
  }
  const grantsOf = (r: RoleBase) => r.token_policies.flatMap((p) => grantsByPolicy.get(p) ?? []);
  const exactOf = (grants: Grant[]) => grants.filter((g) => !/[*+]/.test(g.pattern)).map((g) => g.pattern);
  const identities = specIdentities(spec);
  const allExact = new Set(identities.flatMap((r) => exactOf(grantsOf(r))));
  for (const a of spec.apps) for (const p of a.aclPaths) allExact.add(p);

  const rowsPerRole = await runPool(identities, opts.concurrency ?? 8, async (role) => {
    const grants = grantsOf(role);
    const own = [...new Set(exactOf(grants))];
    const probes = new Set<string>(allExact);
    const app = spec.apps.find((a) => a.role === role.name && a.authPath === role.authPath);
    for (const p of own) {
      const m = /^([^/]+(?:\/[^/]+)*?)\/data\/(.+)$/.exec(p);
      if (m) probes.add(`${m[1]}/metadata/${m[2]}`);
    }
    if (app) {
      // the same secrets in every other environment of the same app
      for (const other of spec.apps.filter((a) => a.app === app.app && a !== app)) {
        for (const p of other.aclPaths) probes.add(p);
      }
      probes.add(`${app.mount}/data/${app.environment}/${app.app}-neighbour`);
    }
    probes.add("sys/mounts");
    probes.add("sys/auth");
    probes.add(`sys/policies/acl/${role.token_policies[0] ?? "default"}`);
    probes.add(
      role.authPath === ENTITY_PATH ? `identity/entity/name/${role.name}` : `auth/${role.authPath}/role/${role.name}`,
    );
    for (const p of own) probes.delete(p);
    const paths = [...own, ...probes];
    const actual = await probeCapabilities(client, role, paths, opts.probeTtl ?? "2m", opts.tokenRole);
    return paths.map((path): VerifyRow => {
      const kind = own.includes(path) ? "own" : "neighbour";
      const expected = expectedCaps(grants, path);
      const got = actual[path] ?? ["deny"];
      return {
        role: `${role.authPath}/${role.name}`,
        path,
        kind,
        expected,
        actual: got,
        status: compare(expected, got),
      };
    });
  });
  const rows = rowsPerRole.flat();
  const kubernetes = opts.kubernetes ? await checkKubernetesAuth(spec.auth) : [];
  return { ok: rows.every((r) => r.status === "ok") && kubernetes.every((k) => k.status !== "fail"), rows, kubernetes };
}

/** What the spec's rules grant on a path: the exact rule, else the longest matching glob (Vault's precedence, simplified). */
export function expectedCaps(grants: Grant[], path: string): string[] {
  const exact = grants.filter((g) => g.pattern === path);
  const chosen =
    exact.length > 0
      ? exact
      : (() => {
          const matching = grants.filter((g) => globMatches(g.pattern, path));
          const best = Math.max(-1, ...matching.map((g) => g.pattern.length));
          return matching.filter((g) => g.pattern.length === best);
        })();
  const caps = new Set(chosen.flatMap((g) => g.caps));
  if (caps.has("deny") || caps.size === 0) return ["deny"];
  return [...caps].sort();
}

function globMatches(pattern: string, path: string): boolean {
  if (!/[*+]/.test(pattern)) return false;
  const re = pattern
    .split("")
    .map((c, i) =>
      c === "+" ? "[^/]+" : c === "*" && i === pattern.length - 1 ? ".*" : c.replace(/[.*?^${}()|[\]\\]/g, "\\$&"),
    )
    .join("");
  return new RegExp(`^${re}$`).test(path);
}

function compare(expected: string[], actual: string[]): VerifyRow["status"] {
  const e = new Set(expected.filter((c) => c !== "deny"));
  const a = new Set(actual.filter((c) => c !== "deny"));
  if ([...a].some((c) => !e.has(c))) return "excess";
  if ([...e].some((c) => !a.has(c))) return "missing";
  return "ok";
}

/** Creates a token with exactly the role's policies, asks capabilities-self as that token, revokes it. */
async function probeCapabilities(
  client: VaultClient,
  role: RoleBase,
  paths: string[],
  ttl: string,
  tokenRole: string | undefined,
): Promise<Record<string, string[]>> {
  const createPath = tokenRole ? `auth/token/create/${tokenRole}` : "auth/token/create";
  const created = await client.write<{ auth?: { client_token?: string } }>(createPath, {
    policies: role.token_policies,
    no_default_policy: role.token_no_default_policy ?? false,
    ttl,
    renewable: false,
    display_name: `sealkeeper-verify-${role.name}`.slice(0, 60),
  });
  const token = created.auth?.client_token;
  if (!token) throw new SealkeeperError(`verify: the server returned no token for role ${role.name}`);
  const probe = client.withAddress(client.address);
  probe.setToken(token);
  try {
    // capabilities-self is granted by the default policy: a token without it is asked about through sys/capabilities
    const res = await (role.token_no_default_policy
      ? client.write<Record<string, unknown> & { data?: Record<string, unknown> }>("sys/capabilities", { token, paths })
      : probe.write<Record<string, unknown> & { data?: Record<string, unknown> }>("sys/capabilities-self", { paths }));
    const table = (res.data ?? res) as Record<string, unknown>;
    const out: Record<string, string[]> = {};
    for (const p of paths) {
      const v = table[p];
      out[p] = Array.isArray(v) ? v.map(String).sort() : ["deny"];
    }
    return out;
  } finally {
    // the probe token expires within minutes anyway: a failed revoke must not hide the result
    await (role.token_no_default_policy
      ? client.write("auth/token/revoke", { token })
      : probe.write("auth/token/revoke-self", {})
    ).catch(() => undefined);
    await probe.close();
  }
}

export function verifyToJson(report: VerifyReport): unknown {
  return report;
}
