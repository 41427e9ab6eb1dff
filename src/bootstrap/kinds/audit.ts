/**
 * Audit devices (`audit:`): file and socket devices, enabled FIRST (phase 0) so that every later write of the apply is
 * audited. Vault cannot tune an audit device: a changed device is disabled and enabled again (which starts a new HMAC
 * salt). sealkeeper never disables a device the spec does not name (not even with --purge): removing an audit device
 * is a decision for a person. OpenBao 2.x refuses to enable audit devices through the API unless its server config
 * sets unsafe_allow_api_audit_creation: there a device the spec names must be declared in the server configuration
 * (an `audit "<type>" "<path>"` stanza); plan says so, with the stanza, instead of sending a request that would fail.
 */
import { z } from "zod";
import { type FieldChange, mountPath, type SourceRef, sameValue } from "./context.js";
import type { ResourceKind } from "./kind.js";

const optionValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);

export const auditSchema = z.strictObject({
  path: mountPath,
  type: z.enum(["file", "socket"]),
  description: z.string().optional(),
  local: z.boolean().optional(),
  options: z.record(z.string(), optionValue).default({}),
});

export interface AuditSpec {
  path: string;
  type: "file" | "socket";
  description: string;
  local: boolean;
  options: Record<string, string>;
  /** Lines of each option, for lint. */
  optionLines: Record<string, number>;
  source: SourceRef;
}

/** A row of sys/audit. */
export interface ObservedAudit {
  type: string;
  description: string;
  local: boolean;
  options: Record<string, string>;
}

/** The `audit` stanza of an OpenBao server config that declares the device (OpenBao's way to enable one). */
export function auditConfigStanza(a: Pick<AuditSpec, "path" | "type" | "description" | "options">): string {
  const opts = Object.entries(a.options).map(([k, v]) => `    ${k} = ${JSON.stringify(v)}`);
  return [
    `audit ${JSON.stringify(a.type)} ${JSON.stringify(a.path)} {`,
    ...(a.description ? [`  description = ${JSON.stringify(a.description)}`] : []),
    "  options {",
    ...opts,
    "  }",
    "}",
  ].join("\n");
}

export const auditKind: ResourceKind = {
  name: "audit device",
  resolve(raw, ctx, spec) {
    const seen = new Set<string>();
    raw.audit.forEach((a, i) => {
      if (seen.has(a.path)) ctx.fail(["audit", i, "path"], `audit device ${a.path} is declared twice`);
      seen.add(a.path);
      const required = a.type === "file" ? "file_path" : "address";
      if (!a.options[required]) {
        ctx.fail(["audit", i, "options"], `a ${a.type} audit device needs options.${required}`);
      }
      const optionLines: Record<string, number> = {};
      for (const k of Object.keys(a.options)) optionLines[k] = ctx.src.keyLine(["audit", i, "options", k]);
      spec.audit.push({
        path: a.path,
        type: a.type,
        description: a.description ?? "",
        local: a.local ?? false,
        options: a.options,
        optionLines,
        source: ctx.at(["audit", i]),
      });
    });
  },
  async observe({ client, spec, observed }) {
    // nothing to compare when the spec declares no device (devices it does not name are never removed), and reading
    // sys/audit needs sudo, which a read-only verifier token (bootstrap export --self-init) does not have
    if (spec.audit.length === 0) return;
    const [table, state] = await Promise.all([
      client.read<{ data?: AuditTable } & AuditTable>("sys/audit"),
      // OpenBao says here whether the API may create audit devices; Vault has no such setting (it always may)
      client
        .read<{ data?: { unsafe_allow_api_audit_creation?: boolean } }>("sys/config/state/sanitized")
        .catch(() => undefined),
    ]);
    observed.audit = toAudit(table);
    observed.auditApiCreation = state?.data?.unsafe_allow_api_audit_creation !== false;
  },
  plan(spec, observed, out) {
    for (const a of spec.audit) {
      const have = observed.audit?.[a.path];
      const id = `audit ${a.path}/`;
      const body: Record<string, unknown> = {
        type: a.type,
        description: a.description,
        local: a.local,
        options: a.options,
      };
      const enable = { method: "POST" as const, path: `sys/audit/${a.path}`, body };
      if (!have) {
        if (observed.auditApiCreation === false) {
          out.conflicts.push(
            `${id} is not enabled, and this server refuses to enable audit devices through its API (OpenBao without ` +
              `unsafe_allow_api_audit_creation): declare it in the server configuration and restart or SIGHUP:\n${auditConfigStanza(a)}`,
          );
          continue;
        }
        const fields: FieldChange[] = [
          { field: "type", after: a.type },
          ...(a.description ? [{ field: "description", after: a.description }] : []),
          ...(a.local ? [{ field: "local", after: true }] : []),
          { field: "options", after: a.options },
        ];
        out.changes.push({ id, kind: "audit", action: "create", phase: 0, fields, requests: [enable] });
        continue;
      }
      const fields: FieldChange[] = [];
      if (have.type !== a.type) fields.push({ field: "type", before: have.type, after: a.type });
      if (have.description !== a.description) {
        fields.push({ field: "description", before: have.description, after: a.description });
      }
      if (have.local !== a.local) fields.push({ field: "local", before: have.local, after: a.local });
      if (!sameValue(sortKeys(have.options), sortKeys(a.options))) {
        fields.push({ field: "options", before: have.options, after: a.options });
      }
      if (fields.length === 0) continue;
      if (observed.auditApiCreation === false) {
        out.conflicts.push(
          `${id} differs from the spec (${fields.map((f) => f.field).join(", ")}), and this server manages audit ` +
            `devices in its configuration: change its audit stanza to:\n${auditConfigStanza(a)}`,
        );
        continue;
      }
      // an audit device cannot be tuned: disable and enable again (a new HMAC salt starts)
      out.changes.push({
        id,
        kind: "audit",
        action: "update",
        phase: 0,
        fields,
        requests: [{ method: "DELETE", path: `sys/audit/${a.path}` }, enable],
      });
    }
  },
};

type AuditTable = Record<
  string,
  { type?: string; description?: string; local?: boolean; options?: Record<string, string> | null }
>;

function toAudit(raw: ({ data?: AuditTable } & AuditTable) | undefined): Record<string, ObservedAudit> {
  const table = (raw?.data ?? raw ?? {}) as AuditTable;
  const out: Record<string, ObservedAudit> = {};
  for (const [key, d] of Object.entries(table)) {
    if (!key.endsWith("/") || typeof d !== "object" || d === null || typeof d.type !== "string") continue;
    out[key.slice(0, -1)] = {
      type: d.type,
      description: d.description ?? "",
      local: d.local ?? false,
      options: Object.fromEntries(Object.entries(d.options ?? {}).map(([k, v]) => [k, String(v)])),
    };
  }
  return out;
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}
