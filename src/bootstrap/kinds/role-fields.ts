/**
 * Auth roles of every type (kubernetes, jwt/oidc, approle) as one table of fields each: the table gives the spec's
 * schema, the resolved role's type, the write body (every managed field; a field the spec omits is reset to the
 * server's default) and the drift comparison. `authRoleKind` turns a table into the role kind's hooks.
 */
import { z } from "zod";
import { formatKeyPath, type KeyPath, YamlSpecError as SpecError, type YamlLines } from "../../util/yaml-schema.js";
import { parseTtlSeconds } from "../duration.js";
import { runPool } from "../pool.js";
import type { BootstrapSpec } from "../spec.js";
import {
  type FieldChange,
  name,
  type PlannedChange,
  type PlannedRequest,
  type SourceRef,
  sameSet,
  sameValue,
  ttl,
} from "./context.js";
import type { ResourceKind } from "./kind.js";

export interface RoleField {
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
  /** Written, but never returned by the server: not compared. */
  writeOnly?: true;
  /** CIDR blocks: a single address's /32 (/128) compares equal to the bare address, as the server returns it. */
  cidrs?: true;
}

const bareHost = (c: unknown) =>
  String(c)
    .replace(/\/32$/, "")
    .replace(/(:[0-9a-fA-F]*)\/128$/, "$1");

export const field = <const F extends RoleField>(f: F): F => f;

/** The token_* fields every auth role type shares. */
export const TOKEN_FIELDS = {
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
  token_bound_cidrs: field({ schema: z.array(z.string()).optional(), default: [], set: true, cidrs: true }),
};

type Resolved<F> = F extends { duration: true }
  ? number
  : F extends { schema: infer S extends z.ZodType }
    ? NonNullable<z.output<S>>
    : never;
type RequiredName<T> = { [K in keyof T]: T[K] extends { required: true } ? K : never }[keyof T];

/** The managed fields of a resolved role, from its table: durations in seconds (the server's read-back unit). */
export type FieldValues<T> = { [K in RequiredName<T>]: Resolved<T[K]> } & {
  [K in Exclude<keyof T, RequiredName<T>>]?: Resolved<T[K]>;
};

/** What every resolved role has besides its fields. */
export interface RoleBase {
  authPath: string;
  name: string;
  token_policies: string[];
  token_no_default_policy?: boolean;
  /** The app that generated it, when it came from `apps`. */
  app?: string;
  /** Lines of each field, for lint. */
  fieldLines: Record<string, number>;
  source: SourceRef;
}

/** The zod shape of a table's fields (with `name`). */
export function roleShape<T extends Record<string, RoleField>>(table: T) {
  return {
    name,
    ...(Object.fromEntries(Object.entries(table).map(([k, f]) => [k, f.schema])) as { [K in keyof T]: T[K]["schema"] }),
  };
}

/** Resolves one raw role (at `path`) of the auth method at `authPath` against its table. */
export function resolveRoleFields<R>(
  table: Record<string, RoleField>,
  authPath: string,
  raw: { name: string } & Record<string, unknown>,
  path: KeyPath,
  src: YamlLines,
): R {
  const fieldLines: Record<string, number> = {};
  for (const key of Object.keys(raw)) fieldLines[key] = src.keyLine([...path, key]);
  const values: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(table)) {
    const v = raw[k];
    if (v !== undefined) values[k] = f.duration ? parseTtlSeconds(v as string | number) : v;
    else if (f.required) values[k] = structuredClone(f.default);
  }
  return { authPath, name: raw.name, ...values, fieldLines, source: { file: src.file, line: src.line(path) } } as R;
}

/** The full body a role write sends: every managed field, defaults for the ones the spec omits. */
export function roleBodyOf(table: Record<string, RoleField>, r: object): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(table)) {
    const v = (r as Record<string, unknown>)[k];
    body[k] = v === undefined ? f.default : v;
  }
  return body;
}

/** A role as the server returned it. */
export type ObservedRole = Record<string, unknown>;

function planRoleFields(
  table: Record<string, RoleField>,
  r: RoleBase,
  have: ObservedRole | undefined,
): PlannedChange | undefined {
  const body = roleBodyOf(table, r);
  const id = `role ${r.authPath}/${r.name}`;
  const request: PlannedRequest = { method: "POST", path: `auth/${r.authPath}/role/${r.name}`, body };
  const durationFlag = (k: string) => (table[k]!.duration ? { duration: true } : {});
  if (!have) {
    const fields = Object.entries(body)
      .filter(([k, v]) => !sameValue(v, table[k]!.default) || k === "token_policies")
      .map(([f, after]) => ({ field: f, after, ...durationFlag(f) }));
    return { id, kind: "role", action: "create", phase: 3, fields, requests: [request] };
  }
  const fields: FieldChange[] = [];
  for (const [f, after] of Object.entries(body)) {
    const def = table[f]!;
    if (def.writeOnly) continue;
    const v = have[f];
    let before = v === undefined || v === null ? def.default : v;
    if (def.set && typeof before === "string") before = before === "" ? [] : before.split(",");
    const norm = (x: unknown) => (def.cidrs && Array.isArray(x) ? x.map(bareHost) : x);
    const same = def.set ? sameSet(norm(before), norm(after)) : sameValue(before, after);
    if (!same) fields.push({ field: f, before, after, ...durationFlag(f) });
  }
  if (fields.length === 0) return undefined;
  return { id, kind: "role", action: "update", phase: 3, fields, requests: [request] };
}

/**
 * The hooks of a role kind: `roles(spec)` are its resolved roles, `types` the auth method types they live on.
 * Roles of every type are observed into observed.roles by auth path (paths are unique across types).
 */
export function authRoleKind(opts: {
  name: string;
  types: readonly string[];
  table: Record<string, RoleField>;
  roles(spec: BootstrapSpec): RoleBase[];
}): ResourceKind {
  const isMine = (type: string | undefined) => type !== undefined && opts.types.includes(type);
  return {
    name: opts.name,
    link(_raw, ctx, spec) {
      const declared = new Map(spec.auth.map((a) => [a.path, a.type]));
      const seen = new Set<string>();
      for (const r of opts.roles(spec)) {
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
      // auth methods of these types the spec names, and for purge every other one's role names
      const paths = Object.entries(observed.auth)
        .filter(([, m]) => isMine(m.type))
        .map(([path]) => path);
      const lists = await runPool(paths, limit, (path) => client.list(`auth/${path}/role`));
      const wanted = new Set(opts.roles(spec).map((r) => `${r.authPath}/${r.name}`));
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
      for (const r of opts.roles(spec)) {
        const have = observed.auth[r.authPath] ? observed.roles[r.authPath]?.[r.name] : undefined;
        const change = planRoleFields(opts.table, r, have);
        if (change) out.changes.push(change);
      }
    },
    purge(spec, observed, out) {
      // roles of auth methods the spec does not name go with their auth method
      const mine = new Set(spec.auth.filter((a) => isMine(a.type)).map((a) => a.path));
      const wanted = new Set(opts.roles(spec).map((r) => `${r.authPath}/${r.name}`));
      for (const [authPath, roles] of Object.entries(observed.roles)) {
        if (!mine.has(authPath) || !isMine(observed.auth[authPath]?.type)) continue;
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
}

/** A SpecError at `path` for a role (schema-level checks a table cannot express). */
export function roleError(src: YamlLines, path: KeyPath, key: string, detail: string): never {
  throw new SpecError(src.file, src.line(path), formatKeyPath([...path, key]), detail);
}
