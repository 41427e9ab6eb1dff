/**
 * Shamir -> awskms seal migration of a running cluster, the procedure Vault documents since 1.5.1 (and OpenBao kept):
 * each standby in turn is restarted with the seal stanza and unsealed with the OLD shares and migrate=true; then the
 * active node is stopped, a migrated standby takes over and performs the migration; the old active comes back with
 * the stanza and unseals itself. Afterwards the old unseal shares are the recovery keys (same shares, same threshold).
 *
 * The operator (or a test harness) restarts the nodes; this module watches seal-status and sends the shares when a
 * node is waiting for them. It never restarts anything itself.
 */

import { fixedSource, newNode, runQuorum } from "../ceremony/quorum.js";
import type { KeyShare } from "../ceremony/unseal-key.js";
import { SealkeeperError, UsageError, VaultConnectionError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import type { SealStatus } from "../vault/types.js";

/** True when seal-status says the node auto-unseals (a KMS/HSM seal, recovery keys instead of unseal keys). */
export function usesAutoUnseal(status: Pick<SealStatus, "type" | "recovery_seal">): boolean {
  return status.recovery_seal === true || (status.type !== "" && status.type !== "shamir");
}

export type NodeRole = "active" | "standby" | "sealed" | "unreachable";

export interface MigrationNodePlan {
  address: string;
  /** Role when the plan was made: standbys are migrated first, the active last. */
  role: NodeRole;
}

export interface MigrationPlan {
  /** In the order they must be restarted: standbys, then sealed/unknown nodes, then the active. */
  nodes: MigrationNodePlan[];
  /** The Shamir threshold and share count: the shares needed now, and the recovery t/n afterwards. */
  threshold: number;
  shares: number;
  /** Things to fix before restarting the active node (e.g. raft peers that are not voters yet). */
  warnings: string[];
}

export class MigrationError extends SealkeeperError {}

const REDACT = /^(\s*(?:access_key|secret_key|session_token)\s*=\s*)"(?:[^"\\]|\\.)*"/gm;

/**
 * Reads every node and orders them for the migration. Throws MigrationError when a node is uninitialised, or the
 * cluster already auto-unseals (nothing to migrate), or no node is reachable.
 */
export async function planMigration(clients: VaultClient[]): Promise<MigrationPlan> {
  const observed = await Promise.all(
    clients.map(async (c) => {
      const seen = await observe(c, { throwOther: true });
      if (seen.kind === "migrating-standby") {
        // an OpenBao standby of an earlier, unfinished run: already unsealed with migrate=true
        return { client: c, status: undefined, health: 429, migrating: true };
      }
      if (seen.kind === "down") return { client: c, status: undefined, health: undefined, migrating: false };
      const status = seen.status;
      const health = status.sealed ? undefined : (await c.health()).status;
      return { client: c, status, health, migrating: false };
    }),
  );
  const reachable = observed.filter((o) => o.status !== undefined);
  if (reachable.length === 0) {
    throw new MigrationError(
      observed.some((o) => o.migrating)
        ? "no node answers seal-status: every reachable node waits, unsealed in migration mode, for an active node to migrate the seal"
        : "no node answered: check the addresses",
    );
  }
  let threshold = 0;
  let shares = 0;
  for (const o of reachable) {
    const s = o.status!;
    if (!s.initialized) throw new MigrationError(`${o.client.address} is not initialised: there is nothing to migrate`);
    if (!s.migration && usesAutoUnseal(s) && !s.sealed) {
      throw new MigrationError(`${o.client.address} already uses the ${s.type} seal: there is nothing to migrate`);
    }
    // Under migration seal-status still reports the Shamir t/n while sealed; take the largest seen.
    threshold = Math.max(threshold, s.t);
    shares = Math.max(shares, s.n);
  }
  const roleOf = (o: (typeof observed)[number]): NodeRole =>
    o.migrating
      ? "standby"
      : o.status === undefined
        ? "unreachable"
        : o.status.sealed
          ? "sealed"
          : o.health === 200
            ? "active"
            : "standby";
  const rank: Record<NodeRole, number> = { standby: 0, sealed: 1, unreachable: 1, active: 2 };
  const nodes = observed
    .map((o) => ({ address: o.client.address, role: roleOf(o) }))
    .sort((a, b) => rank[a.role] - rank[b.role]);
  if (threshold < 1) throw new MigrationError("the nodes report no unseal threshold");
  const warnings: string[] = [];
  const active = observed.find((o) => roleOf(o) === "active");
  if (active?.client.hasToken()) {
    // Seen on Vault 1.21: with peers still non-voters (autopilot promotes them after its stabilisation time), stopping
    // the active node leaves no quorum, no standby takes over, and the migration never completes.
    try {
      const servers = (await active.client.raftConfiguration()) ?? [];
      const nonVoters = servers.filter((x) => !x.voter).map((x) => x.node_id);
      if (nonVoters.length > 0) {
        warnings.push(
          `raft peers ${nonVoters.join(", ")} are not voters yet: wait until they are (vault operator raft ` +
            "list-peers) before stopping the active node, or no standby can take over",
        );
      }
    } catch {
      // not raft, or the token may not read it: the check is advice only
    }
  }
  return { nodes, threshold, shares, warnings };
}

