/**
 * planBootstrap(spec, observed) -> Plan: a PURE function. It compares the desired state with what the server holds and
 * lists every change, field by field, with the exact requests apply will send. Nothing here talks to a server.
 */
import { createHash } from "node:crypto";
import { formatSeconds } from "./duration.js";
import { type LintFinding, lintSpec } from "./lint.js";
import type { BootstrapSpec, RoleSpec } from "./spec.js";

// ---- observed state (filled by observe.ts) -------------------------------------------------------------------

export interface ObservedMount {
  type: string;
  description: string;
  options: Record<string, string>;
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

export type ObservedRole = Record<string, unknown>;

export interface ObservedState {
  /** Secret-engine mounts by path without the trailing slash. */
  mounts: Record<string, ObservedMount>;
  /** Auth methods by path without the trailing slash. */
  auth: Record<string, ObservedMount>;
  /** Kubernetes auth configs by auth path (absent: not configured, or the auth method does not exist). */
  authConfigs: Record<string, ObservedK8sConfig>;
  /** Kubernetes roles by auth path, then role name (raw read-back). */
  roles: Record<string, Record<string, ObservedRole>>;
  /** Names of all ACL policies on the server. */
  policyNames: string[];
  /** Policy text by name, for the policies the spec names that exist. */
  policies: Record<string, string>;
}

// ---- plan ------------------------------------------------------------------------------------------------------

export type ChangeKind = "mount" | "auth" | "auth-config" | "policy" | "role";
export type ChangeAction = "create" | "update" | "delete";

export interface FieldChange {
  field: string;
  before?: unknown;
  after?: unknown;
  /** The value is secret: renderers print "(sensitive)" and never the value. */
  sensitive?: boolean;
  /** Durations in seconds (renderers print 1h). */
  duration?: boolean;
}

export interface PlannedRequest {
  method: "POST" | "DELETE";
  path: string;
  /** May hold secrets (token_reviewer_jwt): never print it. */
  body?: Record<string, unknown>;
}

export interface PlannedChange {
  /** Stable name of the step, used in errors: e.g. `policy my-app-read`, `role kubernetes/eso-role`. */
  id: string;
  kind: ChangeKind;
  action: ChangeAction;
  /** 1 mounts and auth methods; 2 auth config and policies; 3 roles; 4 deletions of policies and auth methods. */
  phase: 1 | 2 | 3 | 4;
  fields: FieldChange[];
  requests: PlannedRequest[];
}

export interface Plan {
  changes: PlannedChange[];
  /** Lint findings (warnings; `--strict` turns them into errors at the CLI). */
  findings: LintFinding[];
  /** Differences apply cannot resolve (a mount of another type at the same path): apply refuses while any exist. */
  conflicts: string[];
  summary: { create: number; update: number; delete: number };
}

export interface PlanOptions {
  /** Delete policies, roles and auth methods that the spec does not name (never root, default or token/). */
  purge?: boolean;
}

/** Policies and auth methods that are never deleted, purge or not. */
const PROTECTED_POLICIES = new Set(["root", "default", "response-wrapping", "control-group"]);
const PROTECTED_AUTH = new Set(["token"]);

/**
 * Computes the changes that take `observed` to `spec`. Pure: same inputs, same plan, no I/O.
 * Never throws for a difference; unresolvable ones go to `conflicts`.
 */
export function planBootstrap(spec: BootstrapSpec, observed: ObservedState, opts: PlanOptions = {}): Plan {
  const changes: PlannedChange[] = [];
  const conflicts: string[] = [];

  for (const m of spec.mounts) {
    const have = observed.mounts[m.path];
    const id = `mount ${m.path}/`;
    if (!have) {
      const body: Record<string, unknown> = { type: m.type };
      if (m.description !== undefined) body.description = m.description;
      if (m.options) body.options = m.options;
      changes.push({
        id,
        kind: "mount",
        action: "create",
        phase: 1,
        fields: fieldsOf(body),
        requests: [{ method: "POST", path: `sys/mounts/${m.path}`, body }],
      });
      continue;
    }
    if (have.type !== m.type) {
      conflicts.push(`${id} is of type ${have.type} on the server, not ${m.type}: move or remove it by hand`);
      continue;
    }
    const fields: FieldChange[] = [];
    const tune: Record<string, unknown> = {};
    if (m.description !== undefined && m.description !== have.description) {
      fields.push({ field: "description", before: have.description, after: m.description });
      tune.description = m.description;
    }
    const wantVersion = m.options?.version;
    const haveVersion = have.options.version ?? (have.type === "kv" ? "1" : undefined);
    if (wantVersion !== undefined && wantVersion !== haveVersion) {
      if (m.type === "kv" && haveVersion === "1" && wantVersion === "2") {
        fields.push({ field: "options.version", before: haveVersion, after: wantVersion });
        tune.options = { version: wantVersion };
      } else {
        conflicts.push(`${id} is kv version ${haveVersion} on the server; version ${wantVersion} needs a new mount`);
      }
    }
    if (fields.length > 0) {
      changes.push({
        id,
        kind: "mount",
        action: "update",
        phase: 1,
        fields,
        requests: [{ method: "POST", path: `sys/mounts/${m.path}/tune`, body: tune }],
      });
    }
  }

  const disabledAuth = new Set<string>();
  for (const a of spec.auth) {
    const have = observed.auth[a.path];
    const id = `auth ${a.path}/`;
    if (!have) {
      const body: Record<string, unknown> = { type: a.type };
      if (a.description !== undefined) body.description = a.description;
      changes.push({
        id,
        kind: "auth",
        action: "create",
        phase: 1,
        fields: fieldsOf(body),
        requests: [{ method: "POST", path: `sys/auth/${a.path}`, body }],
      });
    } else if (have.type !== a.type) {
      conflicts.push(`${id} is of type ${have.type} on the server, not ${a.type}: disable it by hand or use --purge`);
      continue;
    } else if (a.description !== undefined && a.description !== have.description) {
      changes.push({
        id,
        kind: "auth",
        action: "update",
        phase: 1,
        fields: [{ field: "description", before: have.description, after: a.description }],
        requests: [{ method: "POST", path: `sys/auth/${a.path}/tune`, body: { description: a.description } }],
      });
    }
    if (a.config) {
      const change = planK8sConfig(a.path, a.config, have ? observed.authConfigs[a.path] : undefined);
      if (change) changes.push(change);
    }
  }

  const existingPolicies = new Set(observed.policyNames);
  for (const p of spec.policies) {
    const id = `policy ${p.name}`;
    const have = observed.policies[p.name];
    const request: PlannedRequest = { method: "POST", path: `sys/policies/acl/${p.name}`, body: { policy: p.text } };
    if (have === undefined && !existingPolicies.has(p.name)) {
      changes.push({
        id,
        kind: "policy",
        action: "create",
        phase: 2,
        fields: [{ field: "policy", after: p.text }],
        requests: [request],
      });
    } else if (normalizePolicy(have ?? "") !== normalizePolicy(p.text)) {
      changes.push({
        id,
        kind: "policy",
        action: "update",
        phase: 2,
        fields: [{ field: "policy", before: have ?? "", after: p.text }],
        requests: [request],
      });
    }
  }

  const specAuthPaths = new Set(spec.auth.map((a) => a.path));
  for (const r of spec.roles) {
    const have = observed.auth[r.authPath] ? observed.roles[r.authPath]?.[r.name] : undefined;
    const change = planRole(r, have);
    if (change) changes.push(change);
  }

  if (opts.purge) {
    for (const [path, mount] of Object.entries(observed.auth)) {
      if (specAuthPaths.has(path) || PROTECTED_AUTH.has(path) || mount.type === "token") continue;
      disabledAuth.add(path);
      changes.push({
        id: `auth ${path}/`,
        kind: "auth",
        action: "delete",
        phase: 4,
        fields: [{ field: "type", before: mount.type }],
        requests: [{ method: "DELETE", path: `sys/auth/${path}` }],
      });
    }
    const wanted = new Set(spec.roles.map((r) => `${r.authPath}/${r.name}`));
    for (const [authPath, roles] of Object.entries(observed.roles)) {
      if (disabledAuth.has(authPath) || !specAuthPaths.has(authPath)) continue;
      for (const name of Object.keys(roles)) {
        if (wanted.has(`${authPath}/${name}`)) continue;
        changes.push({
          id: `role ${authPath}/${name}`,
          kind: "role",
          action: "delete",
          phase: 3,
          fields: [],
          requests: [{ method: "DELETE", path: `auth/${authPath}/role/${name}` }],
        });
      }
    }
    const wantedPolicies = new Set(spec.policies.map((p) => p.name));
    for (const name of observed.policyNames) {
      if (wantedPolicies.has(name) || PROTECTED_POLICIES.has(name)) continue;
      changes.push({
        id: `policy ${name}`,
        kind: "policy",
        action: "delete",
        phase: 4,
        fields: [],
        requests: [{ method: "DELETE", path: `sys/policies/acl/${name}` }],
      });
    }
  }

  changes.sort((a, b) => a.phase - b.phase);
  const summary = { create: 0, update: 0, delete: 0 };
  for (const c of changes) summary[c.action]++;
  return { changes, findings: lintSpec(spec, { existingPolicies: observed.policyNames }), conflicts, summary };
}

function planK8sConfig(
  authPath: string,
  want: NonNullable<BootstrapSpec["auth"][number]["config"]>,
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
  const wantSet = want.token_reviewer_jwt !== undefined;
  if (wantSet !== have.token_reviewer_jwt_set) {
    fields.push({ field: "token_reviewer_jwt", before: have.token_reviewer_jwt_set, after: wantSet, sensitive: true });
  }
  if (fields.length === 0) return undefined;
  return { id, kind: "auth-config", action: "update", phase: 2, fields, requests: [request] };
}

/** Every role field sealkeeper manages, with the server's default: a field the spec omits is reset to it. */
const ROLE_DEFAULTS: Record<string, unknown> = {
  bound_service_account_names: [],
  bound_service_account_namespaces: [],
  bound_service_account_namespace_selector: "",
  audience: "",
  alias_name_source: "serviceaccount_uid",
  token_policies: [],
  token_ttl: 0,
  token_max_ttl: 0,
  token_explicit_max_ttl: 0,
  token_period: 0,
  token_type: "default",
  token_no_default_policy: false,
  token_num_uses: 0,
  token_bound_cidrs: [],
};
const SET_FIELDS = new Set([
  "bound_service_account_names",
  "bound_service_account_namespaces",
  "token_policies",
  "token_bound_cidrs",
]);
const DURATION_FIELDS = new Set(["token_ttl", "token_max_ttl", "token_explicit_max_ttl", "token_period"]);

/** The full body a role write sends: every managed field, defaults for the ones the spec omits. */
export function roleBody(r: RoleSpec): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [field, def] of Object.entries(ROLE_DEFAULTS)) {
    const v = (r as unknown as Record<string, unknown>)[field];
    body[field] = v === undefined ? def : v;
  }
  return body;
}

