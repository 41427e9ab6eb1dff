/**
 * The bootstrap spec: a YAML file naming mounts, auth methods (with Kubernetes config and roles), policies and apps.
 * Field names are Vault's where Vault has one. Loading validates the schema (errors carry file:line and the offending
 * key), reads the CA and reviewer-JWT files, and expands apps into the policies and roles they stand for.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { UsageError } from "../errors.js";
import { formatKeyPath, parseYamlWithSchema, YamlSpecError as SpecError, type YamlLines } from "../util/yaml-schema.js";
import { parseTtlSeconds } from "./duration.js";
import { renderPolicyHcl } from "./policy-hcl.js";

/** A spec problem: file:line, the key, and what is wrong. Exit 1. (The shared YAML error, under the spec's name.) */
export { YamlSpecError as SpecError } from "../util/yaml-schema.js";

// ---- schema ----------------------------------------------------------------------------------------------------

const ttl = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (parseTtlSeconds(v) === undefined) {
    ctx.addIssue({ code: "custom", message: `cannot parse duration "${v}" (use seconds or e.g. 30m, 1h, 1h30m, 7d)` });
  }
});
const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-', starting with a letter or digit");
const mountPath = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9._-]$|^[A-Za-z0-9]$/, "must be a mount path like secret or kv/team")
  .refine((p) => !p.includes("//"), "must not contain //");
const stringList = z.array(z.string().min(1)).min(1);

const mountSchema = z.strictObject({
  path: mountPath,
  type: z.string().min(1),
  description: z.string().optional(),
  options: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).optional(),
});

const roleSchema = z.strictObject({
  name,
  bound_service_account_names: stringList,
  bound_service_account_namespaces: stringList.optional(),
  bound_service_account_namespace_selector: z.string().optional(),
  audience: z.string().optional(),
  alias_name_source: z.enum(["serviceaccount_uid", "serviceaccount_name"]).optional(),
  token_policies: z.array(name).default([]),
  token_ttl: ttl.optional(),
  token_max_ttl: ttl.optional(),
  token_explicit_max_ttl: ttl.optional(),
  token_period: ttl.optional(),
  token_type: z.enum(["default", "service", "batch", "default-service", "default-batch"]).optional(),
  token_no_default_policy: z.boolean().optional(),
  token_num_uses: z.number().int().nonnegative().optional(),
  token_bound_cidrs: z.array(z.string()).optional(),
});

