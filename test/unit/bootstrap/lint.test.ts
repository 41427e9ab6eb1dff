import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LINT_RULES, lintPolicyFile, lintSpec } from "../../../src/bootstrap/lint.js";
import { loadSpec } from "../../../src/bootstrap/spec.js";

const FIXTURES = join(import.meta.dirname, "fixtures", "lint");

/** The line that carries `# expect: <rule>` in a fixture. */
function expectedLine(file: string, rule: string): number {
  const lines = readFileSync(file, "utf8").split("\n");
  const i = lines.findIndex((l) => l.includes(`# expect: ${rule}`));
  if (i < 0) throw new Error(`${file} has no expect marker`);
  return i + 1;
}

describe("policy lint", () => {
  it("has one fixture per rule", () => {
    const fixtures = readdirSync(FIXTURES).map((f) => f.replace(/\.yaml$/, ""));
    expect(fixtures.sort()).toEqual(Object.keys(LINT_RULES).sort());
  });

  for (const rule of Object.keys(LINT_RULES)) {
    it(`flags ${rule} at the right line, with a fix`, () => {
      const file = join(FIXTURES, `${rule}.yaml`);
      const findings = lintSpec(loadSpec(file));
      expect(findings.map((f) => f.rule)).toEqual([rule]);
      expect(findings[0]!.file).toBe(file);
      expect(findings[0]!.line).toBe(expectedLine(file, rule));
      expect(findings[0]!.fix.length).toBeGreaterThan(5);
    });
  }

  it("passes the CI identities example with no findings, and reads its jwt and approle roles", () => {
    const ci = loadSpec("examples/reference/ci-identities.yaml");
    expect(lintSpec(ci)).toEqual([]);
    expect(ci.jwtRoles.map((r) => [r.name, r.bound_claims])).toEqual([
      ["deploy-api", { repository: "acme/api", ref: "refs/heads/main" }],
    ]);
    expect(ci.appRoles.map((r) => [r.name, r.secret_id_ttl])).toEqual([["backup", 86400]]);
  });

  it("passes the reference spec with no findings", () => {
    expect(lintSpec(loadSpec("examples/reference/bootstrap.yaml"))).toEqual([]);
  });

  it("lints bare HCL files with their own line numbers", () => {
    const text =
      'path "secret/data/a" {\n  capabilities = ["read"]\n}\n\npath "secret/b/*" {\n  capabilities = ["read", "sudo"]\n}\n';
    const f = lintPolicyFile("p.hcl", text);
    expect(f.map((x) => `${x.line}:${x.rule}`)).toEqual([
      "5:broad-glob",
      "5:kv2-path-without-data",
      "6:sudo-capability",
    ]);
  });

  it("does not flag an unknown policy that exists on the server", () => {
    const spec = loadSpec(join(FIXTURES, "unknown-policy.yaml"));
    expect(lintSpec(spec, { existingPolicies: ["app-reed"] })).toEqual([]);
  });

  it("does not flag an explicit deny", () => {
    const f = lintPolicyFile("p.hcl", 'path "sys/*" {\n  capabilities = ["deny"]\n}\n');
    expect(f).toEqual([]);
  });
});