/**
 * The per-node instructions: add the stanza, restart; in order. Static credentials in the stanza are shown as
 * `<redacted>`: the instructions go to a terminal or a log, the stanza file itself holds the values.
 */
export function describeConfigChange(plan: MigrationPlan, stanza: string): string {
  const shown = stanza.replace(REDACT, '$1"<redacted>"');
  const lines = [
    "Add this to the server configuration of EVERY node (beside the storage and listener stanzas):",
    "",
    ...shown
      .trimEnd()
      .split("\n")
      .map((l) => `    ${l}`),
    "",
    "Then restart the nodes ONE AT A TIME, in this order; sealkeeper unseals each with the old shares and migrate=true:",
  ];
  plan.nodes.forEach((n, i) => {
    const what =
      n.role === "active"
        ? "the active node, last: stopping it hands leadership to a migrated standby, which performs the migration"
        : n.role === "standby"
          ? "standby"
          : `${n.role} now`;
    lines.push(`  ${i + 1}. ${n.address} (${what})`);
  });
  lines.push(
    "Keep a snapshot of the data first (vault operator raft snapshot save). Do not set VAULT_SEAL_TYPE or the",
    "AWSKMS_*/VAULT_AWSKMS_* variables on the servers: they override the file.",
    "",
  );
  return lines.join("\n");
}

export type MigrationEvent =
  | { kind: "waiting"; address: string; role: NodeRole }
  | { kind: "unsealing"; address: string }
  /** The share that reaches the threshold is about to go: its answer is awaited with no time limit. */
  | { kind: "completing"; address: string }
  /** Every `waitingIntervalMs` while a migrate=true share's answer is awaited. */
  | { kind: "answer-waiting"; address: string; waitedMs: number }
  | {
      kind: "node-done";
      address: string;
      how: "unsealed-with-migrate" | "auto-unsealed";
      /** Set when the node was recognised by something other than its seal-status (see STALE_SEAL_CONFIG). */
      detail?: string;
    }
  | { kind: "finished"; address: string; type: string };

export interface MigrationOptions {
  clients: VaultClient[];
  plan: MigrationPlan;
  /** The old unseal shares, at least `plan.threshold` of them. Held in memory only. */
  shares: KeyShare[];
  onEvent?: (e: MigrationEvent) => void;
  /** How long to wait for each node to come back with the new seal (default 15 min). */
  nodeTimeoutMs?: number;
  pollMs?: number;
  /** How often `answer-waiting` is emitted while a share's answer is awaited (default 5 s). */
  waitingIntervalMs?: number;
}

export interface MigrationNodeResult {
  address: string;
  how: "unsealed-with-migrate" | "auto-unsealed";
  type: string;
  recoverySeal: boolean;
}

