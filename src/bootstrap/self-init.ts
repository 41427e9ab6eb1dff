/**
 * `bootstrap export --self-init`: the bootstrap spec as OpenBao's self-initialization stanza (`initialize`, OpenBao
 * 2.4+). An auto-unsealed OpenBao that starts on empty storage initialises itself, runs these requests in order with
 * its first root token, and revokes that token; nobody ever holds it. The requests are exactly the ones `bootstrap
 * apply` would send to an empty server (planBootstrap against an empty state), plus a read-only verifier: a policy, a
 * token role and one orphan token whose ID the server reads from a file sealkeeper writes (0600), so that `bootstrap
 * verify` and `bootstrap plan` can prove the result afterwards without a root token.
 * Secrets never enter the stanza: a Kubernetes reviewer JWT is referenced by its file or variable (eval_source).
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { UsageError } from "../errors.js";
import { type ObservedState, planBootstrap } from "./plan.js";
import type { BootstrapSpec } from "./spec.js";

/** The verifier's policy, token role and token display name on the server. */
export const SELF_INIT_VERIFIER = "sealkeeper-verify";

export interface SelfInitOptions {
  /** Absolute path, on the server's machine, of the file holding the verifier token's ID. */
  verifierTokenFile: string;
  /** Lifetime of the verifier token (Go duration), default 24h: long enough to verify after first boot. */
  verifierTtl?: string;
  /** Label of the initialize block, default "sealkeeper". */
  name?: string;
}

/** What a server holds before anything is configured (OpenBao and Vault, non-dev). */
const EMPTY: ObservedState = {
  mounts: {},
  auth: { token: { type: "token", description: "token based credentials", options: {} } },
  authConfigs: {},
  roles: {},
  policyNames: ["default", "root"],
  policies: {},
};

type HclValue = string | number | boolean | null | HclValue[] | { [key: string]: HclValue };

/** A value the server computes when it runs the request (OpenBao's profile sources). */
function source(kind: "file", path: string): HclValue;
function source(kind: "env", name: string): HclValue;
function source(kind: "file" | "env", ref: string): HclValue {
  return kind === "file"
    ? { eval_source: "file", eval_type: "string", path: ref }
    : { eval_source: "env", eval_type: "string", env_var: ref, require_present: true };
}

/** Where each Kubernetes auth config's reviewer JWT comes from, read from the spec file itself (never its value). */
function reviewerJwtSources(specFile: string): Map<string, HclValue> {
  const out = new Map<string, HclValue>();
  const raw = parseYaml(readFileSync(specFile, "utf8")) as {
    auth?: { path?: string; config?: { token_reviewer_jwt_file?: string; token_reviewer_jwt_env?: string } }[];
  };
  for (const a of raw?.auth ?? []) {
    const c = a.config;
    if (!a.path || !c) continue;
    if (c.token_reviewer_jwt_file) {
      const file = c.token_reviewer_jwt_file;
      const full = isAbsolute(file) ? file : resolve(dirname(resolve(specFile)), file);
      // sealkeeper trims the file; the server's file source sends it as it is, and a JWT with a newline is refused
      if (/\s$/.test(readFileSync(full, "utf8"))) {
        throw new UsageError(
          `${full} ends with a newline or spaces: OpenBao's self-initialization sends the file as it is, and the kubernetes auth method refuses such a JWT`,
          {
            hint: `write it without the trailing newline: printf %s "$(cat ${full})" > ${full}.new && mv ${full}.new ${full}`,
          },
        );
      }
      out.set(a.path, source("file", full));
    } else if (c.token_reviewer_jwt_env) {
      out.set(a.path, source("env", c.token_reviewer_jwt_env));
    }
  }
  return out;
}

interface StanzaRequest {
  name: string;
  operation: "update" | "delete";
  path: string;
  data?: Record<string, HclValue>;
}

