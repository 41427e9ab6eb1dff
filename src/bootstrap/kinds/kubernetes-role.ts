/**
 * Kubernetes auth roles (`auth[].roles` of a kubernetes method, and the ones `apps` generate). ROLE_FIELDS is the one
 * list of the fields sealkeeper manages: the spec's schema, the resolved RoleSpec, the write body and the drift
 * comparison all read it (role-fields.ts).
 */
import { z } from "zod";
import type { KeyPath, YamlLines } from "../../util/yaml-schema.js";
import { stringList } from "./context.js";
import {
  authRoleKind,
  type FieldValues,
  field,
  type RoleBase,
  resolveRoleFields,
  roleBodyOf,
  roleError,
  roleShape,
  TOKEN_FIELDS,
} from "./role-fields.js";

export type { ObservedRole } from "./role-fields.js";

/** Every kubernetes role field sealkeeper manages, in the order of the write body. */
export const ROLE_FIELDS = {
  bound_service_account_names: field({ schema: stringList, default: [], set: true, required: true }),
  bound_service_account_namespaces: field({ schema: stringList.optional(), default: [], set: true, required: true }),
  bound_service_account_namespace_selector: field({ schema: z.string().optional(), default: "" }),
  audience: field({ schema: z.string().optional(), default: "" }),
  alias_name_source: field({
    schema: z.enum(["serviceaccount_uid", "serviceaccount_name"]).optional(),
    default: "serviceaccount_uid",
  }),
  ...TOKEN_FIELDS,
};

/** A kubernetes role, resolved. */
export type RoleSpec = FieldValues<typeof ROLE_FIELDS> & RoleBase;

export const roleSchema = z.strictObject(roleShape(ROLE_FIELDS));
export type RawRole = z.infer<typeof roleSchema>;

/** Resolves `auth[i].roles[j]` (at `path`) of the kubernetes auth method at `authPath`. */
export function resolveRole(authPath: string, r: RawRole, path: KeyPath, src: YamlLines): RoleSpec {
  const role = resolveRoleFields<RoleSpec>(ROLE_FIELDS, authPath, r, path, src);
  if (role.bound_service_account_namespaces.length === 0 && !r.bound_service_account_namespace_selector) {
    roleError(
      src,
      path,
      "bound_service_account_namespaces",
      "a role needs bound_service_account_namespaces or bound_service_account_namespace_selector",
    );
  }
  return role;
}

/** The full body a role write sends: every managed field, defaults for the ones the spec omits. */
export function roleBody(r: RoleSpec): Record<string, unknown> {
  return roleBodyOf(ROLE_FIELDS, r);
}

export const kubernetesRoleKind = authRoleKind({
  name: "kubernetes role",
  types: ["kubernetes"],
  table: ROLE_FIELDS,
  roles: (spec) => spec.roles,
});
