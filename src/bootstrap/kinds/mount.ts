/** Secret-engine mounts (`mounts:`): enabled at sys/mounts/<path>, tuned in place, never deleted by sealkeeper. */
import { z } from "zod";
import { type FieldChange, fieldsOf, mountPath, type SourceRef } from "./context.js";
import type { ResourceKind } from "./kind.js";

export const mountSchema = z.strictObject({
  path: mountPath,
  type: z.string().min(1),
  description: z.string().optional(),
  options: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).optional(),
});

export interface MountSpec {
  path: string;
  type: string;
  description?: string;
  options?: Record<string, string>;
  source: SourceRef;
}

/** A row of sys/mounts or sys/auth. */
export interface ObservedMount {
  type: string;
  description: string;
  options: Record<string, string>;
}

const RESERVED = ["sys", "identity", "cubbyhole", "auth", "token"];

export const mountKind: ResourceKind = {
  name: "mount",
  resolve(raw, ctx, spec) {
    const seen = new Set<string>();
    raw.mounts.forEach((m, i) => {
      if (seen.has(m.path)) ctx.fail(["mounts", i, "path"], `mount ${m.path} is declared twice`);
      seen.add(m.path);
      if (RESERVED.includes(m.path.split("/")[0]!)) ctx.fail(["mounts", i, "path"], `${m.path} is a reserved path`);
      // kv-v2 is the CLI's shorthand; the server stores it as type kv with options.version 2
      const isKv2 = m.type === "kv-v2";
      const options = isKv2 ? { ...m.options, version: "2" } : m.options;
      spec.mounts.push({
        path: m.path,
        type: isKv2 ? "kv" : m.type,
        description: m.description,
        options,
        source: ctx.at(["mounts", i]),
      });
    });
  },
  plan(spec, observed, out) {
    for (const m of spec.mounts) {
      const have = observed.mounts[m.path];
      const id = `mount ${m.path}/`;
      if (!have) {
        const body: Record<string, unknown> = { type: m.type };
        if (m.description !== undefined) body.description = m.description;
        if (m.options) body.options = m.options;
        out.changes.push({
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
        out.conflicts.push(`${id} is of type ${have.type} on the server, not ${m.type}: move or remove it by hand`);
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
          out.conflicts.push(
            `${id} is kv version ${haveVersion} on the server; version ${wantVersion} needs a new mount`,
          );
        }
      }
      if (fields.length > 0) {
        out.changes.push({
          id,
          kind: "mount",
          action: "update",
          phase: 1,
          fields,
          requests: [{ method: "POST", path: `sys/mounts/${m.path}/tune`, body: tune }],
        });
      }
    }
  },
};

type MountTable = Record<string, { type?: string; description?: string; options?: Record<string, string> | null }>;

/** The rows of a sys/mounts or sys/auth read, by path without the trailing slash. */
export function toMounts(raw: ({ data?: MountTable } & MountTable) | undefined): Record<string, ObservedMount> {
  const table = (raw?.data ?? raw ?? {}) as MountTable;
  const out: Record<string, ObservedMount> = {};
  for (const [key, m] of Object.entries(table)) {
    if (!key.endsWith("/") || typeof m !== "object" || m === null || typeof m.type !== "string") continue;
    out[key.slice(0, -1)] = { type: m.type, description: m.description ?? "", options: { ...(m.options ?? {}) } };
  }
  return out;
}

export type { MountTable };
