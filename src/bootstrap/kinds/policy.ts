/** ACL policies (`policies:`, and the ones `apps` generate): HCL given inline, in a file, or as rules. */
import { z } from "zod";
import { YamlSpecError as SpecError } from "../../util/yaml-schema.js";
import { renderPolicyHcl } from "../policy-hcl.js";
import { name, type PlannedRequest, type SourceRef } from "./context.js";
import type { ResourceKind } from "./kind.js";

const ruleSchema = z.strictObject({
  path: z.string().min(1),
  capabilities: z.array(z.enum(["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"])),
});

export const policySchema = z.strictObject({
  name,
  hcl: z.string().optional(),
  file: z.string().min(1).optional(),
  rules: z.array(ruleSchema).min(1).optional(),
});

export interface PolicySpec {
  name: string;
  text: string;
  /** The app that generated it, when it came from `apps`. */
  app?: string;
  /** Paths this policy is meant to grant read on (apps only): lint flags anything broader. */
  readOnlyPaths?: string[];
  source: SourceRef;
}

/** Policies that are never deleted, purge or not. */
const PROTECTED_POLICIES = new Set(["root", "default", "response-wrapping", "control-group"]);

/** Policy texts compare without trailing spaces and surrounding blank lines (the server keeps text as given). */
export function normalizePolicy(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trimEnd())
    .join("\n")
    .trim();
}

export const policyKind: ResourceKind = {
  name: "policy",
  resolve(raw, ctx, spec) {
    raw.policies.forEach((p, i) => {
      const given = [p.hcl, p.file, p.rules].filter((x) => x !== undefined).length;
      if (given !== 1) ctx.fail(["policies", i, "name"], `policy ${p.name} needs exactly one of hcl, file or rules`);
      if (p.name === "root") ctx.fail(["policies", i, "name"], "the root policy cannot be managed");
      if (p.hcl !== undefined) {
        spec.policies.push({
          name: p.name,
          text: p.hcl,
          source: {
            file: ctx.file,
            line: ctx.src.line(["policies", i]),
            hclLine: ctx.src.textStartLine(["policies", i, "hcl"]),
          },
        });
      } else if (p.file !== undefined) {
        spec.policies.push({
          name: p.name,
          text: ctx.readRef(["policies", i, "file"], p.file, "policy"),
          source: { file: ctx.fullPath(p.file), line: 1, hclLine: 1 },
        });
      } else {
        spec.policies.push({ name: p.name, text: renderPolicyHcl(p.rules!), source: ctx.at(["policies", i, "rules"]) });
      }
    });
  },
  link(_raw, _ctx, spec) {
    // duplicates across hand-written and generated entries
    const seen = new Set<string>();
    for (const p of spec.policies) {
      if (seen.has(p.name)) {
        throw new SpecError(p.source.file, p.source.line, "policies", `policy ${p.name} is defined twice`);
      }
      seen.add(p.name);
    }
  },
  observe({ client, spec, observed, queue }) {
    const existing = new Set(observed.policyNames);
    for (const p of spec.policies) {
      if (!existing.has(p.name)) continue;
      queue(async () => {
        const res = await client.read<{ data?: { policy?: string }; policy?: string }>(`sys/policies/acl/${p.name}`);
        if (res) observed.policies[p.name] = res.data?.policy ?? res.policy ?? "";
      });
    }
  },
  plan(spec, observed, out) {
    const existing = new Set(observed.policyNames);
    for (const p of spec.policies) {
      const id = `policy ${p.name}`;
      const have = observed.policies[p.name];
      const request: PlannedRequest = { method: "POST", path: `sys/policies/acl/${p.name}`, body: { policy: p.text } };
      if (have === undefined && !existing.has(p.name)) {
        out.changes.push({
          id,
          kind: "policy",
          action: "create",
          phase: 2,
          fields: [{ field: "policy", after: p.text }],
          requests: [request],
        });
      } else if (normalizePolicy(have ?? "") !== normalizePolicy(p.text)) {
        out.changes.push({
          id,
          kind: "policy",
          action: "update",
          phase: 2,
          fields: [{ field: "policy", before: have ?? "", after: p.text }],
          requests: [request],
        });
      }
    }
  },
  purge(spec, observed, out) {
    const wanted = new Set(spec.policies.map((p) => p.name));
    for (const policyName of observed.policyNames) {
      if (wanted.has(policyName) || PROTECTED_POLICIES.has(policyName)) continue;
      out.changes.push({
        id: `policy ${policyName}`,
        kind: "policy",
        action: "delete",
        phase: 4,
        fields: [],
        requests: [{ method: "DELETE", path: `sys/policies/acl/${policyName}` }],
      });
    }
  },
};