function planRole(r: RoleSpec, have: ObservedRole | undefined): PlannedChange | undefined {
  const body = roleBody(r);
  const id = `role ${r.authPath}/${r.name}`;
  const request: PlannedRequest = { method: "POST", path: `auth/${r.authPath}/role/${r.name}`, body };
  if (!have) {
    const fields = Object.entries(body)
      .filter(([k, v]) => !sameValue(v, ROLE_DEFAULTS[k]) || k === "token_policies")
      .map(([field, after]) => ({ field, after, ...(DURATION_FIELDS.has(field) ? { duration: true } : {}) }));
    return { id, kind: "role", action: "create", phase: 3, fields, requests: [request] };
  }
  const fields: FieldChange[] = [];
  for (const [field, after] of Object.entries(body)) {
    const before = normalizeObservedRoleField(field, have[field]);
    const same = SET_FIELDS.has(field) ? sameSet(before, after) : sameValue(before, after);
    if (!same) fields.push({ field, before, after, ...(DURATION_FIELDS.has(field) ? { duration: true } : {}) });
  }
  if (fields.length === 0) return undefined;
  return { id, kind: "role", action: "update", phase: 3, fields, requests: [request] };
}

function normalizeObservedRoleField(field: string, v: unknown): unknown {
  if (v === undefined || v === null) return ROLE_DEFAULTS[field];
  if (SET_FIELDS.has(field) && typeof v === "string") return v === "" ? [] : v.split(",");
  return v;
}

