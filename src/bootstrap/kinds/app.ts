/**
 * Apps (`apps:`): shorthand for one read-only policy and one kubernetes role per environment. Resolution expands them
 * into policies and roles, which the policy and role kinds then plan like hand-written ones.
 */
import { z } from "zod";
import { parseTtlSeconds } from "../duration.js";
import { renderPolicyHcl } from "../policy-hcl.js";
import type { BootstrapSpec } from "../spec.js";
import { mountPath, name, type SourceRef, ttl } from "./context.js";
import type { ResourceKind } from "./kind.js";

const envSchema = z.strictObject({
  name,
  namespace: z.string().min(1).optional(),
  service_account: z.string().min(1).optional(),
  secrets: z.array(z.string().min(1)).min(1).optional(),
});

export const appSchema = z.strictObject({
  name,
  mount: mountPath.default("secret"),
  auth_mount: mountPath.default("kubernetes"),
  service_account: z.string().min(1).optional(),
  secrets: z.array(z.string().min(1)).min(1).optional(),
  environments: z.array(envSchema).min(1),
  audience: z.string().optional(),
  token_ttl: ttl.default("1h"),
  token_max_ttl: ttl.default("4h"),
  keys: z.record(z.string(), z.string()).optional(),
  refresh_interval: z.string().default("1h"),
});
export type RawApp = z.infer<typeof appSchema>;

/** One environment of an app, expanded: the KV paths it reads and the role/policy that grant them. */
export interface AppEnvironment {
  app: string;
  environment: string;
  namespace: string;
  serviceAccount: string;
  mount: string;
  authPath: string;
  /** Secret names relative to the mount, e.g. production/my-app. */
  secrets: string[];
  /** ACL paths, e.g. secret/data/production/my-app. */
  aclPaths: string[];
  role: string;
  policy: string;
  keys?: Record<string, string>;
  refreshInterval: string;
  source: SourceRef;
}

/** Paths of the KV v2 mounts a spec declares. */
export function kv2Mounts(spec: Pick<BootstrapSpec, "mounts">): Set<string> {
  return new Set(spec.mounts.filter((m) => m.type === "kv" && m.options?.version === "2").map((m) => m.path));
}

export const appKind: ResourceKind = {
  name: "app",
  resolve(raw, ctx, spec) {
    const kv2 = kv2Mounts(spec);
    const k8s = new Set(spec.auth.filter((a) => a.type === "kubernetes").map((a) => a.path));
    const seen = new Set<string>();
    raw.apps.forEach((a, i) => {
      if (seen.has(a.name)) ctx.fail(["apps", i, "name"], `app ${a.name} is declared twice`);
      seen.add(a.name);
      if (!kv2.has(a.mount)) ctx.fail(["apps", i, "mount"], `${a.mount} is not a kv v2 mount declared under mounts`);
      if (!k8s.has(a.auth_mount)) {
        ctx.fail(["apps", i, "auth_mount"], `${a.auth_mount} is not a kubernetes auth method declared under auth`);
      }
      const seenEnv = new Set<string>();
      a.environments.forEach((e, j) => {
        if (seenEnv.has(e.name)) ctx.fail(["apps", i, "environments", j, "name"], `environment ${e.name} is repeated`);
        seenEnv.add(e.name);
        const secrets = (e.secrets ?? a.secrets ?? [a.name]).map((s) => `${e.name}/${s.replace(/^\/+|\/+$/g, "")}`);
        for (const s of secrets) {
          if (/[*+]/.test(s)) ctx.fail(["apps", i, "secrets"], `app secrets name exact paths, not globs: ${s}`);
        }
        const aclPaths = secrets.map((s) => `${a.mount}/data/${s}`);
        const roleName = `${a.name}-${e.name}`;
        const policyName = `${a.name}-${e.name}-read`;
        const source = ctx.at(["apps", i, "environments", j]);
        const serviceAccount = e.service_account ?? a.service_account ?? a.name;
        const namespace = e.namespace ?? e.name;
        spec.apps.push({
          app: a.name,
          environment: e.name,
          namespace,
          serviceAccount,
          mount: a.mount,
          authPath: a.auth_mount,
          secrets,
          aclPaths,
          role: roleName,
          policy: policyName,
          keys: a.keys,
          refreshInterval: a.refresh_interval,
          source,
        });
        spec.policies.push({
          name: policyName,
          text: renderPolicyHcl(aclPaths.map((p) => ({ path: p, capabilities: ["read"] }))),
          app: `${a.name}/${e.name}`,
          readOnlyPaths: aclPaths,
          source,
        });
        spec.roles.push({
          authPath: a.auth_mount,
          name: roleName,
          bound_service_account_names: [serviceAccount],
          bound_service_account_namespaces: [namespace],
          ...(a.audience !== undefined ? { audience: a.audience } : {}),
          token_policies: [policyName],
          token_ttl: parseTtlSeconds(a.token_ttl),
          token_max_ttl: parseTtlSeconds(a.token_max_ttl),
          app: `${a.name}/${e.name}`,
          fieldLines: {},
          source,
        });
      });
    });
  },
};
