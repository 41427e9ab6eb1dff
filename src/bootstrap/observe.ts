/**
 * Reads the live state a spec is about. Reads only (GET and LIST), concurrently with a small pool, so that a re-apply
 * that changes nothing writes nothing. The mount and auth tables and the policy names are read first; then each kind's
 * observe hook (kinds/) reads or queues what it manages.
 */
import type { VaultClient } from "../vault/client.js";
import { KINDS } from "./kinds/index.js";
import type { ObservedState } from "./kinds/kind.js";
import { type MountTable, toMounts } from "./kinds/mount.js";
import { runPool } from "./pool.js";
import type { BootstrapSpec } from "./spec.js";

export interface ObserveOptions {
  /** Requests in flight at once (default 8). */
  concurrency?: number;
}

/**
 * Observes what the spec manages (and, for purge, the names of what it does not).
 * @throws VaultHttpError (e.g. 403 without the rights to read sys/mounts) or VaultConnectionError.
 */
export async function observeState(
  client: VaultClient,
  spec: BootstrapSpec,
  opts: ObserveOptions = {},
): Promise<ObservedState> {
  const limit = opts.concurrency ?? 8;
  const [mountsRaw, authRaw, policyNames] = await Promise.all([
    client.read<{ data?: MountTable } & MountTable>("sys/mounts"),
    client.read<{ data?: MountTable } & MountTable>("sys/auth"),
    client.list("sys/policies/acl"),
  ]);
  const observed: ObservedState = {
    mounts: toMounts(mountsRaw),
    auth: toMounts(authRaw),
    authConfigs: {},
    roles: {},
    policyNames,
    policies: {},
  };
  const tasks: (() => Promise<void>)[] = [];
  const ctx = { client, spec, observed, limit, queue: (t: () => Promise<void>) => void tasks.push(t) };
  await Promise.all(KINDS.map((kind) => kind.observe?.(ctx)));
  await runPool(tasks, limit, (t) => t());
  return observed;
}