function sameSet(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return sameValue(a, b);
  const sa = [...new Set(a.map(String))].sort();
  const sb = [...new Set(b.map(String))].sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** Policy texts compare without trailing spaces and surrounding blank lines (the server keeps text as given). */
export function normalizePolicy(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trim();
}

function fieldsOf(body: Record<string, unknown>): FieldChange[] {
  return Object.entries(body).map(([field, after]) => ({ field, after }));
}

// ---- views -----------------------------------------------------------------------------------------------------

/** True when applying would change anything. */
export function planHasChanges(plan: Plan): boolean {
  return plan.changes.length > 0;
}

const MASK = "(sensitive)";

/** The plan as JSON-safe data with secrets masked and request bodies left out: what `--format json` prints. */
export function planToJson(plan: Plan): unknown {
  return {
    summary: plan.summary,
    changes: plan.changes.map((c) => ({
      id: c.id,
      kind: c.kind,
      action: c.action,
      phase: c.phase,
      fields: c.fields.map((f) => ({
        field: f.field,
        ...(f.before !== undefined ? { before: f.sensitive ? MASK : f.before } : {}),
        ...(f.after !== undefined ? { after: f.sensitive ? MASK : f.after } : {}),
      })),
    })),
    conflicts: plan.conflicts,
    findings: plan.findings,
  };
}

function show(f: FieldChange, v: unknown): string {
  if (f.sensitive) return typeof v === "boolean" ? (v ? "(set)" : "(not set)") : MASK;
  if (isPem(v)) return describePem(v);
  if (f.duration && typeof v === "number") return formatSeconds(v);
  if (typeof v === "string") return JSON.stringify(v);
  return JSON.stringify(v);
}

/** Human view of a plan: one block per change, one line per field (multi-line text as a +/- line diff). */
export function renderPlan(
  plan: Plan,
  p: { green(s: string): string; red(s: string): string; yellow(s: string): string },
): string {
  const lines: string[] = [];
  const sign = { create: p.green("+"), update: p.yellow("~"), delete: p.red("-") };
  for (const c of plan.changes) {
    lines.push(`${sign[c.action]} ${c.action} ${c.id}`);
    for (const f of c.fields) {
      const multiline =
        !f.sensitive &&
        !isPem(f.after) &&
        !isPem(f.before) &&
        (typeof f.after === "string"
          ? f.after.includes("\n")
          : typeof f.before === "string" && f.before.includes("\n"));
      if (multiline) {
        lines.push(`    ${f.field}:`);
        for (const d of diffLines(String(f.before ?? ""), String(f.after ?? ""))) {
          lines.push(`      ${d.startsWith("+") ? p.green(d) : d.startsWith("-") ? p.red(d) : d}`);
        }
      } else if (c.action === "create" || f.before === undefined) {
        lines.push(`    ${f.field}: ${show(f, f.after)}`);
      } else if (c.action === "delete" || f.after === undefined) {
        lines.push(`    ${f.field}: ${show(f, f.before)}`);
      } else {
        lines.push(`    ${f.field}: ${show(f, f.before)} -> ${show(f, f.after)}`);
      }
    }
  }
  for (const c of plan.conflicts) lines.push(`${p.red("!")} conflict: ${c}`);
  const { create, update, delete: del } = plan.summary;
  lines.push(
    plan.changes.length === 0
      ? "No changes: the server matches the spec."
      : `Plan: ${create} to create, ${update} to update, ${del} to delete.`,
  );
  return lines.join("\n") + "\n";
}

function isPem(v: unknown): v is string {
  return typeof v === "string" && v.includes("-----BEGIN ");
}

/** A certificate is long and not secret: the plan names it by its digest, which is enough to see that it changed. */
function describePem(v: string): string {
  return `PEM certificate (sha256 ${createHash("sha256").update(v.trim()).digest("hex").slice(0, 16)})`;
}

/** A minimal line diff (longest common subsequence), enough for policies of a few dozen lines. */
export function diffLines(before: string, after: string): string[] {
  const a = before === "" ? [] : normalizePolicy(before).split("\n");
  const b = after === "" ? [] : normalizePolicy(after).split("\n");
  const n = a.length;
  const m = b.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      out.push(`  ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || lcs[i]![j + 1]! >= lcs[i + 1]![j]!)) {
      out.push(`+ ${b[j]}`);
      j++;
    } else {
      out.push(`- ${a[i]}`);
      i++;
    }
  }
  return out;
}
