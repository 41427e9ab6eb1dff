/**
 * JWT auth for CI (`auth[]` of type jwt: its `config` and `roles`): GitHub Actions, GitLab CI and other OIDC token
 * issuers. The config names where the signing keys come from (exactly one of oidc_discovery_url, jwks_url,
 * jwt_validation_pubkeys) and the issuer; each role binds audiences and claims (e.g. repository and ref) to policies.
 */
import { z } from "zod";
import type { KeyPath, YamlLines } from "../../util/yaml-schema.js";
import {
  type FieldChange,
  httpUrl,
  type PlannedRequest,
  type SpecContext,
  sameSet,
  sameValue,
  stringList,
} from "./context.js";
import type { ResourceKind } from "./kind.js";
import {
  authRoleKind,
  type FieldValues,
  field,
  type RoleBase,
  resolveRoleFields,
  roleShape,
  TOKEN_FIELDS,
} from "./role-fields.js";

export const jwtConfigSchema = z.strictObject({
  oidc_discovery_url: httpUrl.optional(),
  jwks_url: httpUrl.optional(),
  /** CA of the JWKS server (a file: PEM). */
  jwks_ca_pem_file: z.string().min(1).optional(),
  /** PEM public keys (not secret), inline. */
  jwt_validation_pubkeys: z.array(z.string().min(1)).min(1).optional(),
  bound_issuer: z.string().min(1).optional(),
  jwt_supported_algs: z.array(z.string().min(1)).optional(),
  default_role: z.string().optional(),
});

export interface JwtConfigSpec {
  oidc_discovery_url: string;
  jwks_url: string;
  jwks_ca_pem: string;
  jwt_validation_pubkeys: string[];
  bound_issuer: string;
  jwt_supported_algs: string[];
  default_role: string;
}

/** What a jwt config read returns, the managed fields. */
export type ObservedJwtConfig = Partial<JwtConfigSpec>;

const claimValue = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/** Every jwt role field sealkeeper manages, in the order of the write body. */
export const JWT_ROLE_FIELDS = {
  // a jwt method's roles log in with a JWT, not through an OIDC browser flow
  role_type: field({ schema: z.literal("jwt").optional(), default: "jwt" }),
  bound_audiences: field({ schema: stringList.optional(), default: [], set: true, required: true }),
  bound_subject: field({ schema: z.string().optional(), default: "" }),
  bound_claims: field({ schema: z.record(z.string(), claimValue).optional(), default: {} }),
  bound_claims_type: field({ schema: z.enum(["string", "glob"]).optional(), default: "string" }),
  user_claim: field({ schema: z.string().min(1), default: "", required: true }),
  groups_claim: field({ schema: z.string().optional(), default: "" }),
  claim_mappings: field({ schema: z.record(z.string(), z.string()).optional(), default: {} }),
  ...TOKEN_FIELDS,
};

export type JwtRoleSpec = FieldValues<typeof JWT_ROLE_FIELDS> & RoleBase;

export const jwtRoleSchema = z.strictObject(roleShape(JWT_ROLE_FIELDS));

export function resolveJwtRole(authPath: string, raw: unknown, path: KeyPath, src: YamlLines): JwtRoleSpec {
  const r = src.validate(jwtRoleSchema, raw, path);
  return resolveRoleFields<JwtRoleSpec>(JWT_ROLE_FIELDS, authPath, r, path, src);
}

export function resolveJwtConfig(raw: unknown, path: KeyPath, ctx: SpecContext): JwtConfigSpec {
  const c = ctx.src.validate(jwtConfigSchema, raw, path);
  const sources = [c.oidc_discovery_url, c.jwks_url, c.jwt_validation_pubkeys].filter((x) => x !== undefined);
  if (sources.length !== 1) {
    ctx.fail(path, "give exactly one of oidc_discovery_url, jwks_url or jwt_validation_pubkeys");
  }
  if (c.jwks_ca_pem_file && !c.jwks_url) ctx.fail([...path, "jwks_ca_pem_file"], "jwks_ca_pem_file needs jwks_url");
  const ca = c.jwks_ca_pem_file ? ctx.readRef([...path, "jwks_ca_pem_file"], c.jwks_ca_pem_file, "JWKS CA") : "";
  return {
    oidc_discovery_url: c.oidc_discovery_url ?? "",
    jwks_url: c.jwks_url ?? "",
    jwks_ca_pem: ca.trim(),
    jwt_validation_pubkeys: (c.jwt_validation_pubkeys ?? []).map((k) => k.trim()),
    bound_issuer: c.bound_issuer ?? "",
    jwt_supported_algs: c.jwt_supported_algs ?? [],
    default_role: c.default_role ?? "",
  };
}

const SET_CONFIG_FIELDS = new Set(["jwt_validation_pubkeys", "jwt_supported_algs"]);

export const jwtConfigKind: ResourceKind = {
  name: "jwt auth config",
  observe({ client, spec, observed, queue }) {
    for (const a of spec.auth) {
      if (!a.jwtConfig || observed.auth[a.path]?.type !== "jwt") continue;
      queue(async () => {
        const res = await client.read<{ data?: Record<string, unknown> }>(`auth/${a.path}/config`);
        if (!res?.data) return;
        const d = res.data;
        const str = (k: string) => (typeof d[k] === "string" ? (d[k] as string) : "");
        const list = (k: string) => (Array.isArray(d[k]) ? (d[k] as unknown[]).map(String) : []);
        observed.jwtConfigs ??= {};
        observed.jwtConfigs[a.path] = {
          oidc_discovery_url: str("oidc_discovery_url"),
          jwks_url: str("jwks_url"),
          jwks_ca_pem: str("jwks_ca_pem"),
          jwt_validation_pubkeys: list("jwt_validation_pubkeys"),
          bound_issuer: str("bound_issuer"),
          jwt_supported_algs: list("jwt_supported_algs"),
          default_role: str("default_role"),
        };
      });
    }
  },
  plan(spec, observed, out) {
    for (const a of spec.auth) {
      const have = observed.auth[a.path];
      if (!a.jwtConfig || (have && have.type !== a.type)) continue;
      const want = a.jwtConfig as unknown as Record<string, unknown>;
      // a config write replaces the whole config: the body carries every managed field
      const body: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(want)) {
        if (v === "" || (Array.isArray(v) && v.length === 0)) continue;
        body[k] = v;
      }
      const id = `config auth/${a.path}/config`;
      const request: PlannedRequest = { method: "POST", path: `auth/${a.path}/config`, body };
      const now = have ? observed.jwtConfigs?.[a.path] : undefined;
      if (!now) {
        out.changes.push({
          id,
          kind: "auth-config",
          action: "create",
          phase: 2,
          fields: Object.entries(body).map(([f, after]) => ({ field: f, after })),
          requests: [request],
        });
        continue;
      }
      const fields: FieldChange[] = [];
      for (const [k, after] of Object.entries(want)) {
        const before = (now as Record<string, unknown>)[k];
        const same = SET_CONFIG_FIELDS.has(k)
          ? sameSet(before ?? [], after)
          : sameValue(typeof before === "string" ? before.trim() : before, after);
        if (!same) fields.push({ field: k, before, after });
      }
      if (fields.length > 0) {
        out.changes.push({ id, kind: "auth-config", action: "update", phase: 2, fields, requests: [request] });
      }
    }
  },
};

export const jwtRoleKind = authRoleKind({
  name: "jwt role",
  types: ["jwt"],
  table: JWT_ROLE_FIELDS,
  roles: (spec) => spec.jwtRoles,
});