export interface MigrationReport {
  nodes: MigrationNodeResult[];
  /** The recovery threshold and shares after migration: the old shares are now recovery keys. */
  recoveryThreshold: number;
  recoveryShares: number;
  sealType: string;
}

/**
 * Waits for each node, in plan order, to come back with the new seal, and unseals it with the old shares and
 * migrate=true; a node that unseals itself (migration already done by the new active) needs nothing. Then waits until
 * every node is unsealed on the new seal with migration finished.
 * Throws MigrationError when the shares are too few or rejected, or a node does not come back in time.
 */
export async function runMigration(opts: MigrationOptions): Promise<MigrationReport> {
  const emit = (e: MigrationEvent) => opts.onEvent?.(e);
  const pollMs = opts.pollMs ?? 500;
  const nodeTimeout = opts.nodeTimeoutMs ?? 15 * 60_000;
  if (opts.shares.length < opts.plan.threshold) {
    throw new MigrationError(`${opts.shares.length} shares given, the threshold is ${opts.plan.threshold}`);
  }
  const byAddress = new Map(opts.clients.map((c) => [c.address, c]));
  const results: MigrationNodeResult[] = [];
  // Every pending node is watched on each round, not only the next in the plan: an operator may restart nodes in
  // another order (or before the plan was printed), and whichever node waits in migration mode gets the shares.
  const pending = [...opts.plan.nodes];
  for (const node of pending) emit({ kind: "waiting", address: node.address, role: node.role });
  let deadline = Date.now() + nodeTimeout;
  while (pending.length > 0) {
    for (const node of [...pending]) {
      const client = byAddress.get(node.address)!;
      const seen = await observe(client);
      if (seen.kind === "migrating-standby") {
        // OpenBao 2.6: unsealed in migration mode, a standby; its seal-status answers again once migrated
        results.push({ address: node.address, how: "unsealed-with-migrate", type: seen.loaded, recoverySeal: true });
        emit({ kind: "node-done", address: node.address, how: "unsealed-with-migrate", detail: seen.detail });
        pending.splice(pending.indexOf(node), 1);
        deadline = Date.now() + nodeTimeout;
        continue;
      }
      if (seen.kind === "down") continue;
      const status = seen.status;
      let how: MigrationNodeResult["how"] | undefined;
      if (status.migration && status.sealed) {
        emit({ kind: "unsealing", address: node.address });
        await submitShares(client, opts.shares, status, emit, opts.waitingIntervalMs);
        continue;
      }
      // a standby unsealed in migration mode waits for the new active node to migrate the seal
      if (status.migration && !status.sealed) how = "unsealed-with-migrate";
      else if (!status.sealed && usesAutoUnseal(status)) how = "auto-unsealed";
      if (how) {
        results.push({ address: node.address, how, type: status.type, recoverySeal: status.recovery_seal === true });
        emit({ kind: "node-done", address: node.address, how });
        pending.splice(pending.indexOf(node), 1);
        deadline = Date.now() + nodeTimeout;
      }
      // else: still on Shamir (not restarted yet), or sealed on the new seal and unsealing itself: keep watching
    }
    if (pending.length === 0) break;
    if (Date.now() > deadline) {
      const names = pending.map((n) => n.address).join(", ");
      throw new MigrationError(`${names} did not come back with the new seal within ${nodeTimeout / 1000}s`, {
        hint: "restart it with the seal stanza, then run the command again: finished nodes are skipped",
      });
    }
    await sleep(pollMs);
  }

  // The migration is done when every node reports the new seal, unsealed, with no migration pending.
  deadline = Date.now() + nodeTimeout;
  const finals = new Map<string, SealStatus>();
  for (const node of opts.plan.nodes) {
    const client = byAddress.get(node.address)!;
    for (;;) {
      const seen = await observe(client);
      const status = seen.kind === "status" ? seen.status : undefined;
      if (status && !status.sealed && !status.migration && usesAutoUnseal(status)) {
        finals.set(node.address, status);
        emit({ kind: "finished", address: node.address, type: status.type });
        break;
      }
      if (Date.now() > deadline) {
        if (seen.kind === "migrating-standby") {
          throw new MigrationError(
            `${node.address} is unsealed in migration mode but no active node has migrated the seal: ${seen.detail}`,
            {
              hint:
                "the seal is migrated by the node that becomes active: stop the node that is still active on Shamir " +
                "(or step it down) so that a standby restarted with the stanza takes over, then restart it with the " +
                "stanza and run the command again",
            },
          );
        }
        throw new MigrationError(
          `${node.address} has not finished the migration (${status ? describeStatus(status) : "unreachable"})`,
          { hint: "if the old active node is still running on Shamir, stop it and restart it with the seal stanza" },
        );
      }
      await sleep(pollMs);
    }
  }
  const any = [...finals.values()][0]!;
  return {
    nodes: opts.plan.nodes.map((n) => {
      const s = finals.get(n.address)!;
      const r = results.find((x) => x.address === n.address)!;
      return { ...r, type: s.type, recoverySeal: s.recovery_seal === true };
    }),
    recoveryThreshold: any.t,
    recoveryShares: any.n,
    sealType: any.type,
  };
}

