/**
 * Identity entities and groups (`identity:`): policies attached to teams rather than to each role. An entity is a
 * person or a machine, with aliases that tie it to its logins (an alias names an auth method and the login's name
 * there: the JWT role's user_claim value, the Kubernetes service account's UID ...); an internal group names its
 * member entities and carries policies every member's tokens get (identity_policies).
 *
 * The server knows members by ID, and an entity or an auth method the same apply creates has no ID at plan time:
 * the group's `member_entity_ids` and an alias's `canonical_id` / `mount_accessor` are planned as references by
 * name (PlannedRequest.refs), which apply resolves just before it sends the request. Entities come in phase 2
 * (after the auth methods), aliases and groups in phase 3. Purge leaves entities and groups alone: deleting an
 * entity loses its aliases and the history of who it was.
 */
import { z } from "zod";
import { YamlSpecError as SpecError } from "../../util/yaml-schema.js";
import type { VaultClient } from "../../vault/client.js";
import { mountPath, name, type PlannedRequest, type PlanOutput, type SourceRef, sameSet } from "./context.js";
import type { ResourceKind } from "./kind.js";

const metadata = z.record(z.string(), z.string()).optional();

export const identitySchema = z.strictObject({
  entities: z
    .array(
      z.strictObject({
        name,
        policies: z.array(z.string().min(1)).default([]),
        metadata,
        aliases: z.array(z.strictObject({ mount: mountPath, name: z.string().min(1) })).default([]),
      }),
    )
    .default([]),
  groups: z
    .array(
      z.strictObject({
        name,
        policies: z.array(z.string().min(1)).default([]),
        member_entities: z.array(z.string().min(1)).default([]),
        metadata,
      }),
    )
    .default([]),
});

export interface EntitySpec {
  name: string;
  policies: string[];
  metadata: Record<string, string>;
  /** Each alias: the auth method's path (no slashes around it) and the login's name there. */
  aliases: { mount: string; name: string }[];
  source: SourceRef;
}

export interface GroupSpec {
  name: string;
  policies: string[];
  memberEntities: string[];
  metadata: Record<string, string>;
  source: SourceRef;
}

export interface ObservedEntity {
  id: string;
  policies: string[];
  metadata: Record<string, string>;
  /** mount_path is `auth/<path>/`. */
  aliases: { mountPath: string; name: string }[];
}

export interface ObservedGroup {
  id: string;
  type: string;
  policies: string[];
  memberEntityIds: string[];
  metadata: Record<string, string>;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
const record = (v: unknown): Record<string, string> =>
  v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])) : {};

export const identityKind: ResourceKind = {
  name: "identity",
  resolve(raw, ctx, spec) {
    raw.identity?.entities.forEach((e, i) => {
      spec.entities.push({
        name: e.name,
        policies: e.policies,
        metadata: e.metadata ?? {},
        aliases: e.aliases.map((a) => ({ mount: a.mount.replace(/^\/+|\/+$/g, ""), name: a.name })),
        source: ctx.at(["identity", "entities", i]),
      });
    });
    raw.identity?.groups.forEach((g, i) => {
      spec.groups.push({
        name: g.name,
        policies: g.policies,
        memberEntities: g.member_entities,
        metadata: g.metadata ?? {},
        source: ctx.at(["identity", "groups", i]),
      });
    });
  },
  link(_raw, _ctx, spec) {
    const entities = new Set<string>();
    for (const e of spec.entities) {
      if (entities.has(e.name)) fail(e.source, "identity.entities", `entity ${e.name} is defined twice`);
      entities.add(e.name);
      const aliasMounts = new Set<string>();
      for (const a of e.aliases) {
        // the server allows one alias per entity and auth method
        if (aliasMounts.has(a.mount)) {
          fail(e.source, "identity.entities", `entity ${e.name} has two aliases on auth method ${a.mount}`);
        }
        aliasMounts.add(a.mount);
      }
    }
    const groups = new Set<string>();
    for (const g of spec.groups) {
      if (groups.has(g.name)) fail(g.source, "identity.groups", `group ${g.name} is defined twice`);
      groups.add(g.name);
      for (const m of g.memberEntities) {
        if (!entities.has(m)) {
          fail(g.source, "identity.groups", `group ${g.name}: member entity ${m} is not in identity.entities`);
        }
      }
    }
  },
  observe({ client, spec, observed, queue }) {
    if (spec.entities.length === 0 && spec.groups.length === 0) return;
    observed.entities = {};
    observed.groups = {};
    for (const e of spec.entities) {
      queue(async () => {
        const res = await client.read<{ data?: Record<string, unknown> }>(`identity/entity/name/${e.name}`);
        const d = res?.data;
        if (!d) return;
        observed.entities![e.name] = {
          id: String(d.id),
          policies: strings(d.policies),
          metadata: record(d.metadata),
          aliases: (Array.isArray(d.aliases) ? d.aliases : []).map((a: Record<string, unknown>) => ({
            mountPath: String(a.mount_path ?? ""),
            name: String(a.name ?? ""),
          })),
        };
      });
    }
    for (const g of spec.groups) {
      queue(async () => {
        const res = await client.read<{ data?: Record<string, unknown> }>(`identity/group/name/${g.name}`);
        const d = res?.data;
        if (!d) return;
        observed.groups![g.name] = {
          id: String(d.id),
          type: String(d.type ?? ""),
          policies: strings(d.policies),
          memberEntityIds: strings(d.member_entity_ids),
          metadata: record(d.metadata),
        };
      });
    }
  },
  plan(spec, observed, out) {
    const entities = observed.entities ?? {};
    const groups = observed.groups ?? {};
    for (const e of spec.entities) {
      const have = entities[e.name];
      upsert(
        out,
        { id: `entity ${e.name}`, kind: "entity", phase: 2, exists: have !== undefined },
        [
          diff("policies", e.policies, have?.policies, sameSet),
          diff("metadata", e.metadata, have?.metadata, sameRecord),
        ],
        {
          method: "POST",
          path: `identity/entity/name/${e.name}`,
          body: { policies: e.policies, metadata: e.metadata },
        },
      );
      for (const a of e.aliases) {
        if (have?.aliases.some((x) => x.mountPath === `auth/${a.mount}/` && x.name === a.name)) continue;
        if (!observed.auth[a.mount] && !spec.auth.some((m) => m.path === a.mount)) {
          out.conflicts.push(
            `entity ${e.name}: alias ${a.name} names auth method ${a.mount}/, which neither the server nor the spec has`,
          );
          continue;
        }
        out.changes.push({
          id: `entity-alias ${a.mount}/${a.name}`,
          kind: "entity-alias",
          action: "create",
          phase: 3,
          fields: [
            { field: "entity", after: e.name },
            { field: "name", after: a.name },
            { field: "mount", after: `${a.mount}/` },
          ],
          requests: [
            {
              method: "POST",
              path: "identity/entity-alias",
              body: { name: a.name },
              refs: [
                { field: "canonical_id", refs: [{ entity: e.name }] },
                { field: "mount_accessor", refs: [{ authAccessor: a.mount }] },
              ],
            },
          ],
        });
      }
    }
    for (const g of spec.groups) {
      const have = groups[g.name];
      if (have && have.type !== "internal") {
        out.conflicts.push(`group ${g.name} is an ${have.type} group on the server; the spec declares an internal one`);
        continue;
      }
      // members compare by name: an ID the server lists that no observed spec entity has is someone else
      const idToName = new Map(Object.entries(entities).map(([n, x]) => [x.id, n]));
      upsert(
        out,
        { id: `group ${g.name}`, kind: "group", phase: 3, exists: have !== undefined },
        [
          diff("policies", g.policies, have?.policies, sameSet),
          diff(
            "member_entities",
            g.memberEntities,
            have?.memberEntityIds.map((id) => idToName.get(id) ?? id),
            sameSet,
          ),
          diff("metadata", g.metadata, have?.metadata, sameRecord),
        ],
        {
          method: "POST",
          path: `identity/group/name/${g.name}`,
          body: { type: "internal", policies: g.policies, metadata: g.metadata },
          refs: [{ field: "member_entity_ids", refs: g.memberEntities.map((m) => ({ entity: m })), list: true }],
        },
      );
    }
  },
};

