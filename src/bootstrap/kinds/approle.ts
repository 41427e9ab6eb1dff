/**
 * AppRole roles (`auth[].roles` of an approle method): machines outside Kubernetes. A role's secret_id is never
 * printed: `bootstrap apply --secret-id` delivers a new one sealed to a recipient (secret-id.ts).
 */
import { z } from "zod";
import type { KeyPath, YamlLines } from "../../util/yaml-schema.js";
import { ttl } from "./context.js";
import {
  authRoleKind,
  type FieldValues,
  field,
  type RoleBase,
  resolveRoleFields,
  roleShape,
  TOKEN_FIELDS,
} from "./role-fields.js";

/** Every approle role field sealkeeper manages, in the order of the write body. */
export const APPROLE_FIELDS = {
  bind_secret_id: field({ schema: z.boolean().optional(), default: true }),
  secret_id_bound_cidrs: field({ schema: z.array(z.string().min(1)).optional(), default: [], set: true, cidrs: true }),
  secret_id_num_uses: field({ schema: z.number().int().nonnegative().optional(), default: 0 }),
  secret_id_ttl: field({ schema: ttl.optional(), default: 0, duration: true }),
  ...TOKEN_FIELDS,
};

export type AppRoleSpec = FieldValues<typeof APPROLE_FIELDS> & RoleBase;

export const appRoleSchema = z.strictObject(roleShape(APPROLE_FIELDS));

export function resolveAppRole(authPath: string, raw: unknown, path: KeyPath, src: YamlLines): AppRoleSpec {
  const r = src.validate(appRoleSchema, raw, path);
  return resolveRoleFields<AppRoleSpec>(APPROLE_FIELDS, authPath, r, path, src);
}

export const appRoleKind = authRoleKind({
  name: "approle role",
  types: ["approle"],
  table: APPROLE_FIELDS,
  roles: (spec) => spec.appRoles,
});