/**
 * The irreversible call of a migration: one old share with migrate=true; the one that reaches the threshold makes
 * the node unseal through the new seal (and, on the new active node, migrate the seal).
 */
export function submitMigrationShare(
  client: VaultClient,
  share: KeyShare,
  waiting: { onWaiting?: (waitedMs: number) => void; waitingIntervalMs?: number } = {},
): Promise<SealStatus> {
  // no client deadline once sent (--timeout bounds connecting): the node may be migrating the seal as it answers
  return client.unseal({ key: share.hex, migrate: true }, waiting);
}

/**
 * Submits shares with migrate=true until the node unseals: the quorum engine's unseal on one node. Throws
 * MigrationError when the server refuses them; returns when the node went away (restarting: the caller looks again).
 */
async function submitShares(
  client: VaultClient,
  shares: KeyShare[],
  status: SealStatus,
  emit: (e: MigrationEvent) => void,
  waitingIntervalMs: number | undefined,
): Promise<void> {
  const node = newNode(client.address, status.progress, status.t, status.nonce);
  await runQuorum({
    targets: [
      {
        node,
        submit: async (share) => {
          if (node.required > 0 && node.progress + 1 >= node.required) {
            emit({ kind: "completing", address: client.address });
          }
          const s = await submitMigrationShare(client, share, {
            waitingIntervalMs,
            onWaiting: (waitedMs) => emit({ kind: "answer-waiting", address: client.address, waitedMs }),
          });
          return { progress: s.progress, required: s.t, nonce: s.sealed ? s.nonce : "", complete: !s.sealed };
        },
      },
    ],
    source: fixedSource(shares),
    refusal: "rejected-set",
    describe: (_outcome, { failure }) => failure?.text,
    prompt: ([n]) => ({
      progressLine: `${n!.address} ${n!.progress}/${n!.required}`,
      remaining: n!.required - n!.progress,
    }),
  });
  const last = node.last;
  if (
    last === undefined ||
    last === "complete" ||
    last === "node-down" ||
    last === "accepted" ||
    last === "duplicate"
  ) {
    return;
  }
  if (last === "restarted") return;
  throw new MigrationError(`${client.address} rejected the shares for migration: ${node.message ?? last}`, {
    hint: "the old unseal shares are needed; a wrong share is only noticed at the threshold",
  });
}

