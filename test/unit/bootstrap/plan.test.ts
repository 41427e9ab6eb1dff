import { describe, expect, it } from "vitest";
import { ROLE_FIELDS } from "../../../src/bootstrap/kinds/kubernetes-role.js";
import { type ObservedState, planBootstrap, planToJson, renderPlan, roleBody } from "../../../src/bootstrap/plan.js";
import { loadSpec, parseSpec } from "../../../src/bootstrap/spec.js";
import { paint } from "../../../src/cli/output.js";

const spec = loadSpec("examples/reference/bootstrap.yaml");

function empty(): ObservedState {
  return {
    mounts: { sys: { type: "system", description: "", options: {} } },
    auth: { token: { type: "token", description: "", options: {} } },
    authConfigs: {},
    roles: {},
    policyNames: ["default", "root"],
    audit: {},
    policies: {},
  };
}

/** The state a server would be in after applying the spec. */
function converged(): ObservedState {
  const o = empty();
  const a = spec.audit[0]!;
  o.audit = { file: { type: a.type, description: a.description, local: false, options: { ...a.options } } };
  o.mounts.secret = { type: "kv", description: "", options: { version: "2" } };
  o.auth.kubernetes = { type: "kubernetes", description: "", options: {} };
  const c = spec.auth[0]!.config!;
  o.authConfigs.kubernetes = {
    kubernetes_host: c.kubernetes_host,
    kubernetes_ca_cert: c.kubernetes_ca_cert!,
    issuer: "",
    disable_iss_validation: true,
    disable_local_ca_jwt: true,
    use_annotations_as_alias_metadata: false,
    pem_keys: [],
    token_reviewer_jwt_set: true,
  };
  o.roles.kubernetes = {};
  for (const r of spec.roles) o.roles.kubernetes[r.name] = { ...roleBody(r), policies: r.token_policies };
  for (const p of spec.policies) {
    o.policyNames.push(p.name);
    o.policies[p.name] = p.text;
  }
  return o;
}

