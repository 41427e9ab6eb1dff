/**
 * Quorum unseal across every node of a cluster: an adapter of the quorum engine (quorum.ts). Progress is per node (a
 * raft follower needs the threshold too, and a load balancer would mix nodes), so each share goes to every node still
 * sealed, concurrently. A raft follower that has not joined yet (initialized=false) waits and gets the shares given so
 * far once it joins; one that reached the threshold is watched (seal-status) until it has unsealed, within the join
 * limit (--join-timeout), with progress shown.
 */
import { describeError, SealkeeperError, VaultConnectionError, VaultHttpError } from "../errors.js";
import { SHARE_BYTES } from "../store/share-text.js";
import type { VaultClient } from "../vault/client.js";
import type { SealStatus } from "../vault/types.js";
import {
  describeSet,
  forgetShares,
  type Interrupted,
  interruptedOf,
  newNode,
  type QuorumNode,
  type QuorumTarget,
  type RejectedSet,
  runQuorum,
  type ShareResult,
} from "./quorum.js";
import type { ShareSource } from "./share-source.js";
import type { Transcript } from "./transcript.js";
import type { KeyShare } from "./unseal-key.js";

export type NodeState = "sealed" | "unsealed" | "unreachable" | "uninitialised" | "failed";

export interface UnsealNodeReport {
  address: string;
  state: NodeState;
  progress: number;
  threshold: number;
  nonce?: string;
  /** Operators (or share origins) whose share, given by this run, counted on this node, in order. */
  contributors: string[];
  /**
   * Shares counted on this node that this run did not give (another operator's run, or an attempt in progress it
   * found): the progress (or, once unsealed, the threshold) beyond this run's contributors.
   */
  othersShares: number;
  /** The last thing that went wrong or was notable on this node (duplicate, rejected set, down). */
  message?: string;
}

export type UnsealEvent =
  | { kind: "node"; node: UnsealNodeReport }
  | { kind: "share"; share: KeyShare; results: ShareResult[] }
  /** A share refused before sending: it cannot be a share of this cluster (nothing sent, no progress consumed). */
  | { kind: "refused"; share: KeyShare; reason: string }
  /** The wrong share of a refused set is told: every other share of the set is proven by an unsealed node. */
  | { kind: "wrong-share"; set: RejectedSet }
  /** A node is being waited for (joining its leader); every few seconds while it lasts. */
  | { kind: "waiting"; address: string; waitedMs: number; limitMs: number; what: string };

/** Default limit of the waits on a raft follower's join (before it is initialised, and after the threshold). */
export const DEFAULT_JOIN_TIMEOUT_MS = 300_000;

export interface UnsealOptions {
  clients: VaultClient[];
  source: ShareSource;
  /** Clear any progress first (PUT unseal {reset: true}) on every sealed node. */
  reset?: boolean;
  /** Send migrate: true (required while a seal migration is pending). */
  migrate?: boolean;
  transcript?: Transcript;
  onEvent?: (event: UnsealEvent) => void;
  /**
   * How long a raft follower may take to join its leader: before it reports initialized=true (its retry_join), and
   * after it reached the threshold (it unseals once it has joined). The wait ends as soon as the node shows the
   * outcome (unsealed, a new attempt, down); this is only the limit. Default 300 s; 0 disables waiting.
   */
  joinTimeoutMs?: number;
  /**
   * How long the first look at the nodes (seal-status) waits for a node that does not answer before the ceremony
   * starts without it (default 3 s); it joins, with the shares given so far, once it answers.
   */
  firstLookMs?: number;
  /** How often the joining nodes are polled (default 250 ms) and the waiting line is repeated (default 5 s). */
  pollMs?: number;
  waitingEveryMs?: number;
}

export interface UnsealReport {
  nodes: UnsealNodeReport[];
  sharesUsed: number;
  /** The person ended the share prompt: the nodes were read again after it (their progress stays on them). */
  interrupted?: Interrupted;
}

interface UnsealTarget extends QuorumTarget {
  client: VaultClient;
  /** The number of shares the node was initialised with, from its seal-status. */
  shares?: number;
}

/**
 * Runs the ceremony until every reachable node is unsealed or the source runs dry. Never throws for a node fault.
 * The shares given are held in memory for the ceremony only (to replay to nodes that join late); their bytes are
 * zeroed at the end. The server is always sent the hex form.
 */