/**
 * One object written whole by one request: created with every field when it does not exist, else updated when a
 * field differs (the change lists only those).
 */
function upsert(
  out: PlanOutput,
  change: { id: string; kind: "entity" | "group"; phase: 2 | 3; exists: boolean },
  fields: FieldDiff[],
  request: PlannedRequest,
): void {
  const { exists, ...rest } = change;
  if (!exists) {
    const created = fields.map((f) => ({ field: f.field, after: f.after }));
    out.changes.push({ ...rest, action: "create", fields: created, requests: [request] });
    return;
  }
  const changed = fields.filter((f) => f.differs).map(({ field, before, after }) => ({ field, before, after }));
  if (changed.length > 0) out.changes.push({ ...rest, action: "update", fields: changed, requests: [request] });
}

interface FieldDiff {
  field: string;
  before: unknown;
  after: unknown;
  differs: boolean;
}

/** A field's wanted and observed values (undefined: the object does not exist), compared with `same`. */
function diff<T>(field: string, want: T, have: T | undefined, same: (a: T, b: T) => boolean): FieldDiff {
  return { field, before: have, after: want, differs: have === undefined || !same(have, want) };
}

function sameRecord(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

function fail(source: SourceRef, key: string, detail: string): never {
  throw new SpecError(source.file, source.line, key, detail);
}

/**
 * Fills a request's `refs` with the IDs they name, read from the server just before the request is sent (the entity
 * or auth method may have been created earlier in the same apply).
 * @throws Error naming the entity or auth method the server does not have.
 */
export async function resolveRefs(client: VaultClient, req: PlannedRequest): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = { ...(req.body ?? {}) };
  let authTable: Record<string, { accessor?: string }> | undefined;
  for (const r of req.refs ?? []) {
    const ids: string[] = [];
    for (const ref of r.refs) {
      if ("entity" in ref) {
        const res = await client.read<{ data?: { id?: string } }>(`identity/entity/name/${ref.entity}`);
        if (!res?.data?.id) throw new Error(`entity ${ref.entity} does not exist on the server`);
        ids.push(res.data.id);
      } else {
        authTable ??= await readAuthTable(client);
        const accessor = authTable[`${ref.authAccessor}/`]?.accessor;
        if (!accessor) throw new Error(`auth method ${ref.authAccessor}/ does not exist on the server`);
        ids.push(accessor);
      }
    }
    body[r.field] = r.list ? ids : ids[0];
  }
  return body;
}

async function readAuthTable(client: VaultClient): Promise<Record<string, { accessor?: string }>> {
  const res = await client.read<{ data?: Record<string, { accessor?: string }> } & Record<string, unknown>>("sys/auth");
  return (res?.data ?? res ?? {}) as Record<string, { accessor?: string }>;
}
