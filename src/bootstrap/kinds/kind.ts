/**
 * A resource kind: one section of the spec (or a part of one) with everything sealkeeper does for it. spec.ts,
 * observe.ts and plan.ts run the hooks of KINDS (index.ts) in order; a new kind is a new file there.
 *
 * - resolve: the kind's section of the raw spec into resolved entries (errors at file:line);
 * - link: after every kind resolved, checks across kinds (duplicates, references);
 * - observe: GET/LIST reads of what the kind manages (queued, run concurrently by observe.ts);
 * - plan: PURE, the changes taking the observed state to the spec (each change carries its phase, which is its apply
 *   step, and its requests; apply.ts sends them phase by phase);
 * - purge: deletions of what the spec does not name (`--purge`).
 */
import type { VaultClient } from "../../vault/client.js";
import type { BootstrapSpec, RawSpec } from "../spec.js";
import type { ObservedAudit } from "./audit.js";
import type { PlanOptions, PlanOutput, SpecContext } from "./context.js";
import type { ObservedEntity, ObservedGroup } from "./identity.js";
import type { ObservedJwtConfig } from "./jwt.js";
import type { ObservedK8sConfig } from "./kubernetes-config.js";
import type { ObservedRole } from "./kubernetes-role.js";
import type { ObservedMount } from "./mount.js";

export interface ObservedState {
  /** Audit devices by path without the trailing slash (absent: not read, as in unit tests: none). */
  audit?: Record<string, ObservedAudit>;
  /** False on a server that refuses to enable audit devices through its API (OpenBao's default). */
  auditApiCreation?: boolean;
  /** Secret-engine mounts by path without the trailing slash. */
  mounts: Record<string, ObservedMount>;
  /** Auth methods by path without the trailing slash. */
  auth: Record<string, ObservedMount>;
  /** Kubernetes auth configs by auth path (absent: not configured, or the auth method does not exist). */
  authConfigs: Record<string, ObservedK8sConfig>;
  /** JWT auth configs by auth path. */
  jwtConfigs?: Record<string, ObservedJwtConfig>;
  /** Roles (kubernetes, jwt, approle) by auth path, then role name (raw read-back). */
  roles: Record<string, Record<string, ObservedRole>>;
  /** Names of all ACL policies on the server. */
  policyNames: string[];
  /** Policy text by name, for the policies the spec names that exist. */
  policies: Record<string, string>;
  /** Identity entities and groups by name, for the ones the spec names that exist (absent: the spec has none). */
  entities?: Record<string, ObservedEntity>;
  groups?: Record<string, ObservedGroup>;
}

export interface ObserveContext {
  client: VaultClient;
  spec: BootstrapSpec;
  /** Filled in place; mounts, auth and policyNames are read before any kind's hook runs. */
  observed: ObservedState;
  /** Requests in flight at once. */
  limit: number;
  /** Queues a read; observe.ts runs the queue with the pool after every kind's hook. */
  queue(task: () => Promise<void>): void;
}

export interface ResourceKind {
  name: string;
  resolve?(raw: RawSpec, ctx: SpecContext, spec: BootstrapSpec): void;
  link?(raw: RawSpec, ctx: SpecContext, spec: BootstrapSpec): void;
  observe?(ctx: ObserveContext): Promise<void> | void;
  plan?(spec: BootstrapSpec, observed: ObservedState, out: PlanOutput): void;
  purge?(spec: BootstrapSpec, observed: ObservedState, out: PlanOutput, opts: PlanOptions): void;
}