export async function runUnseal(opts: UnsealOptions): Promise<UnsealReport> {
  const limitMs = opts.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS;
  const emit = (e: UnsealEvent) => opts.onEvent?.(e);
  const targets: UnsealTarget[] = opts.clients.map((client) => {
    const target: UnsealTarget = {
      client,
      node: newNode(client.address),
      submit: async (share) => {
        const before = target.node.progress;
        const nonceBefore = target.node.nonce;
        // Two operators at once: look first. A node another run's share has unsealed takes no share from this run;
        // the progress found says whether this share can be the one that completes it (the servers answer a share
        // sent to an unsealed node with "unsealed" too, so the answer alone cannot tell).
        const found = await client.sealStatus().catch(() => undefined);
        if (found && !found.sealed && found.initialized) {
          return { progress: 0, complete: true, nonce: "", outcome: "completed-elsewhere" };
        }
        let s: SealStatus;
        try {
          s = await client.unseal({ key: share.hex, ...(opts.migrate ? { migrate: true } : {}) });
        } catch (err) {
          // Two operators at once: a raft follower that the other run's share just brought to the threshold may
          // refuse this one while it unseals in the background (Vault 1.21: HTTP 500 "failed to create cipher:
          // crypto/aes: invalid key size 0"). If it then unseals, this share's work is done.
          if (
            err instanceof VaultHttpError &&
            err.status >= 500 &&
            before + 1 >= target.node.required &&
            (await watchJoin(target, limitMs, opts, emit)) === true
          ) {
            return { progress: 0, complete: true, nonce: "" };
          }
          throw err;
        }
        if (!s.sealed) {
          const short = found !== undefined && found.t > 0 && found.progress + 1 < found.t;
          return {
            progress: s.progress,
            required: s.t,
            nonce: "",
            complete: true,
            ...(short ? { outcome: "completed-elsewhere" as const } : {}),
          };
        }
        if (s.progress === 0) {
          // A raft follower that reaches the threshold answers "sealed, progress 0" and finishes unsealing in the
          // background once it has used the keys to join the leader (seen on Vault 1.21): watch it do so. (Whoever
          // gave the other shares: another operator's run may have given them at the same moment.)
          const watched = await watchJoin(target, limitMs, opts, emit);
          if (watched === true) return { progress: 0, complete: true, nonce: "" };
          joinFailures.set(target.node, watched);
          return { progress: 0, complete: false, outcome: "no-unseal" };
        }
        if (before > 0 && nonceBefore && s.nonce && s.nonce !== nonceBefore) {
          // A new attempt: the node restarted, or another operator's share just completed the old one and the node
          // (a follower joining its leader) unseals in the background. Look briefly before replaying shares.
          if (await unsealsSoon(target, Math.min(limitMs, 10_000), opts)) {
            return { progress: 0, complete: true, nonce: "" };
          }
        }
        return { progress: s.progress, required: s.t, nonce: s.nonce, complete: false };
      },
    };
    return target;
  });
  // The first look waits for every node, but a node that does not answer (frozen, overloaded) holds the others only
  // `firstLookMs`: the ceremony starts without it, and it gets the shares given so far once it answers.
  type Look = { settled: boolean; apply: () => void; done: Promise<void> };
  const late = new Map<UnsealTarget, Look>();
  const looks = targets.map((t) => {
    const look: Look = { settled: false, apply: () => undefined, done: Promise.resolve() };
    look.done = t.client.sealStatus().then(
      (s) => {
        look.apply = () => {
          if (s.n > 0) t.shares = s.n;
          applyStatus(t.node, s);
        };
      },
      (err: unknown) => {
        look.apply = () => markFault(t.node, err);
      },
    );
    look.done = look.done.then(() => {
      look.settled = true;
    });
    return { t, look };
  });
  let firstLookTimer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(looks.map((l) => l.look.done)),
    new Promise((r) => {
      firstLookTimer = setTimeout(r, opts.firstLookMs ?? 3_000);
    }),
  ]);
  clearTimeout(firstLookTimer);
  for (const { t, look } of looks) {
    if (look.settled) {
      look.apply();
    } else {
      late.set(t, look);
      t.node.state = "waiting";
      t.node.message =
        "no answer to seal-status yet: it gets the shares given so far if it answers in time (--timeout)";
    }
  }
  for (const t of targets) emit({ kind: "node", node: view(t.node) });

  if (opts.reset) {
    await Promise.all(
      targets
        .filter((t) => t.node.state === "open")
        .map(async (t) => {
          try {
            const held = t.node.progress;
            const nonce = t.node.nonce;
            applyStatus(t.node, await t.client.unseal({ reset: true }));
            t.node.contributors = [];
            t.node.message =
              held > 0
                ? `--reset cleared the ${held} share(s) the node held (attempt ${nonce}); it starts from 0/${t.node.required}`
                : `--reset: the node held no share, nothing to clear (0/${t.node.required})`;
            emit({ kind: "node", node: view(t.node) });
            opts.transcript?.append({ action: "unseal-reset", node: t.client.address, progress: 0 });
          } catch (err) {
            markFault(t.node, err);
          }
        }),
    );
  }

  // say what a node holds that this run did not give: an earlier attempt's shares count with this run's
  for (const t of targets.filter((x) => x.node.state === "open" && x.node.progress > 0)) {
    t.node.message =
      `the node already holds ${t.node.progress} share(s) from an earlier attempt (nonce ${t.node.nonce}), not given ` +
      "by this run: this run's shares add to them; --reset clears them";
    emit({ kind: "node", node: view(t.node) });
  }

  const run = await runQuorum({
    targets,
    source: opts.source,
    refusal: "rejected-set",
    describe,
    prompt: (nodes) => {
      const open = nodes.filter((n) => n.state === "open");
      return {
        progressLine: progressLine(nodes.map(view)),
        remaining: Math.max(...open.map((n) => n.required - n.progress)),
      };
    },
    // Re-observe nodes that were waiting to join; those now initialised get every share given so far.
    admit: async () => {
      const waiting = targets.filter((t) => t.node.state === "waiting" && !late.get(t));
      for (const [t, look] of late) {
        if (!look.settled) continue;
        late.delete(t);
        look.apply();
        if (t.node.state === "waiting") continue;
        if (t.node.state === "open") waiting.push(t);
        else emit({ kind: "node", node: view(t.node) });
      }
      await Promise.all(waiting.filter((t) => t.node.state === "waiting").map((t) => observe(t)));
      const joined = waiting.filter((t) => t.node.state === "open");
      for (const t of joined) {
        t.node.message = undefined;
        emit({ kind: "node", node: view(t.node) });
      }
      return joined;
    },
    // every initialised node is unsealed; raft followers may still be joining: wait for one, then replay. Also
    // when this run gave no share yet but a node is unsealed: another operator unsealed the leader (two unseals at
    // once), and its followers, still joining, need shares from this run too.
    whenIdle: async (given) => {
      if (late.size > 0) {
        // a node that has not answered its first look yet: its own request timeout bounds this wait
        await Promise.race([...late.values()].map((l) => l.done));
        return true;
      }
      return given > 0 || targets.some((t) => t.node.state === "complete")
        ? waitForJoiners(targets, limitMs, opts, emit)
        : false;
    },
    record: (t, share, outcome) =>
      opts.transcript?.append({
        action: "unseal-share",
        node: t.node.address,
        operator: share.operator,
        shareFingerprint: share.fingerprint,
        progress: t.node.progress,
        threshold: t.node.required,
        nonce: t.node.nonce,
        detail: outcome,
      }),
    onShare: (share, results) => {
      for (const { set } of results) {
        if (set) {
          opts.transcript?.append({
            action: "unseal-rejected-set",
            node: set.address,
            detail: `refused the set: ${describeSet(set)}`,
          });
        }
      }
      emit({ kind: "share", share, results });
    },
    // more than one share: each is a Shamir share of the 32-byte key (33 bytes); one share is the key itself
    shareLength: () => (targets.some((t) => (t.shares ?? 0) > 1) ? SHARE_BYTES : undefined),
    onRefused: (share, reason) => {
      opts.transcript?.append({
        action: "unseal-share-refused",
        operator: share.operator,
        shareFingerprint: share.fingerprint,
        detail: reason,
      });
      emit({ kind: "refused", share, reason });
    },
    onWrongShare: (set) => {
      opts.transcript?.append({
        action: "unseal-wrong-share",
        node: set.address,
        operator: set.wrong!.who,
        shareFingerprint: set.wrong!.fingerprint,
        detail: "the other shares of the refused set are proven by an unsealed node",
      });
      emit({ kind: "wrong-share", set });
    },
  });
  const interrupted = interruptedOf(run);
  // what the nodes hold now, read again: the operators are told what stays on each and how to go on
  if (interrupted) await Promise.all(targets.filter((t) => t.node.state === "open").map((t) => observe(t)));
  const nodes = targets.map((t) => view(t.node));
  for (const r of nodes) {
    opts.transcript?.append({
      action: "unseal-end",
      node: r.address,
      detail: r.state,
      progress: r.progress,
      threshold: r.threshold,
    });
  }
  forgetShares(run.given);
  return { nodes, sharesUsed: run.sharesUsed, ...(interrupted ? { interrupted } : {}) };
}

