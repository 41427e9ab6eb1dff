/**
 * The config of a kubernetes auth method (`auth[].config`): where the API server is, its CA, the reviewer JWT (a
 * secret: read from a file or env, never printed). A write replaces the whole config.
 */
import { z } from "zod";
import type { KeyPath } from "../../util/yaml-schema.js";
import {
  type FieldChange,
  fieldsOf,
  httpUrl,
  type PlannedChange,
  type PlannedRequest,
  type SpecContext,
  sameValue,
} from "./context.js";
import type { ResourceKind } from "./kind.js";

export const k8sConfigSchema = z.strictObject({
  kubernetes_host: httpUrl,
  kubernetes_ca_cert_file: z.string().min(1).optional(),
  token_reviewer_jwt_file: z.string().min(1).optional(),
  token_reviewer_jwt_env: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .optional(),
  issuer: z.string().optional(),
  disable_iss_validation: z.boolean().optional(),
  disable_local_ca_jwt: z.boolean().optional(),
  use_annotations_as_alias_metadata: z.boolean().optional(),
});

export interface KubernetesConfigSpec {
  kubernetes_host: string;
  kubernetes_ca_cert?: string;
  /** Secret: never printed, masked in plans. */
  token_reviewer_jwt?: string;
  /**
   * Set by `--create-reviewer` (never by the spec file): `kept`, the server's reviewer JWT stays (no write is planned
   * for this config, since a write without the JWT would clear it); `minted`, token_reviewer_jwt is a new token (shown
   * as a change even when the server already has one).
   */
  token_reviewer_jwt_source?: "kept" | "minted";
  issuer?: string;
  disable_iss_validation?: boolean;
  disable_local_ca_jwt?: boolean;
  use_annotations_as_alias_metadata?: boolean;
}

/** What a kubernetes auth config read returns (token_reviewer_jwt itself is never returned). */
export interface ObservedK8sConfig {
  kubernetes_host: string;
  kubernetes_ca_cert: string;
  issuer: string;
  disable_iss_validation: boolean;
  disable_local_ca_jwt: boolean;
  use_annotations_as_alias_metadata: boolean;
  pem_keys: string[];
  token_reviewer_jwt_set: boolean;
}

/** Resolves `auth[i].config` at `path`: reads the CA and reviewer-JWT files (or env). */
export function resolveK8sConfig(
  c: z.infer<typeof k8sConfigSchema>,
  path: KeyPath,
  ctx: SpecContext,
): KubernetesConfigSpec {
  if (c.token_reviewer_jwt_file && c.token_reviewer_jwt_env) {
    ctx.fail([...path, "token_reviewer_jwt_env"], "give token_reviewer_jwt_file or _env, not both");
  }
  let jwt: string | undefined;
  if (c.token_reviewer_jwt_file) {
    jwt = ctx.readRef([...path, "token_reviewer_jwt_file"], c.token_reviewer_jwt_file, "reviewer JWT").trim();
  } else if (c.token_reviewer_jwt_env) {
    jwt = ctx.opts.env?.[c.token_reviewer_jwt_env];
    if (!jwt) ctx.fail([...path, "token_reviewer_jwt_env"], `${c.token_reviewer_jwt_env} is not set`);
  }
  const ca = c.kubernetes_ca_cert_file
    ? ctx.readRef([...path, "kubernetes_ca_cert_file"], c.kubernetes_ca_cert_file, "CA certificate")
    : undefined;
  if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----")) {
    ctx.fail([...path, "kubernetes_ca_cert_file"], `${c.kubernetes_ca_cert_file} holds no PEM certificate`);
  }
  return {
    kubernetes_host: c.kubernetes_host,
    ...(ca !== undefined ? { kubernetes_ca_cert: ca.trim() } : {}),
    ...(jwt !== undefined ? { token_reviewer_jwt: jwt } : {}),
    ...(c.issuer !== undefined ? { issuer: c.issuer } : {}),
    ...(c.disable_iss_validation !== undefined ? { disable_iss_validation: c.disable_iss_validation } : {}),
    ...(c.disable_local_ca_jwt !== undefined ? { disable_local_ca_jwt: c.disable_local_ca_jwt } : {}),
    ...(c.use_annotations_as_alias_metadata !== undefined
      ? { use_annotations_as_alias_metadata: c.use_annotations_as_alias_metadata }
      : {}),
  };
}

