/** External Secrets Operator settings (`eso:`): nothing on the server; manifests.ts renders ClusterSecretStores. */
import { z } from "zod";
import { kv2Mounts } from "./app.js";
import { httpUrl, mountPath, name, type SourceRef } from "./context.js";
import type { ResourceKind } from "./kind.js";

const clusterStoreSchema = z.strictObject({
  name,
  role: name,
  auth_mount: mountPath.default("kubernetes"),
  mount: mountPath.default("secret"),
  service_account: z.strictObject({ name: z.string().min(1), namespace: z.string().min(1) }).optional(),
});

export const esoSchema = z.strictObject({
  server: httpUrl,
  api_version: z.string().default("external-secrets.io/v1"),
  ca_provider: z
    .strictObject({
      type: z.enum(["Secret", "ConfigMap"]),
      name: z.string(),
      key: z.string(),
      namespace: z.string().optional(),
    })
    .optional(),
  cluster_secret_stores: z.array(clusterStoreSchema).default([]),
});

export interface ClusterStoreSpec {
  name: string;
  role: string;
  authPath: string;
  mount: string;
  serviceAccount: { name: string; namespace: string };
  source: SourceRef;
}

export interface EsoSpec {
  server: string;
  apiVersion: string;
  caProvider?: { type: string; name: string; key: string; namespace?: string };
  clusterStores: ClusterStoreSpec[];
}

export const esoKind: ResourceKind = {
  name: "eso",
  // a link, not a resolve: stores refer to roles, which must all be resolved and checked first
  link(raw, ctx, spec) {
    if (!raw.eso) return;
    const kv2 = kv2Mounts(spec);
    const clusterStores = raw.eso.cluster_secret_stores.map((s, i): ClusterStoreSpec => {
      const role = spec.roles.find((r) => r.authPath === s.auth_mount && r.name === s.role);
      if (!role) {
        return ctx.fail(["eso", "cluster_secret_stores", i, "role"], `role ${s.auth_mount}/${s.role} is not declared`);
      }
      const sa = s.service_account ?? {
        name: role.bound_service_account_names[0]!,
        namespace: role.bound_service_account_namespaces[0] ?? "default",
      };
      if (!kv2.has(s.mount)) ctx.fail(["eso", "cluster_secret_stores", i, "mount"], `${s.mount} is not a kv v2 mount`);
      return {
        name: s.name,
        role: s.role,
        authPath: s.auth_mount,
        mount: s.mount,
        serviceAccount: sa,
        source: ctx.at(["eso", "cluster_secret_stores", i]),
      };
    });
    spec.eso = {
      server: raw.eso.server,
      apiVersion: raw.eso.api_version,
      caProvider: raw.eso.ca_provider,
      clusterStores,
    };
  },
};