/** The engine's node as this ceremony reports it. */
function view(n: QuorumNode): UnsealNodeReport {
  const state: NodeState =
    n.state === "open"
      ? "sealed"
      : n.state === "complete"
        ? "unsealed"
        : n.state === "waiting"
          ? "uninitialised"
          : n.last === "node-down"
            ? "unreachable"
            : n.last === "no-unseal" && joinFailures.get(n)?.answered !== false
              ? "sealed"
              : "failed";
  return {
    address: n.address,
    state,
    progress: n.progress,
    threshold: n.required,
    nonce: n.nonce,
    contributors: n.contributors,
    othersShares: Math.max(0, (n.state === "complete" ? n.required : n.progress) - n.contributors.length),
    message: n.message,
  };
}

const describe: Parameters<typeof runQuorum>[0]["describe"] = (outcome, { node, who, before, failure, set }) => {
  switch (outcome) {
    case "migration-pending":
      return `a seal migration is pending on this node: rerun with --migrate (${failure?.text})`;
    case "rejected-set":
      return (
        `the node refused the set it reached its threshold with (${set ? describeSet(set) : "?"}) and reset its ` +
        `progress to 0: one of those shares is wrong or from another cluster, not necessarily the last; only shares ` +
        `proven by an unsealed node are given again (${failure?.text})`
      );
    case "no-unseal": {
      const failure = joinFailures.get(node);
      return failure?.answered === false
        ? `the node reached the threshold and then stopped answering (${failure.reason}); nothing more is sent to ` +
            `it. ${WEDGED}`
        : `the node reached the threshold but had not unsealed when the join limit was reached (it reset to 0/` +
            `${node.required}); nothing more is sent to it. For a raft follower, check that it can reach the leader ` +
            "and its log, or raise --join-timeout";
    }
    case "node-down":
      // the share that reached the threshold went unanswered: a follower joining its leader with a wrong key does so
      return before + 1 >= node.required
        ? `the node stopped answering on the share that reached its threshold (${failure?.text}); nothing more is ` +
            `sent to it. ${WEDGED}`
        : failure?.text;
    case "restarted":
      return `the node lost its progress (${before}/${node.required}: restarted, or reset elsewhere); the shares proven by an unsealed node are given again, the others are asked for again`;
    case "duplicate":
      return `duplicate share from ${who}: already counted on this node, progress stays ${before}/${node.required}`;
    case "accepted":
      return node.progress < before
        ? `progress went back from ${before} to ${node.progress} (reset elsewhere or node restarted)`
        : undefined;
    case "complete":
      return undefined;
    case "completed-elsewhere":
      return `unsealed by another run's share: the share from ${who} did not complete it`;
    default:
      return failure?.text;
  }
};

