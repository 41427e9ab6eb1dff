/**
 * Kubernetes auth roles (`auth[].roles`, and the ones `apps` generate). ROLE_FIELDS is the one list of the fields
 * sealkeeper manages: the spec's schema, the resolved RoleSpec, the write body and the drift comparison all read it.
 */
import { z } from "zod";
import { formatKeyPath, type KeyPath, YamlSpecError as SpecError, type YamlLines } from "../../util/yaml-schema.js";
import { parseTtlSeconds } from "../duration.js";
import { runPool } from "../pool.js";
import {
  type FieldChange,
  name,
  type PlannedChange,
  type PlannedRequest,
  type SourceRef,
  sameSet,
  sameValue,
  stringList,
  ttl,
} from "./context.js";
import type { ResourceKind } from "./kind.js";

interface RoleField {
  /** The spec's schema for the field. */
  schema: z.ZodType;
  /** The server's value when the field is unset: a field the spec omits is reset to it. */
  default: unknown;
  /** A list compared as a set (the server may reorder it or return it comma-joined). */
  set?: true;
  /** A duration: given as 1h or seconds, resolved and compared in seconds. */
  duration?: true;
  /** Always present on a resolved role (resolution fills the default). */
  required?: true;
}

const field = <const F extends RoleField>(f: F): F => f;

/** Every role field sealkeeper manages, in the order of the write body. */
export const ROLE_FIELDS = {
  bound_service_account_names: field({ schema: stringList, default: [], set: true, required: true }),
  bound_service_account_namespaces: field({ schema: stringList.optional(), default: [], set: true, required: true }),
  bound_service_account_namespace_selector: field({ schema: z.string().optional(), default: "" }),
  audience: field({ schema: z.string().optional(), default: "" }),
  alias_name_source: field({
    schema: z.enum(["serviceaccount_uid", "serviceaccount_name"]).optional(),
    default: "serviceaccount_uid",
  }),
  token_policies: field({ schema: z.array(name).default([]), default: [], set: true, required: true }),
  token_ttl: field({ schema: ttl.optional(), default: 0, duration: true }),
  token_max_ttl: field({ schema: ttl.optional(), default: 0, duration: true }),
  token_explicit_max_ttl: field({ schema: ttl.optional(), default: 0, duration: true }),
  token_period: field({ schema: ttl.optional(), default: 0, duration: true }),
  token_type: field({
    schema: z.enum(["default", "service", "batch", "default-service", "default-batch"]).optional(),
    default: "default",
  }),
  token_no_default_policy: field({ schema: z.boolean().optional(), default: false }),
  token_num_uses: field({ schema: z.number().int().nonnegative().optional(), default: 0 }),
  token_bound_cidrs: field({ schema: z.array(z.string()).optional(), default: [], set: true }),
};

type Fields = typeof ROLE_FIELDS;
type FieldName = keyof Fields;
type Resolved<F> = F extends { duration: true }
  ? number
  : F extends { schema: infer S extends z.ZodType }
    ? NonNullable<z.output<S>>
    : never;
type RequiredName = { [K in FieldName]: Fields[K] extends { required: true } ? K : never }[FieldName];

/** The managed fields of a resolved role: durations in seconds (Vault's read-back unit). */
export type RoleFieldValues = { [K in RequiredName]: Resolved<Fields[K]> } & {
  [K in Exclude<FieldName, RequiredName>]?: Resolved<Fields[K]>;
};

/** A kubernetes role, resolved. */
export type RoleSpec = RoleFieldValues & {
  authPath: string;
  name: string;
  /** The app that generated it, when it came from `apps`. */
  app?: string;
  /** Lines of each field, for lint. */
  fieldLines: Record<string, number>;
  source: SourceRef;
};

const FIELD_NAMES = Object.keys(ROLE_FIELDS) as FieldName[];
const entry = (k: FieldName): RoleField => ROLE_FIELDS[k];

export const roleSchema = z.strictObject({
  name,
  ...(Object.fromEntries(FIELD_NAMES.map((k) => [k, entry(k).schema])) as { [K in FieldName]: Fields[K]["schema"] }),
});
export type RawRole = z.infer<typeof roleSchema>;

/** Resolves `auth[i].roles[j]` (at `path`) of the auth method at `authPath`. */
export function resolveRole(authPath: string, r: RawRole, path: KeyPath, src: YamlLines): RoleSpec {
  const fieldLines: Record<string, number> = {};
  for (const key of Object.keys(r)) fieldLines[key] = src.keyLine([...path, key]);
  const values: Record<string, unknown> = {};
  for (const k of FIELD_NAMES) {
    const f = entry(k);
    const v = (r as Record<string, unknown>)[k];
    if (v !== undefined) values[k] = f.duration ? parseTtlSeconds(v as string | number) : v;
    else if (f.required) values[k] = structuredClone(f.default);
  }
  const role = {
    authPath,
    name: r.name,
    ...values,
    fieldLines,
    source: { file: src.file, line: src.line(path) },
  } as RoleSpec;
  if (role.bound_service_account_namespaces.length === 0 && !r.bound_service_account_namespace_selector) {
    throw new SpecError(
      src.file,
      src.line(path),
      formatKeyPath([...path, "bound_service_account_namespaces"]),
      "a role needs bound_service_account_namespaces or bound_service_account_namespace_selector",
    );
  }
  return role;
}

