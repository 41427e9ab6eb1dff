/**
 * What every resource kind shares: the zod building blocks of the spec, the context a kind resolves its section in
 * (file:line errors, referenced files), and the plan's change types and comparison helpers.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { formatKeyPath, type KeyPath, YamlSpecError as SpecError, type YamlLines } from "../../util/yaml-schema.js";
import { parseTtlSeconds } from "../duration.js";

// ---- schema building blocks ------------------------------------------------------------------------------------

export const ttl = z.union([z.number(), z.string()]).superRefine((v, ctx) => {
  if (parseTtlSeconds(v) === undefined) {
    ctx.addIssue({ code: "custom", message: `cannot parse duration "${v}" (use seconds or e.g. 30m, 1h, 1h30m, 7d)` });
  }
});
export const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, '.', '_' or '-', starting with a letter or digit");
export const mountPath = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*[A-Za-z0-9._-]$|^[A-Za-z0-9]$/, "must be a mount path like secret or kv/team")
  .refine((p) => !p.includes("//"), "must not contain //");
export const stringList = z.array(z.string().min(1)).min(1);
export const httpUrl = z.string().regex(/^https?:\/\/\S+$/, "must be an http(s) URL");

// ---- resolution context ----------------------------------------------------------------------------------------

/** Where something came from, for lint findings and errors. */
export interface SourceRef {
  file: string;
  line: number;
  /** For policy text: the file line of the policy's first line (policy line n is at hclLine + n - 1). */
  hclLine?: number;
}

export interface LoadSpecOptions {
  /** Environment for token_reviewer_jwt_env (the CLI passes its io.env). */
  env?: Record<string, string | undefined>;
}

/** Handed to every kind's resolve: source lines, errors at a key, and files the spec refers to. */
export interface SpecContext {
  file: string;
  baseDir: string;
  src: YamlLines;
  opts: LoadSpecOptions;
  /** The source of the value at `path`. */
  at(path: KeyPath): SourceRef;
  /** Throws SpecError at the key `path`. */
  fail(path: KeyPath, detail: string): never;
  /** Reads a file the spec names (relative to the spec's directory); a failure is a SpecError at `path`. */
  readRef(path: KeyPath, ref: string, what: string): string;
  /** Absolute path of a file the spec names. */
  fullPath(ref: string): string;
}

export function specContext(src: YamlLines, opts: LoadSpecOptions): SpecContext {
  const file = src.file;
  const baseDir = dirname(resolve(file));
  const fullPath = (ref: string) => (isAbsolute(ref) ? ref : resolve(baseDir, ref));
  const fail = (path: KeyPath, detail: string): never => {
    throw new SpecError(file, src.keyLine(path), formatKeyPath(path), detail);
  };
  return {
    file,
    baseDir,
    src,
    opts,
    at: (path) => ({ file, line: src.line(path) }),
    fail,
    fullPath,
    readRef(path, ref, what) {
      try {
        return readFileSync(fullPath(ref), "utf8");
      } catch (err) {
        return fail(path, `cannot read ${what} file ${ref}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      }
    },
  };
}

// ---- plan types ------------------------------------------------------------------------------------------------

export type ChangeKind =
  | "audit"
  | "mount"
  | "auth"
  | "auth-config"
  | "policy"
  | "role"
  | "entity"
  | "entity-alias"
  | "group";
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
  /**
   * Body fields apply fills with server IDs looked up by name just before sending (an entity's ID, an auth method's
   * accessor: they may be created earlier in the same apply). `list`: the field takes every ID as a list.
   */
  refs?: { field: string; refs: IdRef[]; list?: boolean }[];
}

/** What a ref names: an identity entity by name, or an auth method (its path) whose accessor is wanted. */
export type IdRef = { entity: string } | { authAccessor: string };

export type Phase = 0 | 1 | 2 | 3 | 4;
export const PHASES: readonly Phase[] = [0, 1, 2, 3, 4];

export interface PlannedChange {
  /** Stable name of the step, used in errors: e.g. `policy my-app-read`, `role kubernetes/eso-role`. */
  id: string;
  kind: ChangeKind;
  action: ChangeAction;
  /**
   * 0 audit devices (first, so that every later write is audited); 1 mounts and auth methods; 2 auth config and
   * policies; 3 roles; 4 deletions of policies and auth methods.
   */
  phase: Phase;
  fields: FieldChange[];
  requests: PlannedRequest[];
}

export interface PlanOptions {
  /** Delete policies, roles and auth methods that the spec does not name (never root, default or token/). */
  purge?: boolean;
}

/** What a kind's plan and purge hooks add to. */
export interface PlanOutput {
  changes: PlannedChange[];
  /** Differences apply cannot resolve (a mount of another type at the same path). */
  conflicts: string[];
}

export function sameSet(a: unknown, b: unknown): boolean {
  if (!Array.isArray(a) || !Array.isArray(b)) return sameValue(a, b);
  const sa = [...new Set(a.map(String))].sort();
  const sb = [...new Set(b.map(String))].sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

/** Equal as JSON, object keys in any order (the server may return a map's keys in another order). */
export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a ?? null)) === JSON.stringify(canonical(b ?? null));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

export function fieldsOf(body: Record<string, unknown>): FieldChange[] {
  return Object.entries(body).map(([field, after]) => ({ field, after }));
}