async function observe(t: UnsealTarget): Promise<void> {
  try {
    const s = await t.client.sealStatus();
    if (s.n > 0) t.shares = s.n;
    applyStatus(t.node, s);
  } catch (err) {
    markFault(t.node, err);
  }
}

function applyStatus(node: QuorumNode, s: SealStatus): void {
  node.required = s.t;
  node.progress = s.progress;
  node.nonce = s.nonce || undefined;
  node.state = s.sealed ? "open" : "complete";
  if (!s.initialized) {
    node.state = "waiting";
    node.message =
      "not initialised: run sealkeeper init first, or, for a raft follower, wait for its retry_join to reach the leader";
  }
}

function markFault(node: QuorumNode, err: unknown): void {
  if (!(err instanceof SealkeeperError)) throw err;
  node.state = "stopped";
  node.last = err instanceof VaultConnectionError ? "node-down" : "failed";
  node.message = describeError(err);
}

const WEDGED =
  'Check its log: a raft follower joining its leader with a wrong key loops on "error decrypting challenge" and ' +
  "must be restarted (SIGKILL if SIGTERM does not stop it); then run unseal again for it with shares that unsealed " +
  "another node";

/** Why a node that reached its threshold did not unseal (no-unseal): it stopped answering, or the limit passed. */
interface JoinFailure {
  answered: boolean;
  reason: string;
}
const joinFailures = new WeakMap<QuorumNode, JoinFailure>();

