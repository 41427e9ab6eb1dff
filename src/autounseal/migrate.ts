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
import { ExitCode, SealkeeperError, UsageError, VaultConnectionError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import { STALE_SEAL_CONFIG, staleSealStandby } from "../vault/observe.js";
import type { SealStatus } from "../vault/types.js";

/** True when seal-status says the node auto-unseals (a KMS/HSM seal, recovery keys instead of unseal keys). */
export function usesAutoUnseal(status: Pick<SealStatus, "type" | "recovery_seal">): boolean {
  return status.recovery_seal === true || (status.type !== "" && status.type !== "shamir");
}

/**
 * What a node is when the plan is made. A first run sees active/standby/sealed/unreachable (all on Shamir); a rerun
 * also sees nodes already restarted with the stanza ("migrating": sealed in migration mode waiting for the old shares,
 * or unsealed with migrate=true and waiting for the new active node) and nodes already on the new seal ("migrated").
 */
export type NodeRole = "migrating" | "standby" | "sealed" | "unreachable" | "active" | "migrated";

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

/** Where one node stands in a migration, from its seal-status (and sys/leader for an OpenBao standby). */
export function classifyNode(seen: Observation, health?: number): NodeRole {
  if (seen.kind === "migrating-standby") return "migrating";
  if (seen.kind === "down") return "unreachable";
  const s = seen.status;
  if (s.migration) return "migrating";
  if (usesAutoUnseal(s)) return s.sealed ? "sealed" : "migrated";
  if (s.sealed) return "sealed";
  return health === 200 ? "active" : "standby";
}

/**
 * Reads every node and orders them for the migration. A rerun finds nodes in every state (done, waiting in
 * migration mode, still on Shamir, down) and plans the rest of the work. Throws MigrationError when a node is
 * uninitialised, or every node already auto-unseals with no migration pending (nothing to migrate), or no node is
 * reachable.
 */
export async function planMigration(
  clients: VaultClient[],
  opts: {
    /** An earlier run of this migration left its progress (or lock) and no record: a cluster found all done is
     *  that migration finished, and the plan goes on so that the record is written. */
    resuming?: boolean;
  } = {},
): Promise<MigrationPlan> {
  const observed = await Promise.all(
    clients.map(async (c) => {
      const seen = await observe(c, { throwOther: true });
      const status = seen.kind === "status" ? seen.status : undefined;
      const health = status && !status.sealed && !status.migration ? (await c.health()).status : undefined;
      return { client: c, status, role: classifyNode(seen, health) };
    }),
  );
  const reachable = observed.filter((o) => o.status !== undefined);
  if (reachable.length === 0) {
    throw new MigrationError(
      observed.some((o) => o.role === "migrating")
        ? "no node answers seal-status: every reachable node waits, unsealed in migration mode, for an active node to migrate the seal"
        : "no node answered: check the addresses",
    );
  }
  let threshold = 0;
  let shares = 0;
  for (const o of reachable) {
    const s = o.status!;
    if (!s.initialized) throw new MigrationError(`${o.client.address} is not initialised: there is nothing to migrate`);
    // Under migration seal-status still reports the Shamir t/n while sealed (the recovery t/n after: the same).
    threshold = Math.max(threshold, s.t);
    shares = Math.max(shares, s.n);
  }
  if (!opts.resuming && observed.every((o) => o.role === "migrated")) {
    const type = reachable[0]!.status!.type;
    throw new MigrationError(
      observed.length === 1
        ? `${observed[0]!.client.address} already uses the ${type} seal: there is nothing to migrate`
        : `every node already uses the ${type} seal with no migration pending: there is nothing to migrate`,
    );
  }
  const rank: Record<NodeRole, number> = {
    migrating: 0,
    standby: 1,
    sealed: 2,
    unreachable: 2,
    active: 3,
    migrated: 4,
  };
  const nodes = observed
    .map((o) => ({ address: o.client.address, role: o.role }))
    .sort((a, b) => rank[a.role] - rank[b.role]);
  if (threshold < 1) throw new MigrationError("the nodes report no unseal threshold");
  const warnings: string[] = [];
  const active = observed.find((o) => o.role === "active");
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
    const what = {
      active: "the active node, last: stopping it hands leadership to a migrated standby, which performs the migration",
      standby: "standby",
      sealed: "sealed now",
      unreachable: "unreachable now",
      migrating: "already restarted with the stanza: it gets the old shares with migrate=true, nothing to restart",
      migrated: "already on the new seal: nothing to do",
    }[n.role];
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
  /** The node's share submissions are over (answered, refused or the node went away): nothing is in flight to it. */
  | { kind: "submitted"; address: string }
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
  /** A node seen done earlier is sealed in migration mode again (it restarted): it gets the old shares again. */
  | { kind: "node-restarted"; address: string }
  | { kind: "finished"; address: string; type: string };

export interface MigrationOptions {
  clients: VaultClient[];
  plan: MigrationPlan;
  /** The old unseal shares, at least `plan.threshold` of them. Held in memory only. */
  shares: KeyShare[];
  onEvent?: (e: MigrationEvent) => void;
  /**
   * How long to wait for the nodes to come back with the new seal (default 15 min): every node still pending gets
   * this long from the run's start or the last step any node made, whichever is later (the operator restarts them one
   * at a time). A node that does not answer costs its own wait, never another node's.
   */
  nodeTimeoutMs?: number;
  pollMs?: number;
  /** How often `answer-waiting` is emitted while a share's answer is awaited (default 5 s). */
  waitingIntervalMs?: number;
  /**
   * Stops the run (MigrationInterrupted) at the next step of every node; a share whose answer is awaited is never
   * abandoned: its node's driver stops once it is answered.
   */
  signal?: AbortSignal;
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

/** Where each node stood when a run ended unfinished (interrupted or timed out); no secret. */
export interface MigrationNodeState {
  address: string;
  /**
   * finished: on the new seal, unsealed, migration over; migrating: restarted with the stanza, in migration mode;
   * old-seal: still on Shamir (not restarted yet); sealed: on the new seal, unsealing itself; unreachable: refused
   * or reset; no-answer: connected but silent (frozen) until the node timeout. Before the first look: the plan's role.
   */
  state: NodeRole | "finished" | "old-seal" | "no-answer";
  detail: string;
}

/** The run stopped before every node finished; `nodes` says where each stands (for the record and the message). */
export class MigrationUnfinished extends MigrationError {
  constructor(
    message: string,
    readonly nodes: MigrationNodeState[],
    readonly interrupted: boolean,
    hint: string,
  ) {
    super(message, { hint, exitCode: ExitCode.remote });
  }
}

const RESUME_HINT =
  "run the same command again: it looks at every node, skips finished ones and gives the old shares to those in migration mode";

/**
 * Drives every node at once, each on its own: waits for it to come back with the new seal, unseals it with the old
 * shares and migrate=true when it waits in migration mode (again if it restarts later), and follows it until it is on
 * the new seal, unsealed, migration finished (the new active node migrates the seal; the others follow). A node that
 * does not answer (down, or frozen) delays only its own driver.
 * Throws MigrationError when the shares are too few or rejected; MigrationUnfinished when nodes did not finish in
 * time (naming only those) or the run was stopped by `signal`.
 */
export async function runMigration(opts: MigrationOptions): Promise<MigrationReport> {
  const emit = (e: MigrationEvent) => opts.onEvent?.(e);
  const pollMs = opts.pollMs ?? 500;
  const nodeTimeout = opts.nodeTimeoutMs ?? 15 * 60_000;
  if (opts.shares.length < opts.plan.threshold) {
    throw new MigrationError(`${opts.shares.length} shares given, the threshold is ${opts.plan.threshold}`);
  }
  const byAddress = new Map(opts.clients.map((c) => [c.address, c]));
  // Every node still pending gets nodeTimeout from the last step made anywhere: the operator restarts the nodes one
  // at a time, and each restart is a step.
  let lastStep = Date.now();
  const deadline = () => lastStep + nodeTimeout;
  const stepped = () => {
    lastStep = Date.now();
  };
  const results = new Map<string, MigrationNodeResult>();
  const finals = new Map<string, SealStatus>();
  const states = new Map<string, MigrationNodeState>();
  for (const node of opts.plan.nodes) {
    states.set(node.address, { address: node.address, state: node.role, detail: "not looked at yet" });
    emit({ kind: "waiting", address: node.address, role: node.role });
  }

  const drive = async (address: string): Promise<void> => {
    const client = byAddress.get(address)!;
    const say = (state: MigrationNodeState["state"], detail: string) => states.set(address, { address, state, detail });
    let done = false;
    while (!opts.signal?.aborted && Date.now() <= deadline()) {
      const seen = await within(observe(client), deadline(), opts.signal);
      if (seen === undefined) {
        if (!opts.signal?.aborted) say("no-answer", `no answer to seal-status within the node timeout`);
        break;
      }
      if (seen.kind === "down") {
        say("unreachable", "not reachable (down or restarting)");
      } else if (seen.kind === "migrating-standby") {
        // OpenBao 2.6: unsealed in migration mode, a standby; its seal-status answers again once migrated
        say("migrating", seen.detail);
        if (!done) {
          done = true;
          stepped();
          results.set(address, { address, how: "unsealed-with-migrate", type: seen.loaded, recoverySeal: true });
          emit({ kind: "node-done", address, how: "unsealed-with-migrate", detail: seen.detail });
        }
      } else {
        const status = seen.status;
        if (status.migration && status.sealed) {
          say("migrating", "sealed in migration mode: the old shares are being given with migrate=true");
          if (done) {
            // it had unsealed with migrate=true and restarted since: its progress is gone, it needs the shares again
            done = false;
            emit({ kind: "node-restarted", address });
          }
          emit({ kind: "unsealing", address });
          try {
            await submitShares(client, opts.shares, status, emit, opts.waitingIntervalMs, opts.signal);
          } finally {
            emit({ kind: "submitted", address });
          }
          continue;
        }
        const finished = !status.sealed && !status.migration && usesAutoUnseal(status);
        if ((status.migration && !status.sealed) || finished) {
          // a standby unsealed in migration mode waits for the new active node to migrate the seal
          const how = status.migration ? "unsealed-with-migrate" : "auto-unsealed";
          if (!done) {
            done = true;
            stepped();
            results.set(address, { address, how, type: status.type, recoverySeal: status.recovery_seal === true });
            emit({ kind: "node-done", address, how });
          }
        }
        if (finished) {
          say("finished", describeStatus(status));
          finals.set(address, status);
          stepped();
          emit({ kind: "finished", address, type: status.type });
          return;
        }
        if (usesAutoUnseal(status) || status.migration) say(classifyNode(seen), describeStatus(status));
        else
          say(
            "old-seal",
            `still on the ${status.type} seal (${status.sealed ? "sealed" : "unsealed"}): not restarted with the stanza yet`,
          );
        // else: still on Shamir (not restarted yet), sealed on the new seal and unsealing itself, or unsealed with
        // migrate=true waiting for the new active node: keep watching
      }
      await abortableSleep(pollMs, opts.signal);
    }
    if (opts.signal?.aborted) {
      // stopped: one last look (a node whose completing share was just answered may have finished), bounded
      const seen = await within(observe(client), Date.now() + 5_000);
      if (seen?.kind === "status" && !seen.status.sealed && !seen.status.migration && usesAutoUnseal(seen.status)) {
        say("finished", describeStatus(seen.status));
        finals.set(address, seen.status);
        if (!results.has(address)) {
          const how = done ? "unsealed-with-migrate" : "auto-unsealed";
          results.set(address, {
            address,
            how,
            type: seen.status.type,
            recoverySeal: seen.status.recovery_seal === true,
          });
        }
      }
    }
  };
  await Promise.all(opts.plan.nodes.map((n) => drive(n.address)));

  const unfinished = opts.plan.nodes.filter((n) => !finals.has(n.address)).map((n) => states.get(n.address)!);
  if (opts.signal?.aborted && unfinished.length > 0) {
    throw new MigrationUnfinished(
      `stopped before the migration finished (${unfinished.length} of ${opts.plan.nodes.length} nodes not finished)`,
      opts.plan.nodes.map((n) => states.get(n.address)!),
      true,
      RESUME_HINT,
    );
  }
  if (unfinished.length > 0) throw unfinishedError(unfinished, opts.plan.nodes.length, nodeTimeout, states);
  const any = [...finals.values()][0]!;
  return {
    nodes: opts.plan.nodes.map((n) => {
      const s = finals.get(n.address)!;
      const how = results.get(n.address)?.how ?? "auto-unsealed";
      return { address: n.address, how, type: s.type, recoverySeal: s.recovery_seal === true };
    }),
    recoveryThreshold: any.t,
    recoveryShares: any.n,
    sealType: any.type,
  };
}

/** The error of a run whose node timeout passed: names only the nodes that did not finish, each with its state. */
function unfinishedError(
  unfinished: MigrationNodeState[],
  total: number,
  nodeTimeout: number,
  states: Map<string, MigrationNodeState>,
): MigrationUnfinished {
  const waiting = unfinished.filter((s) => s.state === "migrating");
  const absent = unfinished.filter((s) => s.state !== "migrating");
  const parts = unfinished.map((s) => `${s.address} (${s.state}: ${s.detail})`);
  const message =
    `${unfinished.length} of ${total} nodes did not finish the migration within ${nodeTimeout / 1000}s of the last ` +
    `step: ${parts.join("; ")}`;
  const hint =
    absent.length > 0
      ? `restart ${absent.map((s) => s.address).join(", ")} with the seal stanza (a frozen or down node is named ` +
        `here alone), then ${RESUME_HINT}`
      : waiting.length > 0
        ? "the seal is migrated by the node that becomes active: stop the node that is still active on Shamir (or step " +
          `it down) so that a standby restarted with the stanza takes over, restart it with the stanza, then ${RESUME_HINT}`
        : RESUME_HINT;
  return new MigrationUnfinished(message, [...states.values()], false, hint);
}

/** Resolves with `p`, or undefined once `deadline` passes or `signal` aborts (p is a read: it may be abandoned). */
async function within<T>(p: Promise<T>, deadline: number, signal?: AbortSignal): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    onAbort = () => resolve(undefined);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  p.catch(() => undefined);
  try {
    return await Promise.race([p, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return within(sleep(ms), Date.now() + ms, signal).then(() => undefined);
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
  signal: AbortSignal | undefined,
): Promise<void> {
  const node = newNode(client.address, status.progress, status.t, status.nonce);
  // a stopped run sends no further share (the one in flight is answered first); the rerun gives them again
  const given = fixedSource(shares);
  const source = { next: async (ctx: Parameters<typeof given.next>[0]) => (signal?.aborted ? null : given.next(ctx)) };
  await runQuorum({
    targets: [
      {
        node,
        submit: async (share) => {
          // Only the share that completes the threshold is irreversible (the node moves to the new seal as it
          // answers): its answer is awaited with no time limit. An earlier one keeps the client's deadline, so that
          // a node frozen meanwhile costs its own timeout and is looked at again (a lost share is given again).
          const completing = node.required > 0 && node.progress + 1 >= node.required;
          if (completing) emit({ kind: "completing", address: client.address });
          let s: SealStatus;
          try {
            s = completing
              ? await submitMigrationShare(client, share, {
                  waitingIntervalMs,
                  onWaiting: (waitedMs) => emit({ kind: "answer-waiting", address: client.address, waitedMs }),
                })
              : await client.unseal({ key: share.hex, migrate: true });
          } catch (err) {
            // OpenBao 2.6: the node unsealed with migrate=true as a standby and its read-only post-unseal setup ran
            // before the answer was composed, which then fails like its seal-status (STALE_SEAL_CONFIG). Seen on a
            // standby's completing share. Its shares are done: the driver's next look confirms what it is.
            if (err instanceof VaultHttpError && err.errors.some((e) => STALE_SEAL_CONFIG.test(e))) {
              return { progress: 0, nonce: "", complete: true };
            }
            throw err;
          }
          return { progress: s.progress, required: s.t, nonce: s.sealed ? s.nonce : "", complete: !s.sealed };
        },
      },
    ],
    source,
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

/** The OpenBao 2.6 stale-config 500 of a standby mid-migration: see src/vault/observe.ts. */
export { STALE_SEAL_CONFIG };

export type Observation =
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
      const stale = await staleSealStandby(client, err);
      if (stale) {
        return {
          kind: "migrating-standby",
          stored: stale.stored,
          loaded: stale.loaded,
          detail:
            `its ${stale.text}: an OpenBao standby unsealed in migration mode, ` +
            "it answers again once the new active node has migrated the seal",
        };
      }
      // 5xx while starting up: treat as not there yet
      if (!opts.throwOther) return { kind: "down" };
    }
    throw err;
  }
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
