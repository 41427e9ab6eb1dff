/**
 * Least-privilege lint over a spec (or bare policy files). Every finding names the file, line, rule and a fix. The same
 * rules run inside `bootstrap plan` as warnings; `--strict` makes them errors.
 */
import { formatSeconds } from "./duration.js";
import { PolicyParseError, type PolicyRule, parsePolicyHcl, WRITE_CAPABILITIES } from "./policy-hcl.js";
import type { BootstrapSpec, JwtRoleSpec, PolicySpec, RoleSpec } from "./spec.js";

export type LintRule =
  | "kv2-path-without-data"
  | "broad-glob"
  | "sudo-capability"
  | "sys-path"
  | "write-on-read-only"
  | "wildcard-binding"
  | "unknown-policy"
  | "missing-ttl"
  | "long-ttl"
  | "missing-audience"
  | "policy-parse"
  | "no-audit-device"
  | "audit-executable-mode"
  | "audit-path-tmp"
  | "jwt-no-bound-claims"
  | "jwt-wildcard-claim"
  | "jwt-missing-audience";

/** Every rule with a one-line description (docs and `policy lint --list-rules` read this). */
export const LINT_RULES: Record<LintRule, string> = {
  "kv2-path-without-data": "a path on a KV v2 mount without data/ or metadata/ grants nothing",
  "broad-glob": "a glob (* or +) grants more than the exact paths an identity needs",
  "sudo-capability": "sudo unlocks root-protected endpoints",
  "sys-path": "sys/ paths administer the server itself",
  "write-on-read-only": "create/update/patch/delete in a policy given to a workload that only reads",
  "wildcard-binding": "a role bound to * service accounts or namespaces lets any pod log in",
  "unknown-policy": "a role names a policy that does not exist (Vault accepts it silently)",
  "missing-ttl": "a role without token_ttl and token_max_ttl gets the system defaults (32 days)",
  "long-ttl": "a token_ttl over 24h or token_max_ttl over 7d keeps a stolen token useful for long",
  "missing-audience":
    "a kubernetes role without audience accepts a token minted for any audience (e.g. one meant for another service)",
  "policy-parse": "the policy text could not be parsed",
  "no-audit-device": "a spec that enables logins but no audit device: nobody can tell later who read what",
  "audit-executable-mode":
    "a file audit device whose mode is executable: Vault 1.20.1+ refuses to unseal with it as its only device",
  "audit-path-tmp": "an audit log under /tmp (or /var/tmp, /dev/shm) is world-writable territory and lost on reboot",
  "jwt-no-bound-claims":
    "a jwt role without bound_claims lets every token of the issuer log in (any repository, any branch)",
  "jwt-wildcard-claim": "a glob in a bound claim (e.g. repository: org/*) lets every matching repository log in",
  "jwt-missing-audience": "a jwt role without bound_audiences accepts a token minted for any other service",
};

export interface LintFinding {
  file: string;
  line: number;
  rule: LintRule;
  severity: "warning";
  /** The policy or role the finding is about. */
  subject: string;
  message: string;
  fix: string;
}

export interface LintOptions {
  /** Policy names that exist on the server (plan passes them): a role naming one of these is not flagged. */
  existingPolicies?: Iterable<string>;
}

const KV2_API = new Set(["data", "metadata", "delete", "undelete", "destroy", "subkeys", "config"]);
const MAX_TTL = 24 * 3600;
const MAX_MAX_TTL = 7 * 24 * 3600;

/** Lints a loaded spec. Never throws; an empty array means clean. Findings are sorted by file and line. */
export function lintSpec(spec: BootstrapSpec, opts: LintOptions = {}): LintFinding[] {
  const kv2 = spec.mounts.filter((m) => m.type === "kv" && m.options?.version === "2").map((m) => m.path);
  const findings: LintFinding[] = [];
  const usedByRoles = new Set([...spec.roles, ...spec.jwtRoles, ...spec.appRoles].flatMap((r) => r.token_policies));
  for (const policy of spec.policies) {
    findings.push(...lintPolicy(policy, { kv2Mounts: kv2, workload: usedByRoles.has(policy.name) }));
  }
  const known = new Set([...spec.policies.map((p) => p.name), "default", ...(opts.existingPolicies ?? [])]);
  for (const role of spec.roles) findings.push(...lintRole(role, known));
  for (const role of spec.jwtRoles) findings.push(...lintJwtRole(role));
  findings.push(...lintAudit(spec));
  return sortFindings(findings);
}

/**
 * Lints one policy. `workload` says the policy is given to a machine identity (a Kubernetes role): then globs and
 * write capabilities are flagged too.
 */