describe("planBootstrap", () => {
  it("creates everything on an empty server, in dependency order", () => {
    const plan = planBootstrap(spec, empty());
    expect(plan.conflicts).toEqual([]);
    expect(plan.changes.map((c) => `${c.phase} ${c.action} ${c.id}`)).toEqual([
      "0 create audit file/",
      "1 create mount secret/",
      "1 create auth kubernetes/",
      "2 create config auth/kubernetes/config",
      "2 create policy my-app-read",
      "2 create policy my-app-dev-read",
      "2 create policy my-app-production-read",
      "3 create role kubernetes/eso-role",
      "3 create role kubernetes/my-app-dev",
      "3 create role kubernetes/my-app-production",
    ]);
    expect(plan.summary).toEqual({ create: 10, update: 0, delete: 0 });
  });

  it("is empty when the server matches", () => {
    const plan = planBootstrap(spec, converged());
    expect(plan.changes).toEqual([]);
    expect(renderPlan(plan, paint(false))).toBe("No changes: the server matches the spec.\n");
  });

  it("is pure: same inputs, same plan; inputs untouched", () => {
    const o = converged();
    const before = JSON.stringify(o);
    expect(JSON.stringify(planBootstrap(spec, o))).toBe(JSON.stringify(planBootstrap(spec, o)));
    expect(JSON.stringify(o)).toBe(before);
  });

  it("shows drift field by field", () => {
    const o = converged();
    o.roles.kubernetes!["eso-role"]!.token_ttl = 7200;
    o.roles.kubernetes!["eso-role"]!.bound_service_account_namespaces = ["external-secrets", "default"];
    o.policies["my-app-read"] = 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n';
    const plan = planBootstrap(spec, o);
    expect(plan.changes.map((c) => [c.id, c.fields.map((f) => f.field)])).toEqual([
      ["policy my-app-read", ["policy"]],
      ["role kubernetes/eso-role", ["bound_service_account_namespaces", "token_ttl"]],
    ]);
    const text = renderPlan(plan, paint(false));
    expect(text).toContain("    token_ttl: 2h -> 1h");
    expect(text).toContain('      - path "secret/data/*" {');
    expect(text).toContain('      + path "secret/data/production/my-app" {');
    expect(text).toContain("Plan: 0 to create, 2 to update, 0 to delete.");
  });

  it("treats bound lists as sets, and a comma string from the server as a list", () => {
    const o = converged();
    o.roles.kubernetes!["eso-role"]!.token_policies = "my-app-read";
    expect(planBootstrap(spec, o).changes).toEqual([]);
  });

  it("masks the reviewer JWT in text and JSON", () => {
    const plan = planBootstrap(spec, empty());
    const jwt = spec.auth[0]!.config!.token_reviewer_jwt!;
    expect(renderPlan(plan, paint(false))).not.toContain(jwt);
    expect(renderPlan(plan, paint(false))).toContain("token_reviewer_jwt: (sensitive)");
    expect(JSON.stringify(planToJson(plan))).not.toContain(jwt);
    // the request apply sends does carry it
    expect(JSON.stringify(plan.changes.find((c) => c.kind === "auth-config")!.requests)).toContain(jwt);
  });

  it("deletes unmanaged things only with purge, never root, default or token/", () => {
    const o = converged();
    o.policyNames.push("stray");
    o.roles.kubernetes!.stray = { token_policies: ["stray"] };
    o.auth.userpass = { type: "userpass", description: "", options: {} };
    expect(planBootstrap(spec, o).changes).toEqual([]);
    const plan = planBootstrap(spec, o, { purge: true });
    expect(plan.changes.map((c) => `${c.phase} ${c.action} ${c.id}`)).toEqual([
      "3 delete role kubernetes/stray",
      "4 delete auth userpass/",
      "4 delete policy stray",
    ]);
  });

  it("reports a mount of another type as a conflict, not a change", () => {
    const o = converged();
    o.mounts.secret = { type: "kv", description: "", options: { version: "1" } };
    expect(planBootstrap(spec, o).changes.map((c) => c.id)).toEqual(["mount secret/"]);
    o.mounts.secret = { type: "transit", description: "", options: {} };
    expect(planBootstrap(spec, o).conflicts).toEqual([
      "mount secret/ is of type transit on the server, not kv: move or remove it by hand",
    ]);
  });

  it("plans a config update when the reviewer JWT is missing on the server", () => {
    const o = converged();
    o.authConfigs.kubernetes!.token_reviewer_jwt_set = false;
    o.authConfigs.kubernetes!.kubernetes_host = "https://old";
    const plan = planBootstrap(spec, o);
    expect(plan.changes[0]!.fields.map((f) => f.field)).toEqual(["kubernetes_host", "token_reviewer_jwt"]);
  });
});

describe("renderPlan", () => {
  it("names a CA certificate by its digest, not its 10 lines", () => {
    const text = renderPlan(planBootstrap(spec, empty()), paint(false));
    expect(text).toMatch(/ {4}kubernetes_ca_cert: PEM certificate \(sha256 [0-9a-f]{16}\)\n/);
    expect(text).not.toContain("BEGIN CERTIFICATE");
  });
});