const k8sConfigSchema = z.strictObject({
  kubernetes_host: z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL"),
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

const authSchema = z.strictObject({
  path: mountPath,
  type: z.string().min(1),
  description: z.string().optional(),
  config: k8sConfigSchema.optional(),
  roles: z.array(roleSchema).default([]),
});

const ruleSchema = z.strictObject({
  path: z.string().min(1),
  capabilities: z.array(z.enum(["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"])),
});

const policySchema = z.strictObject({
  name,
  hcl: z.string().optional(),
  file: z.string().min(1).optional(),
  rules: z.array(ruleSchema).min(1).optional(),
});

const envSchema = z.strictObject({
  name,
  namespace: z.string().min(1).optional(),
  service_account: z.string().min(1).optional(),
  secrets: z.array(z.string().min(1)).min(1).optional(),
});

const appSchema = z.strictObject({
  name,
  mount: mountPath.default("secret"),
  auth_mount: mountPath.default("kubernetes"),
  service_account: z.string().min(1).optional(),
  secrets: z.array(z.string().min(1)).min(1).optional(),
  environments: z.array(envSchema).min(1),
  audience: z.string().optional(),
  token_ttl: ttl.default("1h"),
  token_max_ttl: ttl.default("4h"),
  keys: z.record(z.string(), z.string()).optional(),
  refresh_interval: z.string().default("1h"),
});

const clusterStoreSchema = z.strictObject({
  name,
  role: name,
  auth_mount: mountPath.default("kubernetes"),
  mount: mountPath.default("secret"),
  service_account: z.strictObject({ name: z.string().min(1), namespace: z.string().min(1) }).optional(),
});

const esoSchema = z.strictObject({
  server: z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL"),
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

const specSchema = z.strictObject({
  version: z.literal(1),
  mounts: z.array(mountSchema).default([]),
  auth: z.array(authSchema).default([]),
  policies: z.array(policySchema).default([]),
  apps: z.array(appSchema).default([]),
  eso: esoSchema.optional(),
});

export type RawSpec = z.infer<typeof specSchema>;
export type RawRole = z.infer<typeof roleSchema>;
export type RawApp = z.infer<typeof appSchema>;

// ---- resolved spec ---------------------------------------------------------------------------------------------

/** Where something came from, for lint findings and errors. */
export interface SourceRef {
  file: string;
  line: number;
  /** For policy text: the file line of the policy's first line (policy line n is at hclLine + n - 1). */
  hclLine?: number;
}

export interface MountSpec {
  path: string;
  type: string;
  description?: string;
  options?: Record<string, string>;
  source: SourceRef;
}

export interface KubernetesConfigSpec {
  kubernetes_host: string;
  kubernetes_ca_cert?: string;
  /** Secret: never printed, masked in plans. */
  token_reviewer_jwt?: string;
  issuer?: string;
  disable_iss_validation?: boolean;
  disable_local_ca_jwt?: boolean;
  use_annotations_as_alias_metadata?: boolean;
}

export interface AuthSpec {
  path: string;
  type: string;
  description?: string;
  config?: KubernetesConfigSpec;
  source: SourceRef;
}

export interface PolicySpec {
  name: string;
  text: string;
  /** The app that generated it, when it came from `apps`. */
  app?: string;
  /** Paths this policy is meant to grant read on (apps only): lint flags anything broader. */
  readOnlyPaths?: string[];
  source: SourceRef;
}

/** A role with durations in seconds (Vault's read-back unit). */
export interface RoleSpec {
  authPath: string;
  name: string;
  bound_service_account_names: string[];
  bound_service_account_namespaces: string[];
  bound_service_account_namespace_selector?: string;
  audience?: string;
  alias_name_source?: string;
  token_policies: string[];
  token_ttl?: number;
  token_max_ttl?: number;
  token_explicit_max_ttl?: number;
  token_period?: number;
  token_type?: string;
  token_no_default_policy?: boolean;
  token_num_uses?: number;
  token_bound_cidrs?: string[];
  app?: string;
  /** Lines of each field, for lint. */
  fieldLines: Record<string, number>;
  source: SourceRef;
}

/** One environment of an app, expanded: the KV paths it reads and the role/policy that grant them. */
export interface AppEnvironment {
  app: string;
  environment: string;
  namespace: string;
  serviceAccount: string;
  mount: string;
  authPath: string;
  /** Secret names relative to the mount, e.g. production/my-app. */
  secrets: string[];
  /** ACL paths, e.g. secret/data/production/my-app. */
  aclPaths: string[];
  role: string;
  policy: string;
  keys?: Record<string, string>;
  refreshInterval: string;
  source: SourceRef;
}

export interface ClusterStoreSpec {
  name: string;
  role: string;
  authPath: string;
  mount: string;
  serviceAccount: { name: string; namespace: string };
  source: SourceRef;
}

export interface BootstrapSpec {
  file: string;
  mounts: MountSpec[];
  auth: AuthSpec[];
  policies: PolicySpec[];
  roles: RoleSpec[];
  apps: AppEnvironment[];
  eso?: {
    server: string;
    apiVersion: string;
    caProvider?: { type: string; name: string; key: string; namespace?: string };
    clusterStores: ClusterStoreSpec[];
  };
}

export interface LoadSpecOptions {
  /** Environment for token_reviewer_jwt_env (the CLI passes its io.env). */
  env?: Record<string, string | undefined>;
}

/**
 * Reads, validates and expands a spec file.
 * @throws SpecError (file:line: key: problem) for schema errors, unreadable referenced files, duplicates and
 *   dangling references; UsageError when the spec file itself cannot be read.
 */
export function loadSpec(file: string, opts: LoadSpecOptions = {}): BootstrapSpec {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read spec file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
      cause: err,
    });
  }
  return parseSpec(text, file, opts);
}

/** Like loadSpec, from text already in memory. `file` is used for messages and to resolve relative paths. */
export function parseSpec(text: string, file: string, opts: LoadSpecOptions = {}): BootstrapSpec {
  const { value, lines } = parseYamlWithSchema(text, specSchema, file);
  return resolveSpec(value, lines, opts);
}

function resolveSpec(raw: RawSpec, src: YamlLines, opts: LoadSpecOptions): BootstrapSpec {
  const file = src.file;
  const baseDir = dirname(resolve(file));
  const at = (path: (string | number)[]): SourceRef => ({ file, line: src.line(path) });
  const fail = (path: (string | number)[], detail: string): never => {
    throw new SpecError(file, src.keyLine(path), formatKeyPath(path), detail);
  };
  const readRef = (path: (string | number)[], ref: string, what: string): string => {
    const full = isAbsolute(ref) ? ref : resolve(baseDir, ref);
    try {
      return readFileSync(full, "utf8");
    } catch (err) {
      return fail(path, `cannot read ${what} file ${ref}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
  };

  const mounts: MountSpec[] = [];
  const seenMounts = new Set<string>();
  raw.mounts.forEach((m, i) => {
    if (seenMounts.has(m.path)) fail(["mounts", i, "path"], `mount ${m.path} is declared twice`);
    seenMounts.add(m.path);
    if (["sys", "identity", "cubbyhole", "auth", "token"].includes(m.path.split("/")[0]!)) {
      fail(["mounts", i, "path"], `${m.path} is a reserved path`);
    }
    // kv-v2 is the CLI's shorthand; the server stores it as type kv with options.version 2
    const isKv2 = m.type === "kv-v2";
    const options = isKv2 ? { ...m.options, version: "2" } : m.options;
    mounts.push({
      path: m.path,
      type: isKv2 ? "kv" : m.type,
      description: m.description,
      options,
      source: at(["mounts", i]),
    });
  });

  const auth: AuthSpec[] = [];
  const roles: RoleSpec[] = [];
  const seenAuth = new Set<string>();
  raw.auth.forEach((a, i) => {
    if (seenAuth.has(a.path)) fail(["auth", i, "path"], `auth method ${a.path} is declared twice`);
    seenAuth.add(a.path);
    if (a.path === "token") fail(["auth", i, "path"], "the token auth method is built in and cannot be managed");
    if (a.type !== "kubernetes" && (a.config || a.roles.length > 0)) {
      fail(["auth", i, "type"], `config and roles are supported for kubernetes auth only, not ${a.type}`);
    }
    let config: KubernetesConfigSpec | undefined;
    if (a.config) {
      const c = a.config;
      if (c.token_reviewer_jwt_file && c.token_reviewer_jwt_env) {
        fail(["auth", i, "config", "token_reviewer_jwt_env"], "give token_reviewer_jwt_file or _env, not both");
      }
      let jwt: string | undefined;
      if (c.token_reviewer_jwt_file) {
        jwt = readRef(["auth", i, "config", "token_reviewer_jwt_file"], c.token_reviewer_jwt_file, "reviewer JWT");
        jwt = jwt.trim();
      } else if (c.token_reviewer_jwt_env) {
        jwt = opts.env?.[c.token_reviewer_jwt_env];
        if (!jwt) fail(["auth", i, "config", "token_reviewer_jwt_env"], `${c.token_reviewer_jwt_env} is not set`);
      }
      const ca = c.kubernetes_ca_cert_file
        ? readRef(["auth", i, "config", "kubernetes_ca_cert_file"], c.kubernetes_ca_cert_file, "CA certificate")
        : undefined;
      if (ca !== undefined && !ca.includes("-----BEGIN CERTIFICATE-----")) {
        fail(["auth", i, "config", "kubernetes_ca_cert_file"], `${c.kubernetes_ca_cert_file} holds no PEM certificate`);
      }
      config = {
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
    auth.push({ path: a.path, type: a.type, description: a.description, config, source: at(["auth", i]) });
    a.roles.forEach((r, j) => {
      roles.push(resolveRole(a.path, r, ["auth", i, "roles", j], src));
    });
  });

  const policies: PolicySpec[] = [];
  raw.policies.forEach((p, i) => {
    const given = [p.hcl, p.file, p.rules].filter((x) => x !== undefined).length;
    if (given !== 1) fail(["policies", i, "name"], `policy ${p.name} needs exactly one of hcl, file or rules`);
    if (p.name === "root") fail(["policies", i, "name"], "the root policy cannot be managed");
    if (p.hcl !== undefined) {
      policies.push({
        name: p.name,
        text: p.hcl,
        source: { file, line: src.line(["policies", i]), hclLine: src.textStartLine(["policies", i, "hcl"]) },
      });
    } else if (p.file !== undefined) {
      const full = isAbsolute(p.file) ? p.file : resolve(baseDir, p.file);
      policies.push({
        name: p.name,
        text: readRef(["policies", i, "file"], p.file, "policy"),
        source: { file: full, line: 1, hclLine: 1 },
      });
    } else {
      policies.push({
        name: p.name,
        text: renderPolicyHcl(p.rules!),
        source: at(["policies", i, "rules"]),
      });
    }
  });

  const apps: AppEnvironment[] = [];
  const kv2 = new Set(mounts.filter((m) => m.type === "kv" && m.options?.version === "2").map((m) => m.path));
  const k8s = new Set(auth.filter((a) => a.type === "kubernetes").map((a) => a.path));
  const seenApps = new Set<string>();
  raw.apps.forEach((a, i) => {
    if (seenApps.has(a.name)) fail(["apps", i, "name"], `app ${a.name} is declared twice`);
    seenApps.add(a.name);
    if (!kv2.has(a.mount)) fail(["apps", i, "mount"], `${a.mount} is not a kv v2 mount declared under mounts`);
    if (!k8s.has(a.auth_mount)) {
      fail(["apps", i, "auth_mount"], `${a.auth_mount} is not a kubernetes auth method declared under auth`);
    }
    const seenEnv = new Set<string>();
    a.environments.forEach((e, j) => {
      if (seenEnv.has(e.name)) fail(["apps", i, "environments", j, "name"], `environment ${e.name} is repeated`);
      seenEnv.add(e.name);
      const secrets = (e.secrets ?? a.secrets ?? [a.name]).map((s) => `${e.name}/${s.replace(/^\/+|\/+$/g, "")}`);
      for (const s of secrets) {
        if (/[*+]/.test(s)) fail(["apps", i, "secrets"], `app secrets name exact paths, not globs: ${s}`);
      }
      const aclPaths = secrets.map((s) => `${a.mount}/data/${s}`);
      const roleName = `${a.name}-${e.name}`;
      const policyName = `${a.name}-${e.name}-read`;
      const source = at(["apps", i, "environments", j]);
      const serviceAccount = e.service_account ?? a.service_account ?? a.name;
      const namespace = e.namespace ?? e.name;
      apps.push({
        app: a.name,
        environment: e.name,
        namespace,
        serviceAccount,
        mount: a.mount,
        authPath: a.auth_mount,
        secrets,
        aclPaths,
        role: roleName,
        policy: policyName,
        keys: a.keys,
        refreshInterval: a.refresh_interval,
        source,
      });
      policies.push({
        name: policyName,
        text: renderPolicyHcl(aclPaths.map((p) => ({ path: p, capabilities: ["read"] }))),
        app: `${a.name}/${e.name}`,
        readOnlyPaths: aclPaths,
        source,
      });
      roles.push({
        authPath: a.auth_mount,
        name: roleName,
        bound_service_account_names: [serviceAccount],
        bound_service_account_namespaces: [namespace],
        ...(a.audience !== undefined ? { audience: a.audience } : {}),
        token_policies: [policyName],
        token_ttl: parseTtlSeconds(a.token_ttl),
        token_max_ttl: parseTtlSeconds(a.token_max_ttl),
        app: `${a.name}/${e.name}`,
        fieldLines: {},
        source,
      });
    });
  });

  // duplicates across hand-written and generated entries
  const seenPolicy = new Map<string, PolicySpec>();
  for (const p of policies) {
    const prev = seenPolicy.get(p.name);
    if (prev) {
      throw new SpecError(p.source.file, p.source.line, "policies", `policy ${p.name} is defined twice`);
    }
    seenPolicy.set(p.name, p);
  }
  const seenRole = new Set<string>();
  for (const r of roles) {
    const key = `${r.authPath}/${r.name}`;
    if (seenRole.has(key)) throw new SpecError(file, r.source.line, "roles", `role ${key} is defined twice`);
    seenRole.add(key);
    if (!seenAuth.has(r.authPath)) {
      throw new SpecError(file, r.source.line, "roles", `role ${r.name}: auth method ${r.authPath} is not declared`);
    }
  }

  let eso: BootstrapSpec["eso"];
  if (raw.eso) {
    const clusterStores = raw.eso.cluster_secret_stores.map((s, i): ClusterStoreSpec => {
      const role = roles.find((r) => r.authPath === s.auth_mount && r.name === s.role);
      if (!role)
        return fail(["eso", "cluster_secret_stores", i, "role"], `role ${s.auth_mount}/${s.role} is not declared`);
      const sa = s.service_account ?? {
        name: role.bound_service_account_names[0]!,
        namespace: role.bound_service_account_namespaces[0] ?? "default",
      };
      if (!kv2.has(s.mount)) fail(["eso", "cluster_secret_stores", i, "mount"], `${s.mount} is not a kv v2 mount`);
      return {
        name: s.name,
        role: s.role,
        authPath: s.auth_mount,
        mount: s.mount,
        serviceAccount: sa,
        source: at(["eso", "cluster_secret_stores", i]),
      };
    });
    eso = {
      server: raw.eso.server,
      apiVersion: raw.eso.api_version,
      caProvider: raw.eso.ca_provider,
      clusterStores,
    };
  }

  return { file, mounts, auth, policies, roles, apps, eso };
}

const ROLE_TTL_FIELDS = ["token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"] as const;

function resolveRole(authPath: string, r: RawRole, path: (string | number)[], src: YamlLines): RoleSpec {
  const fieldLines: Record<string, number> = {};
  for (const key of Object.keys(r)) fieldLines[key] = src.keyLine([...path, key]);
  const role: RoleSpec = {
    authPath,
    name: r.name,
    bound_service_account_names: r.bound_service_account_names,
    bound_service_account_namespaces: r.bound_service_account_namespaces ?? [],
    token_policies: r.token_policies,
    fieldLines,
    source: { file: src.file, line: src.line(path) },
  };
  if (role.bound_service_account_namespaces.length === 0 && !r.bound_service_account_namespace_selector) {
    throw new SpecError(
      src.file,
      src.line(path),
      formatKeyPath([...path, "bound_service_account_namespaces"]),
      "a role needs bound_service_account_namespaces or bound_service_account_namespace_selector",
    );
  }
  for (const k of [
    "bound_service_account_namespace_selector",
    "audience",
    "alias_name_source",
    "token_type",
    "token_no_default_policy",
    "token_num_uses",
    "token_bound_cidrs",
  ] as const) {
    if (r[k] !== undefined) (role as unknown as Record<string, unknown>)[k] = r[k];
  }
  for (const k of ROLE_TTL_FIELDS) {
    if (r[k] !== undefined) role[k] = parseTtlSeconds(r[k]);
  }
  return role;
}
