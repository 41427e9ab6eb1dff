/**
 * Auth methods (`auth:`): enabled at sys/auth/<path>, tuned in place, disabled by `--purge`. A kubernetes method's
 * config and roles are their own kinds (kubernetes-config.ts, kubernetes-role.ts); this file resolves the section and
 * hands them its entries.
 */
import { z } from "zod";
import { fieldsOf, mountPath, type SourceRef } from "./context.js";
import type { ResourceKind } from "./kind.js";
import { type KubernetesConfigSpec, k8sConfigSchema, resolveK8sConfig } from "./kubernetes-config.js";
import { resolveRole, roleSchema } from "./kubernetes-role.js";

export const authSchema = z.strictObject({
  path: mountPath,
  type: z.string().min(1),
  description: z.string().optional(),
  config: k8sConfigSchema.optional(),
  roles: z.array(roleSchema).default([]),
});

export interface AuthSpec {
  path: string;
  type: string;
  description?: string;
  config?: KubernetesConfigSpec;
  source: SourceRef;
}

/** Auth methods that are never disabled, purge or not. */
const PROTECTED_AUTH = new Set(["token"]);

export const authKind: ResourceKind = {
  name: "auth method",
  resolve(raw, ctx, spec) {
    const seen = new Set<string>();
    raw.auth.forEach((a, i) => {
      if (seen.has(a.path)) ctx.fail(["auth", i, "path"], `auth method ${a.path} is declared twice`);
      seen.add(a.path);
      if (a.path === "token") ctx.fail(["auth", i, "path"], "the token auth method is built in and cannot be managed");
      if (a.type !== "kubernetes" && (a.config || a.roles.length > 0)) {
        ctx.fail(["auth", i, "type"], `config and roles are supported for kubernetes auth only, not ${a.type}`);
      }
      const config = a.config ? resolveK8sConfig(a.config, ["auth", i, "config"], ctx) : undefined;
      spec.auth.push({ path: a.path, type: a.type, description: a.description, config, source: ctx.at(["auth", i]) });
      a.roles.forEach((r, j) => {
        spec.roles.push(resolveRole(a.path, r, ["auth", i, "roles", j], ctx.src));
      });
    });
  },
  plan(spec, observed, out) {
    for (const a of spec.auth) {
      const have = observed.auth[a.path];
      const id = `auth ${a.path}/`;
      if (!have) {
        const body: Record<string, unknown> = { type: a.type };
        if (a.description !== undefined) body.description = a.description;
        out.changes.push({
          id,
          kind: "auth",
          action: "create",
          phase: 1,
          fields: fieldsOf(body),
          requests: [{ method: "POST", path: `sys/auth/${a.path}`, body }],
        });
      } else if (have.type !== a.type) {
        out.conflicts.push(
          `${id} is of type ${have.type} on the server, not ${a.type}: disable it by hand or use --purge`,
        );
      } else if (a.description !== undefined && a.description !== have.description) {
        out.changes.push({
          id,
          kind: "auth",
          action: "update",
          phase: 1,
          fields: [{ field: "description", before: have.description, after: a.description }],
          requests: [{ method: "POST", path: `sys/auth/${a.path}/tune`, body: { description: a.description } }],
        });
      }
    }
  },
  purge(spec, observed, out) {
    const named = new Set(spec.auth.map((a) => a.path));
    for (const [path, mount] of Object.entries(observed.auth)) {
      if (named.has(path) || PROTECTED_AUTH.has(path) || mount.type === "token") continue;
      out.changes.push({
        id: `auth ${path}/`,
        kind: "auth",
        action: "delete",
        phase: 4,
        fields: [{ field: "type", before: mount.type }],
        requests: [{ method: "DELETE", path: `sys/auth/${path}` }],
      });
    }
  },
};