describe("role fields: one table for schema, resolution, write body and drift", () => {
  const text = `version: 1
auth:
  - path: kubernetes
    type: kubernetes
    roles:
      - name: every-field
        bound_service_account_names: [sa]
        bound_service_account_namespaces: [ns]
        bound_service_account_namespace_selector: '{"matchLabels":{"team":"a"}}'
        audience: vault
        alias_name_source: serviceaccount_name
        token_policies: [p]
        token_ttl: 1h
        token_max_ttl: 2h
        token_explicit_max_ttl: 3h
        token_period: 30m
        token_type: service
        token_no_default_policy: true
        token_num_uses: 5
        token_bound_cidrs: [10.0.0.0/8]
`;
  const only = parseSpec(text, "spec.yaml");
  const role = only.roles[0]!;

  it("every field the schema accepts reaches the write body, durations in seconds", () => {
    expect(Object.keys(roleBody(role)).sort()).toEqual(Object.keys(ROLE_FIELDS).sort());
    expect(roleBody(role)).toMatchObject({ token_ttl: 3600, token_max_ttl: 7200, token_explicit_max_ttl: 10800 });
    expect(roleBody(role).token_period).toBe(1800);
  });

  it("each field drifts on its own, and an omitted field is reset to the server's default", () => {
    const o = empty();
    o.auth.kubernetes = { type: "kubernetes", description: "", options: {} };
    const onServer = roleBody(role);
    o.roles.kubernetes = { "every-field": { ...onServer } };
    expect(planBootstrap(only, o).changes).toEqual([]);
    for (const field of Object.keys(ROLE_FIELDS)) {
      const drifted = structuredClone(o);
      drifted.roles.kubernetes!["every-field"]![field] = ROLE_FIELDS[field as keyof typeof ROLE_FIELDS].default;
      const plan = planBootstrap(only, drifted);
      expect(plan.changes.map((c) => c.fields.map((f) => f.field))).toEqual([[field]]);
    }
  });
});

describe("audit devices", () => {
  it("plans a changed device as disable + enable (a device cannot be tuned), first of all", () => {
    const o = converged();
    o.audit!.file!.options.mode = "0640";
    o.policies["my-app-read"] = 'path "secret/data/*" {\n  capabilities = ["read"]\n}\n';
    const plan = planBootstrap(spec, o);
    expect(plan.changes.map((c) => `${c.phase} ${c.action} ${c.id}`)).toEqual([
      "0 update audit file/",
      "2 update policy my-app-read",
    ]);
    expect(plan.changes[0]!.fields).toEqual([
      {
        field: "options",
        before: { file_path: "/vault/audit/audit.log", mode: "0640" },
        after: spec.audit[0]!.options,
      },
    ]);
    expect(plan.changes[0]!.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      "DELETE sys/audit/file",
      "POST sys/audit/file",
    ]);
  });

  it("on a server that refuses API audit devices (OpenBao's default) plans a conflict that gives the config stanza", () => {
    const o = empty();
    o.auditApiCreation = false;
    const plan = planBootstrap(spec, o);
    expect(plan.changes.some((c) => c.kind === "audit")).toBe(false);
    expect(plan.conflicts).toHaveLength(1);
    expect(plan.conflicts[0]).toContain("refuses to enable audit devices through its API");
    expect(plan.conflicts[0]).toContain(
      'audit "file" "file" {\n  description = "audit log on the server\'s audit volume"\n  options {\n    file_path = "/vault/audit/audit.log"\n    mode = "0600"\n  }\n}',
    );
    // declared in its config, the device is observed like any other: no change
    const declared = converged();
    declared.auditApiCreation = false;
    expect(planBootstrap(spec, declared).changes).toEqual([]);
    // a conflict and nothing else to do is not "the server matches the spec"
    const onlyConflict = converged();
    onlyConflict.auditApiCreation = false;
    delete onlyConflict.audit!.file;
    const text = renderPlan(planBootstrap(spec, onlyConflict), paint(false));
    expect(text).toMatch(/^! conflict: audit file\/ is not enabled/m);
    expect(text.endsWith("No changes sealkeeper can make: 1 conflict(s) above need the operator.\n")).toBe(true);
  });

  it("never disables a device the spec does not name, not even with purge", () => {
    const o = converged();
    o.audit!.other = { type: "socket", description: "", local: false, options: { address: "127.0.0.1:9090" } };
    expect(planBootstrap(spec, o, { purge: true }).changes.filter((c) => c.kind === "audit")).toEqual([]);
  });
});