export function lintPolicy(
  policy: Pick<PolicySpec, "name" | "text" | "source" | "readOnlyPaths">,
  ctx: { kv2Mounts: string[]; workload: boolean },
): LintFinding[] {
  const out: LintFinding[] = [];
  const fileOf = policy.source.file;
  const lineOf = (n: number) =>
    policy.source.hclLine !== undefined ? policy.source.hclLine + n - 1 : policy.source.line;
  const add = (rule: LintRule, line: number, message: string, fix: string) =>
    out.push({ file: fileOf, line, rule, severity: "warning", subject: `policy ${policy.name}`, message, fix });
  let rules: PolicyRule[];
  try {
    rules = parsePolicyHcl(policy.text);
  } catch (err) {
    if (!(err instanceof PolicyParseError)) throw err;
    add("policy-parse", lineOf(err.line), `policy ${policy.name}: ${err.message}`, "fix the HCL syntax");
    return out;
  }
  for (const r of rules) {
    const line = lineOf(r.line);
    const capLine = lineOf(r.capabilitiesLine);
    const caps = new Set(r.capabilities);
    if (caps.has("deny")) continue;
    const mount = ctx.kv2Mounts
      .filter((m) => r.path === m || r.path.startsWith(`${m}/`))
      .sort((a, b) => b.length - a.length)[0];
    if (mount !== undefined) {
      const next = r.path.slice(mount.length + 1).split("/")[0] ?? "";
      if (next !== "" && !/[*+]/.test(next) && !KV2_API.has(next)) {
        add(
          "kv2-path-without-data",
          line,
          `"${r.path}" is on kv v2 mount ${mount}/ but lacks data/ or metadata/, so it grants nothing`,
          `use "${mount}/data/${r.path.slice(mount.length + 1)}" (and metadata/ only if listing is needed)`,
        );
      }
    }
    if (/[*+]/.test(r.path) && ctx.workload) {
      const exact = policy.readOnlyPaths?.length ? ` (${policy.readOnlyPaths.join(", ")})` : "";
      add(
        "broad-glob",
        line,
        `"${r.path}" is a glob: it grants every matching path, not just the ones the workload needs${exact}`,
        "name each exact path, e.g. secret/data/<environment>/<app>",
      );
    }
    if (caps.has("sudo")) {
      add("sudo-capability", capLine, `"${r.path}" grants sudo`, "remove sudo; keep it for break-glass admin policies");
    }
    if ((r.path === "sys" || r.path.startsWith("sys/") || r.path === "*" || r.path === "+") && caps.size > 0) {
      add("sys-path", line, `"${r.path}" grants on sys/, which administers the server`, "remove the sys/ grant");
    }
    const writes = [...caps].filter((c) => WRITE_CAPABILITIES.has(c));
    if (ctx.workload && writes.length > 0) {
      add(
        "write-on-read-only",
        capLine,
        `"${r.path}" grants ${writes.join(", ")} to a workload that only reads`,
        'use capabilities = ["read"]',
      );
    }
  }
  return out;
}

/** Lints one role against the set of known policy names. */
export function lintRole(role: RoleSpec, knownPolicies: Set<string>): LintFinding[] {
  const out: LintFinding[] = [];
  const lineOf = (field: string) => role.fieldLines[field] ?? role.source.line;
  const add = (rule: LintRule, field: string, message: string, fix: string) =>
    out.push({
      file: role.source.file,
      line: lineOf(field),
      rule,
      severity: "warning",
      subject: `role ${role.authPath}/${role.name}`,
      message,
      fix,
    });
  for (const field of ["bound_service_account_names", "bound_service_account_namespaces"] as const) {
    const globs = role[field].filter((v) => v.includes("*"));
    if (globs.length > 0) {
      add(
        "wildcard-binding",
        field,
        `role ${role.name}: ${field} includes ${globs.map((g) => JSON.stringify(g)).join(", ")}`,
        `bind the exact ${field === "bound_service_account_names" ? "service account" : "namespace"} names`,
      );
    }
  }
  for (const p of role.token_policies) {
    if (!knownPolicies.has(p)) {
      add(
        "unknown-policy",
        "token_policies",
        `role ${role.name} names policy ${p}, which is not defined`,
        `define policy ${p} under policies, or remove it`,
      );
    }
  }
  if (!role.audience) {
    add(
      "missing-audience",
      "name",
      `role ${role.name} sets no audience: a token of the bound service account minted for any audience logs in`,
      "set audience: vault (and mint the token with that audience: serviceAccountToken.audience / kubectl create token --audience)",
    );
  }
  const hasTtl = role.token_ttl !== undefined && role.token_ttl > 0;
  const hasMax =
    (role.token_max_ttl !== undefined && role.token_max_ttl > 0) ||
    (role.token_explicit_max_ttl !== undefined && role.token_explicit_max_ttl > 0);
  if (!hasTtl || !hasMax) {
    const missing = [!hasTtl ? "token_ttl" : "", !hasMax ? "token_max_ttl" : ""].filter(Boolean).join(" and ");
    add("missing-ttl", "name", `role ${role.name} sets no ${missing}`, "set token_ttl: 1h and token_max_ttl: 4h");
  }
  if (role.token_ttl !== undefined && role.token_ttl > MAX_TTL) {
    add(
      "long-ttl",
      "token_ttl",
      `role ${role.name}: token_ttl ${formatSeconds(role.token_ttl)} is over 24h`,
      "use an hour or less",
    );
  }
  if (role.token_max_ttl !== undefined && role.token_max_ttl > MAX_MAX_TTL) {
    add(
      "long-ttl",
      "token_max_ttl",
      `role ${role.name}: token_max_ttl ${formatSeconds(role.token_max_ttl)} is over 7d`,
      "use a day or less",
    );
  }
  return out;
}