/** The full body a role write sends: every managed field, defaults for the ones the spec omits. */
export function roleBody(r: RoleSpec): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const k of FIELD_NAMES) {
    const v = (r as Record<string, unknown>)[k];
    body[k] = v === undefined ? entry(k).default : v;
  }
  return body;
}

export type ObservedRole = Record<string, unknown>;

export const kubernetesRoleKind: ResourceKind = {
  name: "kubernetes role",
  link(_raw, ctx, spec) {
    const declared = new Set(spec.auth.map((a) => a.path));
    const seen = new Set<string>();
    for (const r of spec.roles) {
      const key = `${r.authPath}/${r.name}`;
      if (seen.has(key)) throw new SpecError(ctx.file, r.source.line, "roles", `role ${key} is defined twice`);
      seen.add(key);
      if (!declared.has(r.authPath)) {
        throw new SpecError(
          ctx.file,
          r.source.line,
          "roles",
          `role ${r.name}: auth method ${r.authPath} is not declared`,
        );
      }
    }
  },
  async observe({ client, spec, observed, limit, queue }) {
    // kubernetes auth methods the spec names, and for purge every other kubernetes auth method's role names
    const paths = Object.entries(observed.auth)
      .filter(([, m]) => m.type === "kubernetes")
      .map(([path]) => path);
    const lists = await runPool(paths, limit, (path) => client.list(`auth/${path}/role`));
    const wanted = new Set(spec.roles.map((r) => `${r.authPath}/${r.name}`));
    paths.forEach((path, i) => {
      const roles: Record<string, ObservedRole> = {};
      observed.roles[path] = roles;
      for (const roleName of lists[i]!) {
        roles[roleName] = {};
        if (!wanted.has(`${path}/${roleName}`)) continue;
        queue(async () => {
          const res = await client.read<{ data?: ObservedRole }>(`auth/${path}/role/${roleName}`);
          if (res?.data) roles[roleName] = res.data;
          else delete roles[roleName];
        });
      }
    });
  },
  plan(spec, observed, out) {
    for (const r of spec.roles) {
      const have = observed.auth[r.authPath] ? observed.roles[r.authPath]?.[r.name] : undefined;
      const change = planRole(r, have);
      if (change) out.changes.push(change);
    }
  },
  purge(spec, observed, out) {
    // roles of auth methods the spec does not name go with their auth method
    const specAuthPaths = new Set(spec.auth.map((a) => a.path));
    const wanted = new Set(spec.roles.map((r) => `${r.authPath}/${r.name}`));
    for (const [authPath, roles] of Object.entries(observed.roles)) {
      if (!specAuthPaths.has(authPath)) continue;
      for (const roleName of Object.keys(roles)) {
        if (wanted.has(`${authPath}/${roleName}`)) continue;
        out.changes.push({
          id: `role ${authPath}/${roleName}`,
          kind: "role",
          action: "delete",
          phase: 3,
          fields: [],
          requests: [{ method: "DELETE", path: `auth/${authPath}/role/${roleName}` }],
        });
      }
    }
  },
};

function planRole(r: RoleSpec, have: ObservedRole | undefined): PlannedChange | undefined {
  const body = roleBody(r);
  const id = `role ${r.authPath}/${r.name}`;
  const request: PlannedRequest = { method: "POST", path: `auth/${r.authPath}/role/${r.name}`, body };
  const durationFlag = (k: string) => (entry(k as FieldName).duration ? { duration: true } : {});
  if (!have) {
    const fields = Object.entries(body)
      .filter(([k, v]) => !sameValue(v, entry(k as FieldName).default) || k === "token_policies")
      .map(([f, after]) => ({ field: f, after, ...durationFlag(f) }));
    return { id, kind: "role", action: "create", phase: 3, fields, requests: [request] };
  }
  const fields: FieldChange[] = [];
  for (const [f, after] of Object.entries(body)) {
    const before = normalizeObserved(f as FieldName, have[f]);
    const same = entry(f as FieldName).set ? sameSet(before, after) : sameValue(before, after);
    if (!same) fields.push({ field: f, before, after, ...durationFlag(f) });
  }
  if (fields.length === 0) return undefined;
  return { id, kind: "role", action: "update", phase: 3, fields, requests: [request] };
}

function normalizeObserved(k: FieldName, v: unknown): unknown {
  if (v === undefined || v === null) return entry(k).default;
  if (entry(k).set && typeof v === "string") return v === "" ? [] : v.split(",");
  return v;
}
