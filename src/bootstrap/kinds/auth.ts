/**
 * Auth methods (`auth:`): enabled at sys/auth/<path>, tuned in place, disabled by `--purge`. A kubernetes method's
 * config and roles are their own kinds (kubernetes-config.ts, kubernetes-role.ts); this file resolves the section and
 * hands them its entries.
 */
import { z } from "zod";
import { resolveAppRole } from "./approle.js";
import { fieldsOf, mountPath, type SourceRef } from "./context.js";
import { type JwtConfigSpec, resolveJwtConfig, resolveJwtRole } from "./jwt.js";
import type { ResourceKind } from "./kind.js";
import { type KubernetesConfigSpec, k8sConfigSchema, resolveK8sConfig } from "./kubernetes-config.js";
import { resolveRole, roleSchema } from "./kubernetes-role.js";

/** config and roles are validated by the schema of the method's type (kubernetes, jwt, approle) when resolved. */
export const authSchema = z.strictObject({
  path: mountPath,
  type: z.string().min(1),
  description: z.string().optional(),
  config: z.looseObject({}).optional(),
  roles: z.array(z.looseObject({})).default([]),
});

export interface AuthSpec {
  path: string;
  type: string;
  description?: string;
  /** A kubernetes method's config. */
  config?: KubernetesConfigSpec;
  /** A jwt method's config. */
  jwtConfig?: JwtConfigSpec;
  source: SourceRef;
}

/** The auth method types whose config and roles the spec manages. */
const WITH_CONFIG = new Set(["kubernetes", "jwt"]);
const WITH_ROLES = new Set(["kubernetes", "jwt", "approle"]);

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
      if ((a.config && !WITH_CONFIG.has(a.type)) || (a.roles.length > 0 && !WITH_ROLES.has(a.type))) {
        ctx.fail(
          ["auth", i, "type"],
          `${a.config && !WITH_CONFIG.has(a.type) ? "config is supported for kubernetes and jwt auth" : "roles are supported for kubernetes, jwt and approle auth"} only, not ${a.type}`,
        );
      }
      const at = ["auth", i, "config"];
      const entry: AuthSpec = { path: a.path, type: a.type, description: a.description, source: ctx.at(["auth", i]) };
      if (a.config && a.type === "kubernetes") {
        entry.config = resolveK8sConfig(ctx.src.validate(k8sConfigSchema, a.config, at), at, ctx);
      }
      if (a.config && a.type === "jwt") entry.jwtConfig = resolveJwtConfig(a.config, at, ctx);
      spec.auth.push(entry);
      a.roles.forEach((r, j) => {
        const path = ["auth", i, "roles", j];
        if (a.type === "kubernetes") {
          spec.roles.push(resolveRole(a.path, ctx.src.validate(roleSchema, r, path), path, ctx.src));
        } else if (a.type === "jwt") spec.jwtRoles.push(resolveJwtRole(a.path, r, path, ctx.src));
        else spec.appRoles.push(resolveAppRole(a.path, r, path, ctx.src));
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
