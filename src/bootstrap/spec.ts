/**
 * The bootstrap spec: a YAML file naming mounts, auth methods (with Kubernetes config and roles), policies and apps.
 * Field names are Vault's where Vault has one. Loading validates the schema (errors carry file:line and the offending
 * key), then each resource kind (kinds/) resolves its section: reads the CA and reviewer-JWT files, expands apps into
 * the policies and roles they stand for, and checks references across kinds.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UsageError } from "../errors.js";
import { parseYamlWithSchema, type YamlLines } from "../util/yaml-schema.js";
import { type AppEnvironment, appSchema } from "./kinds/app.js";
import { type AuditSpec, auditSchema } from "./kinds/audit.js";
import { type AuthSpec, authSchema } from "./kinds/auth.js";
import { type LoadSpecOptions, specContext } from "./kinds/context.js";
import { type EsoSpec, esoSchema } from "./kinds/eso.js";
import { KINDS } from "./kinds/index.js";
import type { RoleSpec } from "./kinds/kubernetes-role.js";
import { type MountSpec, mountSchema } from "./kinds/mount.js";
import { type PolicySpec, policySchema } from "./kinds/policy.js";

/** A spec problem: file:line, the key, and what is wrong. Exit 1. (The shared YAML error, under the spec's name.) */
export { YamlSpecError as SpecError } from "../util/yaml-schema.js";
export type { AppEnvironment, RawApp } from "./kinds/app.js";
export type { AuditSpec } from "./kinds/audit.js";
export type { AuthSpec } from "./kinds/auth.js";
export type { LoadSpecOptions, SourceRef } from "./kinds/context.js";
export type { ClusterStoreSpec } from "./kinds/eso.js";
export type { KubernetesConfigSpec } from "./kinds/kubernetes-config.js";
export type { RawRole, RoleSpec } from "./kinds/kubernetes-role.js";
export type { MountSpec } from "./kinds/mount.js";
export type { PolicySpec } from "./kinds/policy.js";

const specSchema = z.strictObject({
  version: z.literal(1),
  audit: z.array(auditSchema).default([]),
  mounts: z.array(mountSchema).default([]),
  auth: z.array(authSchema).default([]),
  policies: z.array(policySchema).default([]),
  apps: z.array(appSchema).default([]),
  eso: esoSchema.optional(),
});

export type RawSpec = z.infer<typeof specSchema>;

export interface BootstrapSpec {
  file: string;
  audit: AuditSpec[];
  mounts: MountSpec[];
  auth: AuthSpec[];
  policies: PolicySpec[];
  roles: RoleSpec[];
  apps: AppEnvironment[];
  eso?: EsoSpec;
}

/**
 * Reads, validates and expands a spec file.
 * @throws SpecError (file:line: key: problem) for schema errors, unreadable referenced files, duplicates and
 *   dangling references; UsageError when the spec file itself cannot be read.
 */
export function loadSpec(file: string, opts: LoadSpecOptions = {}): BootstrapSpec {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read spec file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
      cause: err,
    });
  }
  return parseSpec(text, file, opts);
}

/** Like loadSpec, from text already in memory. `file` is used for messages and to resolve relative paths. */
export function parseSpec(text: string, file: string, opts: LoadSpecOptions = {}): BootstrapSpec {
  const { value, lines } = parseYamlWithSchema(text, specSchema, file);
  return resolveSpec(value, lines, opts);
}

/** Every kind resolves its section, in KINDS order; then every kind checks its references to the others. */
function resolveSpec(raw: RawSpec, src: YamlLines, opts: LoadSpecOptions): BootstrapSpec {
  const ctx = specContext(src, opts);
  const spec: BootstrapSpec = { file: src.file, audit: [], mounts: [], auth: [], policies: [], roles: [], apps: [] };
  for (const kind of KINDS) kind.resolve?.(raw, ctx, spec);
  for (const kind of KINDS) kind.link?.(raw, ctx, spec);
  return spec;
}