/**
 * Watches a node that reached the threshold until it has unsealed (true), or stops answering, or the limit passes
 * (what happened). The wait follows the node's observable state, not a clock: the limit is only there so that a
 * follower that can never reach its leader does not hold the ceremony forever.
 */
async function watchJoin(
  t: UnsealTarget,
  limitMs: number,
  opts: UnsealOptions,
  emit: (e: UnsealEvent) => void,
): Promise<true | JoinFailure> {
  const started = Date.now();
  let lastLine = started;
  const every = opts.waitingEveryMs ?? 5_000;
  for (let round = 0; Date.now() - started < limitMs; round++) {
    await sleep(backoff(round, opts.pollMs));
    let s: SealStatus;
    try {
      s = await t.client.sealStatus();
    } catch (err) {
      if (!(err instanceof SealkeeperError)) throw err;
      return { answered: false, reason: describeError(err) };
    }
    if (!s.sealed) return true;
    // progress > 0 here is a new attempt begun by another operator's share while this node joins its leader: the
    // join goes on with the keys it already has, so keep watching (until the limit) rather than give up on it
    if (Date.now() - lastLine >= every) {
      lastLine = Date.now();
      emit({
        kind: "waiting",
        address: t.node.address,
        waitedMs: lastLine - started,
        limitMs,
        what: "reached the threshold; unsealing once it has joined its leader",
      });
    }
  }
  return { answered: true, reason: `still sealed after ${Math.round(limitMs / 1000)} s` };
}

/** Polls a sealed node for up to `ms`: true as soon as it reports unsealed. */
async function unsealsSoon(t: UnsealTarget, ms: number, opts: UnsealOptions): Promise<boolean> {
  const started = Date.now();
  for (let round = 0; Date.now() - started < ms; round++) {
    await sleep(backoff(round, opts.pollMs));
    const s = await t.client.sealStatus().catch(() => undefined);
    if (s && !s.sealed) return true;
  }
  return false;
}

/** Polls joining nodes until one is initialised (true) or the limit passes (false), saying so every few seconds. */
async function waitForJoiners(
  targets: UnsealTarget[],
  limitMs: number,
  opts: UnsealOptions,
  emit: (e: UnsealEvent) => void,
): Promise<boolean> {
  if (!targets.some((t) => t.node.state === "waiting")) return false;
  const started = Date.now();
  let lastLine = started;
  const every = opts.waitingEveryMs ?? 5_000;
  while (Date.now() - started < limitMs) {
    for (const t of targets.filter((x) => x.node.state === "waiting")) {
      try {
        const s = await t.client.sealStatus();
        if (s.initialized || s.t > 0) return true;
      } catch {
        // a node down while joining: keep waiting for the others
      }
    }
    if (Date.now() - lastLine >= every) {
      lastLine = Date.now();
      for (const t of targets.filter((x) => x.node.state === "waiting")) {
        emit({
          kind: "waiting",
          address: t.node.address,
          waitedMs: lastLine - started,
          limitMs,
          what: "not initialised yet (joining its leader)",
        });
      }
    }
    await sleep(opts.pollMs ?? 250);
  }
  return false;
}

/**
 * The pause before poll `round` of a node that is finishing its unseal: 0, 25, 50, 100, 200 ms, then `pollMs` (250):
 * a follower that unseals within a few milliseconds of its threshold share is seen at once, and one that takes
 * seconds is still asked only four times a second.
 */
export function backoff(round: number, pollMs = 250): number {
  return round === 0 ? 0 : Math.min(pollMs, 25 * 2 ** (round - 1));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function progressLine(reports: UnsealNodeReport[]): string {
  return reports
    .map((r) => `${r.address} ${r.state === "sealed" ? `${r.progress}/${r.threshold}` : r.state}`)
    .join(", ");
}