/** The policy of the verifier token: what `bootstrap plan` reads and what `bootstrap verify` needs, nothing more. */
export function verifierPolicy(spec: BootstrapSpec): string {
  const rules: [string, string[]][] = [
    ["sys/mounts", ["read"]],
    ["sys/auth", ["read"]],
    ["sys/policies/acl", ["list"]],
    ["auth/token/create/" + SELF_INIT_VERIFIER, ["update"]],
  ];
  for (const p of spec.policies) rules.push([`sys/policies/acl/${p.name}`, ["read"]]);
  for (const a of spec.auth.filter((x) => x.type === "kubernetes")) {
    rules.push(
      [`auth/${a.path}/config`, ["read"]],
      [`auth/${a.path}/role`, ["list"]],
      [`auth/${a.path}/role/*`, ["read"]],
    );
  }
  return rules.map(([path, caps]) => `path "${path}" {\n  capabilities = ${JSON.stringify(caps)}\n}\n`).join("");
}

/**
 * The requests of the stanza, in apply's order (mounts and auth methods, then auth configs and policies, then roles),
 * then the verifier.
 * @throws UsageError when the spec cannot be expressed (a body that would have to carry a secret inline).
 */
export function selfInitRequests(spec: BootstrapSpec, opts: SelfInitOptions): StanzaRequest[] {
  if (!isAbsolute(opts.verifierTokenFile)) {
    throw new UsageError(`the verifier token file must be an absolute path, got ${opts.verifierTokenFile}`);
  }
  const plan = planBootstrap(spec, EMPTY);
  const jwtSources = reviewerJwtSources(spec.file);
  const requests: StanzaRequest[] = [];
  const used = new Set<string>();
  const label = (id: string) => {
    const base = id.replace(/[^A-Za-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "");
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    return name;
  };
  for (const phase of [1, 2, 3, 4] as const) {
    for (const change of plan.changes.filter((c) => c.phase === phase)) {
      for (const req of change.requests) {
        if (req.path.startsWith("sys/audit/")) {
          // OpenBao 2.6 refuses audit devices through the API, self-init included (measured: 400 "cannot enable
          // audit device via API; use declarative, config-based audit device management instead")
          throw new UsageError(
            `the spec enables an audit device (${req.path}), which OpenBao accepts only from its config, not from self-initialization`,
            {
              hint: "declare the audit device in the server config's `audit` stanza and remove it from this spec's copy",
            },
          );
        }
        const data = { ...(req.body ?? {}) } as Record<string, HclValue>;
        if ("token_reviewer_jwt" in data) {
          const authPath = /^auth\/(.+)\/config$/.exec(req.path)?.[1] ?? "";
          const src = jwtSources.get(authPath);
          if (!src) throw new UsageError(`cannot tell where the reviewer JWT of auth/${authPath} comes from`);
          data.token_reviewer_jwt = src;
        }
        requests.push({
          name: label(change.id),
          operation: req.method === "DELETE" ? "delete" : "update",
          path: req.path,
          ...(req.method === "DELETE" ? {} : { data }),
        });
      }
    }
  }
  const verifierPolicies = [...new Set(spec.roles.flatMap((r) => r.token_policies)), "default"].sort();
  requests.push(
    {
      name: `${SELF_INIT_VERIFIER}-policy`,
      operation: "update",
      path: `sys/policies/acl/${SELF_INIT_VERIFIER}`,
      data: { policy: verifierPolicy(spec) },
    },
    {
      // bootstrap verify creates short-lived probe tokens with each role's policies through this role
      name: `${SELF_INIT_VERIFIER}-token-role`,
      operation: "update",
      path: `auth/token/roles/${SELF_INIT_VERIFIER}`,
      data: {
        allowed_policies: verifierPolicies,
        orphan: true,
        renewable: false,
        token_explicit_max_ttl: "10m",
      },
    },
    {
      // an orphan: it outlives the root token the server revokes when the stanza is done
      name: `${SELF_INIT_VERIFIER}-token`,
      operation: "update",
      path: "auth/token/create",
      data: {
        id: source("file", opts.verifierTokenFile),
        policies: [SELF_INIT_VERIFIER],
        no_parent: true,
        renewable: false,
        ttl: opts.verifierTtl ?? "24h",
        display_name: SELF_INIT_VERIFIER,
      },
    },
  );
  return requests;
}

/** Renders the stanza as HCL (OpenBao's server config). */
export function renderSelfInitStanza(spec: BootstrapSpec, opts: SelfInitOptions): string {
  const requests = selfInitRequests(spec, opts);
  const lines = [
    `# OpenBao self-initialization (OpenBao 2.4+), generated by sealkeeper from ${spec.file}.`,
    "# Runs once, on the first start of an auto-unsealed server on empty storage; the server then revokes its root",
    "# token. Prove the result with the verifier token (its ID is in the file named below):",
    `#   BAO_TOKEN=$(cat ${opts.verifierTokenFile}) sealkeeper bootstrap verify -f SPEC --token-role ${SELF_INIT_VERIFIER}`,
    `#   BAO_TOKEN=$(cat ${opts.verifierTokenFile}) sealkeeper bootstrap plan -f SPEC --detailed-exitcode`,
    `initialize ${hclString(opts.name ?? "sealkeeper")} {`,
  ];
  for (const r of requests) {
    lines.push(`  request ${hclString(r.name)} {`);
    lines.push(`    operation = ${hclString(r.operation)}`);
    lines.push(`    path      = ${hclString(r.path)}`);
    if (r.data) lines.push(`    data = ${hclValue(r.data, "    ")}`);
    lines.push("  }");
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

/** An HCL string literal. OpenBao parses its config with HCL 1, which has JSON's escapes and no templates. */
export function hclString(s: string): string {
  return JSON.stringify(s);
}

function hclValue(v: HclValue, indent: string): string {
  if (v === null) return "null";
  if (typeof v === "string") return hclString(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => hclValue(x, indent)).join(", ")}]`;
  const inner = `${indent}  `;
  const entries = Object.entries(v).map(([k, x]) => {
    const key = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k) ? k : hclString(k);
    return `${inner}${key} = ${hclValue(x, inner)}`;
  });
  return entries.length === 0 ? "{}" : `{\n${entries.join("\n")}\n${indent}}`;
}

/**
 * Refuses a server config on which self-initialization cannot run: OpenBao initialises itself only with an
 * auto-unseal seal (a Shamir seal has no place to keep its unseal keys), so a config without a `seal` stanza, or
 * with `seal "shamir"`, is refused before anything is written.
 * @throws UsageError naming the problem and what to do.
 */
export function checkServerConfigForSelfInit(configText: string, file: string): void {
  const seals = [...configText.matchAll(/^\s*seal\s+"([^"]+)"/gm)].map((m) => m[1]!);
  const auto = seals.filter((s) => s !== "shamir");
  if (auto.length === 0) {
    throw new UsageError(
      `${file} has ${seals.length === 0 ? "no seal stanza (a Shamir seal)" : 'only seal "shamir"'}: OpenBao self-initialization needs an auto-unseal seal`,
      {
        hint: "add a seal stanza (e.g. `sealkeeper autounseal awskms --target openbao`), or initialise with `sealkeeper init` and configure with `sealkeeper bootstrap apply`",
      },
    );
  }
}

/**
 * Refuses a live server that cannot self-initialise: one already initialised (OpenBao runs the stanza only on the
 * first start on empty storage and silently skips it afterwards) or one with a Shamir seal.
 * @throws UsageError naming the problem and what to do instead.
 */
export function checkSealStatusForSelfInit(address: string, status: { initialized: boolean; type?: string }): void {
  if (status.initialized) {
    throw new UsageError(
      `${address} is already initialised: OpenBao runs an initialize stanza only on its first start on empty storage (and ignores it afterwards)`,
      { hint: "configure it with `sealkeeper bootstrap apply -f SPEC` and a token instead" },
    );
  }
  if (status.type === "shamir") {
    throw new UsageError(`${address} has a Shamir seal: OpenBao self-initialization needs an auto-unseal seal`, {
      hint: "give the server a seal stanza (sealkeeper autounseal awskms --target openbao), or use `sealkeeper init` and `bootstrap apply`",
    });
  }
}