/**
 * OpenBao 2.5+ standbys serve reads ("horizontal read scalability", on unless `disable_standby_reads = true`): a
 * standby unsealed with migrate=true runs the read-only post-unseal setup, which drops the seal config that migration
 * mode had cached (vault/core.go postUnseal: `c.seal.SetBarrierConfig(ctx, nil)`, "purge these for safety"). From
 * then on seal-status, sys/init and sys/health re-read the stored Shamir config against the configured awskms seal
 * (vault/seal_autoseal.go BarrierConfig) and answer 500 with this message, until the node that becomes active has
 * migrated the seal and written the new config. OpenBao's own seal-migration test waits through the same error
 * (vault/external_tests/sealmigration/testshared.go, awaitMigration). Vault 1.21 standbys do not run post-unseal,
 * and keep answering `sealed: false, migration: true`.
 */
export const STALE_SEAL_CONFIG = /barrier seal type of "([^"]+)" does not match loaded type of "([^"]+)"/;

type Observation =
  | { kind: "status"; status: SealStatus }
  | { kind: "down" }
  /** Unsealed in migration mode, a standby, seal-status unreadable until the seal is migrated (STALE_SEAL_CONFIG). */
  | { kind: "migrating-standby"; stored: string; loaded: string; detail: string };

/**
 * Reads a node's seal-status. A 500 carrying STALE_SEAL_CONFIG is confirmed with sys/leader (unauthenticated, and
 * answered only by an unsealed node): an unsealed standby there is a node waiting for the new active to migrate.
 */
async function observe(client: VaultClient, opts: { throwOther?: boolean } = {}): Promise<Observation> {
  try {
    return { kind: "status", status: await client.sealStatus() };
  } catch (err) {
    if (err instanceof VaultConnectionError) return { kind: "down" };
    if (err instanceof VaultHttpError && err.status >= 500) {
      const stale = err.errors.map((e) => STALE_SEAL_CONFIG.exec(e)).find((m) => m !== null);
      if (stale && (await isUnsealedStandby(client))) {
        return {
          kind: "migrating-standby",
          stored: stale[1]!,
          loaded: stale[2]!,
          detail:
            `its seal-status answers ${err.status} (${stale[0]}): an OpenBao standby unsealed in migration mode, ` +
            "it answers again once the new active node has migrated the seal",
        };
      }
      // 5xx while starting up: treat as not there yet
      if (!opts.throwOther) return { kind: "down" };
    }
    throw err;
  }
}

async function isUnsealedStandby(client: VaultClient): Promise<boolean> {
  const leader = await client.leader().catch(() => undefined);
  return leader?.haEnabled === true && !leader.isSelf;
}

function describeStatus(s: SealStatus): string {
  return `type ${s.type}, ${s.sealed ? "sealed" : "unsealed"}${s.migration ? ", migration pending" : ""}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Writes `seal-migration.json` beside the init ceremony's manifest (never overwriting, 0644: it holds no secret): the
 * manifest's shares are now recovery shares. The manifest itself is left as written at init (it is hashed and may be
 * signed or copied elsewhere). Returns the record's path.
 * @throws UsageError when the manifest cannot be read; StoreError when the record exists or cannot be written.
 */
export async function writeMigrationRecord(manifestPath: string, report: MigrationReport): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  const { createHash } = await import("node:crypto");
  const { dirname } = await import("node:path");
  const { ShareStore } = await import("../store/share-store.js");
  let manifestBytes: Buffer;
  try {
    manifestBytes = await readFile(manifestPath);
  } catch (err) {
    throw new UsageError(`cannot read manifest ${manifestPath}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const record = {
    format: "sealkeeper-seal-migration",
    version: 1,
    completed: new Date().toISOString(),
    from: "shamir",
    to: report.sealType,
    manifest: { file: manifestPath, sha256: createHash("sha256").update(manifestBytes).digest("hex") },
    // the manifest's unseal shares are, from now on, recovery shares with the same threshold
    sharesNowKind: "recovery",
    recoveryThreshold: report.recoveryThreshold,
    recoveryShares: report.recoveryShares,
    nodes: report.nodes,
  };
  const store = new ShareStore(dirname(manifestPath));
  const written = await store.writeSecretFile("seal-migration.json", `${JSON.stringify(record, null, 2)}\n`, {
    mode: 0o644,
  });
  return written.path;
}
