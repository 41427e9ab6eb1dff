/**
 * Reads the live state a spec is about: mounts, auth methods, kubernetes configs and roles, policies. Reads only
 * (GET and LIST), concurrently with a small pool, so that a re-apply that changes nothing writes nothing.
 */
import type { VaultClient } from "../vault/client.js";
import type { ObservedK8sConfig, ObservedMount, ObservedRole, ObservedState } from "./plan.js";
import { runPool } from "./pool.js";
import type { BootstrapSpec } from "./spec.js";

export interface ObserveOptions {
  /** Requests in flight at once (default 8). */
  concurrency?: number;
}

type MountTable = Record<string, { type?: string; description?: string; options?: Record<string, string> | null }>;

/**
 * Observes what the spec manages (and, for purge, the names of what it does not).
 * @throws VaultHttpError (e.g. 403 without the rights to read sys/mounts) or VaultConnectionError.
 */
export async function observeState(
  client: VaultClient,
  spec: BootstrapSpec,
  opts: ObserveOptions = {},
): Promise<ObservedState> {
  const limit = opts.concurrency ?? 8;
  const [mountsRaw, authRaw, policyNames] = await Promise.all([
    client.read<{ data?: MountTable } & MountTable>("sys/mounts"),
    client.read<{ data?: MountTable } & MountTable>("sys/auth"),
    client.list("sys/policies/acl"),
  ]);
  const mounts = toMounts(mountsRaw);
  const auth = toMounts(authRaw);
  const observed: ObservedState = { mounts, auth, authConfigs: {}, roles: {}, policyNames, policies: {} };

  const existing = new Set(policyNames);
  const tasks: (() => Promise<void>)[] = [];
  for (const p of spec.policies) {
    if (!existing.has(p.name)) continue;
    tasks.push(async () => {
      const res = await client.read<{ data?: { policy?: string }; policy?: string }>(`sys/policies/acl/${p.name}`);
      if (res) observed.policies[p.name] = res.data?.policy ?? res.policy ?? "";
    });
  }
  // kubernetes auth methods the spec names, and for purge every other kubernetes auth method's role names
  const k8sPaths = Object.entries(auth)
    .filter(([, m]) => m.type === "kubernetes")
    .map(([path]) => path);
  const roleLists = await runPool(k8sPaths, limit, (path) => client.list(`auth/${path}/role`));
  const wantedRoles = new Set(spec.roles.map((r) => `${r.authPath}/${r.name}`));
  k8sPaths.forEach((path, i) => {
    const roles: Record<string, ObservedRole> = {};
    observed.roles[path] = roles;
    for (const name of roleLists[i]!) {
      roles[name] = {};
      if (!wantedRoles.has(`${path}/${name}`)) continue;
      tasks.push(async () => {
        const res = await client.read<{ data?: ObservedRole }>(`auth/${path}/role/${name}`);
        if (res?.data) roles[name] = res.data;
        else delete roles[name];
      });
    }
    if (spec.auth.some((a) => a.path === path && a.config)) {
      tasks.push(async () => {
        const res = await client.read<{ data?: Partial<ObservedK8sConfig> }>(`auth/${path}/config`);
        const d = res?.data;
        // an unconfigured kubernetes auth method answers with no data (or a 404): nothing to compare against
        if (d?.kubernetes_host) observed.authConfigs[path] = toK8sConfig(d);
      });
    }
  });
  await runPool(tasks, limit, (t) => t());
  return observed;
}

function toMounts(raw: ({ data?: MountTable } & MountTable) | undefined): Record<string, ObservedMount> {
  const table = (raw?.data ?? raw ?? {}) as MountTable;
  const out: Record<string, ObservedMount> = {};
  for (const [key, m] of Object.entries(table)) {
    if (!key.endsWith("/") || typeof m !== "object" || m === null || typeof m.type !== "string") continue;
    out[key.slice(0, -1)] = { type: m.type, description: m.description ?? "", options: { ...(m.options ?? {}) } };
  }
  return out;
}

function toK8sConfig(d: Partial<ObservedK8sConfig>): ObservedK8sConfig {
  return {
    kubernetes_host: d.kubernetes_host ?? "",
    kubernetes_ca_cert: d.kubernetes_ca_cert ?? "",
    issuer: d.issuer ?? "",
    disable_iss_validation: d.disable_iss_validation ?? false,
    disable_local_ca_jwt: d.disable_local_ca_jwt ?? false,
    use_annotations_as_alias_metadata: d.use_annotations_as_alias_metadata ?? false,
    pem_keys: d.pem_keys ?? [],
    token_reviewer_jwt_set: d.token_reviewer_jwt_set ?? false,
  };
}
