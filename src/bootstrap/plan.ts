/**
 * planBootstrap(spec, observed) -> Plan: a PURE function. It compares the desired state with what the server holds and
 * lists every change, field by field, with the exact requests apply will send. Nothing here talks to a server.
 */
import { createHash } from "node:crypto";
import { escapeControl } from "../util/redact.js";
import { formatSeconds } from "./duration.js";
import type { FieldChange, PlannedChange, PlanOptions, PlanOutput } from "./kinds/context.js";
import { KINDS } from "./kinds/index.js";
import type { ObservedState } from "./kinds/kind.js";
import { normalizePolicy } from "./kinds/policy.js";
import { type LintFinding, lintSpec } from "./lint.js";
import type { BootstrapSpec } from "./spec.js";

export type {
  ChangeAction,
  ChangeKind,
  FieldChange,
  PlannedChange,
  PlannedRequest,
  PlanOptions,
} from "./kinds/context.js";
export type { ObservedState } from "./kinds/kind.js";
export type { ObservedK8sConfig } from "./kinds/kubernetes-config.js";
export { type ObservedRole, roleBody } from "./kinds/kubernetes-role.js";
export type { ObservedMount } from "./kinds/mount.js";
export { normalizePolicy } from "./kinds/policy.js";

export interface Plan {
  changes: PlannedChange[];
  /** Lint findings (warnings; `--strict` turns them into errors at the CLI). */
  findings: LintFinding[];
  /** Differences apply cannot resolve (a mount of another type at the same path): apply refuses while any exist. */
  conflicts: string[];
  summary: { create: number; update: number; delete: number };
}

/**
 * Computes the changes that take `observed` to `spec`: every kind's plan hook, then (with purge) every kind's purge
 * hook, in KINDS order, sorted by phase (stable). Pure: same inputs, same plan, no I/O.
 * Never throws for a difference; unresolvable ones go to `conflicts`.
 */
export function planBootstrap(spec: BootstrapSpec, observed: ObservedState, opts: PlanOptions = {}): Plan {
  const out: PlanOutput = { changes: [], conflicts: [] };
  for (const kind of KINDS) kind.plan?.(spec, observed, out);
  if (opts.purge) for (const kind of KINDS) kind.purge?.(spec, observed, out, opts);
  const changes = out.changes.sort((a, b) => a.phase - b.phase);
  const summary = { create: 0, update: 0, delete: 0 };
  for (const c of changes) summary[c.action]++;
  return {
    changes,
    findings: lintSpec(spec, { existingPolicies: observed.policyNames }),
    conflicts: out.conflicts,
    summary,
  };
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
  // a value read from the server (or the spec) may carry anything: JSON escapes C0, escapeControl the rest
  return escapeControl(String(JSON.stringify(v)));
}

/** Human view of a plan: one block per change, one line per field (multi-line text as a +/- line diff). */
export function renderPlan(
  plan: Plan,
  p: { green(s: string): string; red(s: string): string; yellow(s: string): string },
): string {
  const lines: string[] = [];
  const sign = { create: p.green("+"), update: p.yellow("~"), delete: p.red("-") };
  for (const c of plan.changes) {
    lines.push(`${sign[c.action]} ${c.action} ${escapeControl(c.id)}`);
    for (const f of c.fields) {
      const field = escapeControl(f.field);
      const multiline =
        !f.sensitive &&
        !isPem(f.after) &&
        !isPem(f.before) &&
        (typeof f.after === "string"
          ? f.after.includes("\n")
          : typeof f.before === "string" && f.before.includes("\n"));
      if (multiline) {
        lines.push(`    ${field}:`);
        for (const d of diffLines(String(f.before ?? ""), String(f.after ?? "")).map(escapeControl)) {
          lines.push(`      ${d.startsWith("+") ? p.green(d) : d.startsWith("-") ? p.red(d) : d}`);
        }
      } else if (c.action === "create" || f.before === undefined) {
        lines.push(`    ${field}: ${show(f, f.after)}`);
      } else if (c.action === "delete" || f.after === undefined) {
        lines.push(`    ${field}: ${show(f, f.before)}`);
      } else {
        lines.push(`    ${field}: ${show(f, f.before)} -> ${show(f, f.after)}`);
      }
    }
  }
  for (const c of plan.conflicts) lines.push(`${p.red("!")} conflict: ${escapeControl(c)}`);
  const { create, update, delete: del } = plan.summary;
  lines.push(
    plan.changes.length > 0
      ? `Plan: ${create} to create, ${update} to update, ${del} to delete.`
      : plan.conflicts.length > 0
        ? `No changes sealkeeper can make: ${plan.conflicts.length} conflict(s) above need the operator.`
        : "No changes: the server matches the spec.",
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