/** A jwt role: claims unbound or globbed, audience missing. */
export function lintJwtRole(role: JwtRoleSpec): LintFinding[] {
  const out: LintFinding[] = [];
  const add = (rule: LintRule, field: string, message: string, fix: string) =>
    out.push({
      file: role.source.file,
      line: role.fieldLines[field] ?? role.fieldLines.name ?? role.source.line,
      rule,
      severity: "warning",
      subject: `role ${role.authPath}/${role.name}`,
      message,
      fix,
    });
  const claims = role.bound_claims ?? {};
  if (Object.keys(claims).length === 0) {
    add(
      "jwt-no-bound-claims",
      "name",
      `role ${role.name} binds no claims: any token from the issuer logs in`,
      "bind the claims that name the pipeline, e.g. bound_claims: { repository: org/repo, ref: refs/heads/main }",
    );
  }
  if (role.bound_claims_type === "glob") {
    for (const [claim, v] of Object.entries(claims)) {
      const globs = (Array.isArray(v) ? v : [v]).filter((x) => x.includes("*"));
      if (globs.length > 0) {
        add(
          "jwt-wildcard-claim",
          "bound_claims",
          `role ${role.name}: bound claim ${claim} is a glob (${globs.map((g) => JSON.stringify(g)).join(", ")})`,
          `name the exact ${claim} values`,
        );
      }
    }
  }
  if (role.bound_audiences.length === 0) {
    add(
      "jwt-missing-audience",
      "name",
      `role ${role.name} sets no bound_audiences`,
      "set bound_audiences to the audience your CI requests (GitHub Actions: https://github.com/<org>)",
    );
  }
  return out;
}

/** Audit devices: none at all (while the spec enables logins), an executable file mode, a log under /tmp. */
export function lintAudit(spec: Pick<BootstrapSpec, "audit" | "auth" | "file">): LintFinding[] {
  const out: LintFinding[] = [];
  if (spec.audit.length === 0 && spec.auth.length > 0) {
    out.push({
      file: spec.file,
      line: 1,
      rule: "no-audit-device",
      severity: "warning",
      subject: "audit",
      message: "the spec enables auth methods but no audit device",
      fix: "add a file audit device under audit:, e.g. { path: file, type: file, options: { file_path: /vault/audit/audit.log } }",
    });
  }
  for (const a of spec.audit) {
    const add = (rule: LintRule, option: string, message: string, fix: string) =>
      out.push({
        file: a.source.file,
        line: a.optionLines[option] ?? a.source.line,
        rule,
        severity: "warning",
        subject: `audit ${a.path}/`,
        message,
        fix,
      });
    const mode = a.options.mode;
    if (a.type === "file" && mode !== undefined && /^[0-7]+$/.test(mode) && (Number.parseInt(mode, 8) & 0o111) !== 0) {
      add(
        "audit-executable-mode",
        "mode",
        `audit device ${a.path}/ has mode ${mode}, which is executable`,
        'use mode: "0600" (or leave mode out)',
      );
    }
    const path = a.options.file_path;
    if (a.type === "file" && path !== undefined && /^\/(tmp|var\/tmp|dev\/shm)(\/|$)/.test(path)) {
      add(
        "audit-path-tmp",
        "file_path",
        `audit device ${a.path}/ logs to ${path}, under a temporary directory`,
        "log to a dedicated persistent directory, e.g. /vault/audit/audit.log",
      );
    }
  }
  return out;
}

/** Lints a bare policy file (HCL). kv2Mounts tells which mounts are KV v2 (default: secret). */
export function lintPolicyFile(file: string, text: string, kv2Mounts: string[] = ["secret"]): LintFinding[] {
  const name = file.replace(/^.*\//, "").replace(/\.hcl$/, "");
  return sortFindings(lintPolicy({ name, text, source: { file, line: 1, hclLine: 1 } }, { kv2Mounts, workload: true }));
}

function sortFindings(f: LintFinding[]): LintFinding[] {
  return f.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.rule.localeCompare(b.rule));
}

/** One line per finding: `file:line: rule: message (fix: ...)`. */
export function formatFinding(f: LintFinding): string {
  return `${f.file}:${f.line}: ${f.rule}: ${f.message} (fix: ${f.fix})`;
}