export const kubernetesConfigKind: ResourceKind = {
  name: "kubernetes auth config",
  observe({ client, spec, observed, queue }) {
    for (const a of spec.auth) {
      if (!a.config || observed.auth[a.path]?.type !== "kubernetes") continue;
      queue(async () => {
        const res = await client.read<{ data?: Partial<ObservedK8sConfig> }>(`auth/${a.path}/config`);
        const d = res?.data;
        // an unconfigured kubernetes auth method answers with no data (or a 404): nothing to compare against
        if (d?.kubernetes_host) observed.authConfigs[a.path] = toK8sConfig(d);
      });
    }
  },
  plan(spec, observed, out) {
    for (const a of spec.auth) {
      const have = observed.auth[a.path];
      // another type on the server is a conflict the auth kind reports: nothing to configure
      if (!a.config || (have && have.type !== a.type)) continue;
      const change = planK8sConfig(a.path, a.config, have ? observed.authConfigs[a.path] : undefined);
      if (change) out.changes.push(change);
    }
  },
};

/** The change taking `have` to `want` for auth/`authPath`/config (undefined: none). Pure. */
export function planK8sConfig(
  authPath: string,
  want: KubernetesConfigSpec,
  have: ObservedK8sConfig | undefined,
): PlannedChange | undefined {
  // A config write replaces the whole config, so the body always carries every managed field.
  const body: Record<string, unknown> = {
    kubernetes_host: want.kubernetes_host,
    kubernetes_ca_cert: want.kubernetes_ca_cert ?? "",
    issuer: want.issuer ?? "",
    disable_local_ca_jwt: want.disable_local_ca_jwt ?? false,
    use_annotations_as_alias_metadata: want.use_annotations_as_alias_metadata ?? false,
    pem_keys: [],
  };
  if (want.disable_iss_validation !== undefined) body.disable_iss_validation = want.disable_iss_validation;
  if (want.token_reviewer_jwt !== undefined) body.token_reviewer_jwt = want.token_reviewer_jwt;
  const id = `config auth/${authPath}/config`;
  const request: PlannedRequest = { method: "POST", path: `auth/${authPath}/config`, body };
  if (!have) {
    const fields = fieldsOf(body).filter((f) => f.field !== "pem_keys");
    for (const f of fields) if (f.field === "token_reviewer_jwt") f.sensitive = true;
    return { id, kind: "auth-config", action: "create", phase: 2, fields, requests: [request] };
  }
  const fields: FieldChange[] = [];
  const cmp = (field: keyof ObservedK8sConfig, after: unknown, before: unknown) => {
    if (!sameValue(before, after)) fields.push({ field, before, after });
  };
  cmp("kubernetes_host", body.kubernetes_host, have.kubernetes_host);
  if ((body.kubernetes_ca_cert as string).trim() !== (have.kubernetes_ca_cert ?? "").trim()) {
    fields.push({ field: "kubernetes_ca_cert", before: have.kubernetes_ca_cert, after: body.kubernetes_ca_cert });
  }
  cmp("issuer", body.issuer, have.issuer);
  cmp("disable_local_ca_jwt", body.disable_local_ca_jwt, have.disable_local_ca_jwt);
  cmp(
    "use_annotations_as_alias_metadata",
    body.use_annotations_as_alias_metadata,
    have.use_annotations_as_alias_metadata,
  );
  if (want.disable_iss_validation !== undefined) {
    cmp("disable_iss_validation", want.disable_iss_validation, have.disable_iss_validation);
  }
  if ((have.pem_keys ?? []).length > 0) fields.push({ field: "pem_keys", before: have.pem_keys, after: [] });
  // The server never returns the reviewer JWT, only whether one is set: a rotated JWT is not visible here.
  const wantSet = want.token_reviewer_jwt !== undefined || want.token_reviewer_jwt_source === "kept";
  if (want.token_reviewer_jwt_source === "minted" && have.token_reviewer_jwt_set) {
    fields.push({ field: "token_reviewer_jwt", before: true, after: "a new token", sensitive: true });
  } else if (wantSet !== have.token_reviewer_jwt_set) {
    fields.push({ field: "token_reviewer_jwt", before: have.token_reviewer_jwt_set, after: wantSet, sensitive: true });
  }
  if (fields.length === 0) return undefined;
  return { id, kind: "auth-config", action: "update", phase: 2, fields, requests: [request] };
}

function toK8sConfig(d: Partial<ObservedK8sConfig>): ObservedK8sConfig {
  return {
    kubernetes_host: d.kubernetes_host ?? "",
    kubernetes_ca_cert: d.kubernetes_ca_cert ?? "",
    issuer: d.issuer ?? "",
    disable_iss_validation: d.disable_iss_validation ?? false,
    disable_local_ca_jwt: d.disable_local_ca_jwt ?? false,
    use_annotations_as_alias_metadata: d.use_annotations_as_alias_metadata ?? false,
    pem_keys: d.pem_keys ?? [],
    token_reviewer_jwt_set: d.token_reviewer_jwt_set ?? false,
  };
}
