/**
 * The quorum engine: the one loop behind unseal, rekey (both phases), root generation and seal migration. It asks the
 * share source for a share, submits it to every node that still takes shares (concurrently), reads each answer
 * (progress, nonce, completion), names duplicates, replays PROVEN shares to a node that restarted or joined late, and
 * classifies every failure into ONE typed outcome. A ceremony is an adapter: per node, how to submit a share and what
 * its answer means (`QuorumTarget`), and how to word each outcome for the people at the terminal.
 *
 * A share is proven when it belongs to a set that completed a node (issue 25): only those are ever replayed. A share
 * of a set a node rejected is never given again on the engine's own authority: a raft follower joining its leader
 * uses the keys it reaches its threshold with to decrypt the leader's challenge, and a wrong one there wedges it
 * ("error decrypting challenge", in a loop) instead of being refused. What a node still needs is asked for again.
 *
 * Shares given are held in memory for the run only (for replays) and zeroed by the caller's `forget` when it ends.
 */
import { SealkeeperError, UsageError, VaultConnectionError, VaultHttpError } from "../errors.js";
import { type Interruption, PromptInterrupted } from "../prompt/prompter.js";
import type { ShareSource } from "./share-source.js";
import type { KeyShare } from "./unseal-key.js";

/** Everything one share can do to one node. */
export type QuorumOutcome =
  /** counted; more are needed */
  | "accepted"
  /** this share reached the threshold and the node did what the ceremony asked */
  | "complete"
  /** the node was completed by another run's share (two operators at once): this share was not the completing one
   *  (it was not sent, or the node's progress just before it left it short of the threshold) */
  | "completed-elsewhere"
  /** already counted in this attempt (by the server's word, or the progress did not move) */
  | "duplicate"
  /** the node lost its progress (restart or reset elsewhere): this share started a new attempt */
  | "restarted"
  /** the threshold was reached but the shares did not combine to the key: progress back to 0 */
  | "rejected-set"
  /** the server had counted a share twice (OpenBao's rekey verification does not refuse a repeat), so the set did
   *  not combine and the attempt restarted under a new nonce; the adapter gave the run's own shares again */
  | "repeat-reset"
  /** the attempt on the node is not the one the operators confirmed */
  | "wrong-nonce"
  /** no attempt any more (cancelled, or the node sealed or restarted) */
  | "gone"
  /** the node was sealed during the ceremony */
  | "sealed"
  /** the node did not answer */
  | "node-down"
  /** a seal migration is pending: the share must be sent with migrate=true */
  | "migration-pending"
  /** the node reached the threshold but did not unseal (a raft follower that could not join) */
  | "no-unseal"
  /** rekey: the old-share phase is over, the new shares wait for verification */
  | "already-updated"
  /** any other refusal */
  | "failed";

/** Outcomes after which a node takes no more shares in this run. */
const STOPS: ReadonlySet<QuorumOutcome> = new Set([
  "complete",
  // a node that reached its threshold and then neither unsealed nor answered: nothing more is sent to it
  "no-unseal",
  "wrong-nonce",
  "gone",
  "sealed",
  "node-down",
  "already-updated",
  "failed",
]);

export function stopsNode(outcome: QuorumOutcome): boolean {
  return STOPS.has(outcome);
}

/** open: takes shares; waiting: not yet (a raft follower still joining); complete/stopped: done for this run. */
export type QuorumNodeState = "open" | "waiting" | "complete" | "stopped";

/** One node's side of a ceremony, as the engine keeps it. */
export interface QuorumNode {
  address: string;
  state: QuorumNodeState;
  progress: number;
  required: number;
  nonce?: string;
  /** Operators (or share origins) whose share counted, in order. */
  contributors: string[];
  /** The last outcome on this node. */
  last?: QuorumOutcome;
  /** What is notable on this node, one line, no secret. */
  message?: string;
}

export function newNode(address: string, progress = 0, required = 0, nonce?: string): QuorumNode {
  return { address, state: "open", progress, required, nonce: nonce || undefined, contributors: [] };
}

/** What a node answered to a share, in the engine's terms. */
export interface QuorumAnswer {
  progress: number;
  required?: number;
  /** "" clears it (an unsealed node has no attempt); undefined keeps the one known. */
  nonce?: string;
  complete: boolean;
  /**
   * The adapter's own verdict when the answer alone does not tell: no-unseal (a follower that reached the threshold
   * but did not unseal), repeat-reset (the attempt restarted and the adapter re-gave shares: it set the node's
   * contributors itself), completed-elsewhere (with complete: another run's share completed the node).
   */
  outcome?: "no-unseal" | "repeat-reset" | "completed-elsewhere";
}

/** One node as a ceremony drives it. */
export interface QuorumTarget {
  node: QuorumNode;
  /** Sends one share; throws what the client throws (VaultHttpError, VaultConnectionError). */
  submit(share: KeyShare): Promise<QuorumAnswer>;
}

export interface Failure {
  outcome: QuorumOutcome;
  /** The server's errors (or the connection error's description), for messages. */
  text: string;
}

/**
 * Every failure of a share submission, whatever the ceremony, as one outcome. `refusal` is what a plain 400 means
 * when no known text matches (the unseal endpoint answers a wrong set that way; elsewhere it is "failed").
 * @throws err itself when it is not a SealkeeperError (a bug, not a node fault).
 */
export function classifyFailure(err: unknown, refusal: QuorumOutcome = "failed"): Failure {
  if (err instanceof VaultConnectionError) return { outcome: "node-down", text: err.message };
  if (!(err instanceof SealkeeperError)) throw err;
  if (!(err instanceof VaultHttpError)) return { outcome: "failed", text: err.message };
  // one line per server error: Vault's multi-errors ("2 errors occurred:\n\t* ...") come folded into one
  const text = err.errors.map(oneLine).join("; ");
  const outcome: QuorumOutcome = /migrat/i.test(text)
    ? "migration-pending"
    : err.status === 503 || /\bsealed\b/i.test(text)
      ? "sealed"
      : /already been provided/i.test(text)
        ? "duplicate"
        : /incorrect nonce/i.test(text)
          ? "wrong-nonce"
          : /no ((barrier |recovery )?(rekey|rotation)( verification)?|root generation) in progress/i.test(text)
            ? "gone"
            : /verification must be performed|rotation already finished/i.test(text)
              ? "already-updated"
              : /aborted|failed to compute|verification failed|unable to authenticate/i.test(text)
                ? "rejected-set"
                : err.status === 400
                  ? refusal
                  : "failed";
  return { outcome, text: text || `HTTP ${err.status}` };
}

/** A share as messages name it: who gave it and its public fingerprint, never the share. */
export interface ShareRef {
  who: string;
  fingerprint: string;
}

export function shareRef(share: KeyShare): ShareRef {
  return { who: share.operator ?? share.origin, fingerprint: share.fingerprint };
}

/** A set of shares a node refused at its threshold. */
export interface RejectedSet {
  address: string;
  /** This run's shares in the set, in the order they were counted (the last one reached the threshold). */
  shares: ShareRef[];
  /** Shares the node had counted before this run (from another run or operator): not known here. */
  earlier: number;
  /** The share that is wrong, when the others are proven (each completed a node in a set without it). */
  wrong?: ShareRef;
}

/** "alice [3f2a...], stdin line 2 [9b1c...]" (and the shares counted before this run). */
export function describeSet(set: Pick<RejectedSet, "shares" | "earlier">): string {
  const named = set.shares.map((s) => `${s.who} [${s.fingerprint}]`);
  if (set.earlier > 0) named.push(`${set.earlier} share(s) the node held from before this run`);
  return named.join(", ");
}

/** A server's error text on one line: "1 error occurred:\n\t* x\n\n" -> "x"; other line breaks become "; ". */
export function oneLine(text: string): string {
  return text
    .replace(/^\s*\d+ errors? occurred:\s*/i, "")
    .split(/\s*\n+\s*/)
    .map((l) => l.replace(/^\*\s*/, "").trim())
    .filter((l) => l !== "")
    .join("; ");
}

/** What a ceremony says about an outcome; undefined clears the node's message. */
export type Describe = (
  outcome: QuorumOutcome,
  ctx: {
    node: QuorumNode;
    who: string;
    before: number;
    failure?: Failure;
    status?: number;
    /** rejected-set: the set the node refused. */
    set?: RejectedSet;
  },
) => string | undefined;

export interface ShareResult {
  address: string;
  outcome: QuorumOutcome;
  /** rejected-set: the set the node refused. */
  set?: RejectedSet;
}

export interface QuorumRunOptions {
  targets: QuorumTarget[];
  source: ShareSource;
  describe: Describe;
  /** What an unexplained 400 means (see classifyFailure). */
  refusal?: QuorumOutcome;
  /** The source's prompt context: the progress line and how many shares are still wanted. */
  prompt: (nodes: QuorumNode[]) => { progressLine: string; remaining: number };
  /** Runs before each share: returns targets that just became open (late joiners); they get the shares so far. */
  admit?: () => Promise<QuorumTarget[]>;
  /** Runs when no node is open (with how many distinct shares were given so far): true to go on (a waiting node
   *  may open). */
  whenIdle?: (given: number) => Promise<boolean>;
  /** After each share on each node (transcript). */
  record?: (target: QuorumTarget, share: KeyShare, outcome: QuorumOutcome) => void;
  /** After each share, with every node's outcome (progress lines). */
  onShare?: (share: KeyShare, results: ShareResult[]) => void;
  /** When a rejected set's wrong share is told (the rest of the set is proven). */
  onWrongShare?: (set: RejectedSet) => void;
  /** The length of this cluster's shares when the ceremony knows it (else the first share a node counted tells). */
  shareLength?: () => number | undefined;
  /**
   * A share refused before sending (it cannot be a share of this cluster): nothing was sent, no progress consumed,
   * and the source is asked for the next one. Without it, the refusal ends the run as a UsageError.
   */
  onRefused?: (share: KeyShare, reason: string) => void;
}

export interface QuorumRun {
  sharesUsed: number;
  /** The distinct shares given, in order (in memory; the caller zeroes them with forgetShares). */
  given: KeyShare[];
  /** The sets the nodes refused, in order, each with its wrong share when it could be told. */
  rejected: RejectedSet[];
  /** The person ended the share prompt (Ctrl-C, Ctrl-D, a signal): the run stopped there, as at "stop here"; the
   *  ceremony says what the nodes hold and how to go on, and the CLI exits with its code. */
  interrupted?: PromptInterrupted;
}

/**
 * What the run knows about its shares: which are proven (in a set that completed a node), which sets were
 * refused, and what each node counted in its current attempt (this run's shares only).
 */
class Ledger {
  readonly given: KeyShare[] = [];
  readonly proven = new Map<string, KeyShare>();
  readonly rejected: RejectedSet[] = [];
  /** The length of the shares a node counted in this run. */
  length?: number;
  private readonly attempts = new Map<QuorumNode, KeyShare[]>();

  constructor(private readonly onWrongShare?: (set: RejectedSet) => void) {}

  counted(node: QuorumNode): KeyShare[] {
    return this.attempts.get(node) ?? [];
  }

  /** Books one outcome; for a rejected set, returns the set. */
  settle(node: QuorumNode, share: KeyShare, outcome: QuorumOutcome, before: number): RejectedSet | undefined {
    const attempt = this.counted(node);
    if (outcome === "accepted" || outcome === "restarted" || outcome === "complete") this.length = share.bytes.length;
    switch (outcome) {
      case "accepted":
        this.attempts.set(node, node.progress <= before ? [share] : [...attempt, share]);
        return undefined;
      case "restarted":
        this.attempts.set(node, [share]);
        return undefined;
      case "duplicate":
        // the node counts it in this attempt (by its own word): booked, so it is not replayed to it
        if (!attempt.some((s) => s.fingerprint === share.fingerprint)) this.attempts.set(node, [...attempt, share]);
        return undefined;
      case "complete":
        for (const s of [...attempt, share]) this.proven.set(s.fingerprint, s);
        this.attempts.delete(node);
        this.tell();
        return undefined;
      case "rejected-set": {
        const shares = [...attempt, share].map(shareRef);
        const set: RejectedSet = { address: node.address, shares, earlier: Math.max(0, before - attempt.length) };
        this.attempts.delete(node);
        if (!this.rejected.some((r) => sameSet(r, set))) this.rejected.push(set);
        this.tell();
        return set;
      }
      case "no-unseal":
      case "repeat-reset":
        // the node reached its threshold without unsealing (or the adapter re-gave shares): nothing is proven
        this.attempts.delete(node);
        return undefined;
      default:
        return undefined;
    }
  }

  /** A rejected set all of whose shares but one are proven (and none unknown): that one is the wrong share. */
  private tell(): void {
    for (const set of this.rejected) {
      if (set.wrong || set.earlier > 0) continue;
      const unproven = set.shares.filter((s) => !this.proven.has(s.fingerprint));
      if (unproven.length === 1) {
        set.wrong = unproven[0];
        this.onWrongShare?.(set);
      }
    }
  }
}

/**
 * Why `share` cannot be a share of this cluster, said before anything is sent; undefined when it may be one. (The
 * bytes alone are checked where they are parsed: parseKeyShare.)
 */
function refusalOf(share: KeyShare, ledger: Ledger, known: number | undefined): string | undefined {
  const who = `the share from ${share.operator ?? share.origin}`;
  const length = known ?? ledger.length;
  if (length !== undefined && share.bytes.length !== length) {
    return (
      `${who} is ${share.bytes.length} bytes, this cluster's shares are ${length} (${known !== undefined ? "by the server's share count" : "as those counted so far"}): ` +
      "a digit dropped or added, or a key of another kind; it was not sent"
    );
  }
  const wrong = ledger.rejected.find((r) => r.wrong?.fingerprint === share.fingerprint);
  if (wrong) {
    return `${who} [${share.fingerprint}] is the wrong share of the set ${wrong.address} refused (the others unsealed a node): it was not sent`;
  }
  return undefined;
}

function sameSet(a: RejectedSet, b: RejectedSet): boolean {
  const key = (r: RejectedSet) =>
    `${r.earlier}:${r.shares
      .map((s) => s.fingerprint)
      .sort()
      .join(",")}`;
  return key(a) === key(b);
}

/**
 * Runs the loop until no node takes shares any more or the source runs dry. Never throws for a node fault: each
 * node's state, last outcome and message say what happened.
 */
export async function runQuorum(opts: QuorumRunOptions): Promise<QuorumRun> {
  const seen = new Set<string>();
  const ledger = new Ledger(opts.onWrongShare);
  const given = ledger.given;
  let sharesUsed = 0;
  const feedAll = async (targets: QuorumTarget[], share: KeyShare): Promise<ShareResult[]> => {
    const results = await Promise.all(targets.map((t) => feed(t, share, opts, ledger)));
    opts.onShare?.(share, results);
    return results;
  };
  // Only proven shares, and none the node already counts in its attempt: a share of a refused set (or one no set
  // has proven yet) is asked for again rather than given on the engine's authority. And only to a node whose whole
  // attempt is proven: completing a set that holds an unproven share (or shares counted before this run) would be
  // sending that share on the engine's authority too.
  const replay = async (t: QuorumTarget) => {
    const counted = ledger.counted(t.node);
    if (t.node.progress > counted.length || counted.some((s) => !ledger.proven.has(s.fingerprint))) return;
    for (const earlier of [...ledger.proven.values()]) {
      if (t.node.state !== "open") break;
      if (!ledger.counted(t.node).some((s) => s.fingerprint === earlier.fingerprint)) {
        await feedAll([t], earlier);
      }
    }
  };

  for (;;) {
    for (const t of (await opts.admit?.()) ?? []) await replay(t);
    const open = opts.targets.filter((t) => t.node.state === "open");
    if (open.length === 0) {
      if (opts.whenIdle && (await opts.whenIdle(given.length))) continue;
      break;
    }
    let share: KeyShare | null;
    try {
      share = await opts.source.next(opts.prompt(opts.targets.map((t) => t.node)));
    } catch (err) {
      if (!(err instanceof PromptInterrupted)) throw err;
      return { sharesUsed, given, rejected: ledger.rejected, interrupted: err };
    }
    if (share === null) break;
    const refusal = refusalOf(share, ledger, opts.shareLength?.());
    if (refusal) {
      share.bytes.fill(0);
      if (!opts.onRefused) throw new UsageError(refusal);
      opts.onRefused(share, refusal);
      continue;
    }
    sharesUsed++;
    const repeated = seen.has(share.fingerprint);
    seen.add(share.fingerprint);
    if (!repeated) given.push(share);
    const results = await feedAll(open, share);
    // A node still counting gets the proven shares it lacks, from memory, so the operators need not step up twice:
    // one that restarted (it counts only this share now) once its attempt is proven, and one left behind when a set
    // completed elsewhere. One pass per share: a node that restarts again is left to later shares.
    if (results.some((r) => r.outcome !== "accepted" && r.outcome !== "duplicate")) {
      for (const t of opts.targets) if (t.node.state === "open") await replay(t);
    }
  }
  return { sharesUsed, given, rejected: ledger.rejected };
}

/** A run ended at its share prompt, as a report carries it (plain data: reports are printed as JSON too). */
export interface Interrupted {
  by: Interruption;
  /** "Ctrl-C (SIGINT)", "Ctrl-D (end of input)", ... */
  said: string;
  /** The code the CLI exits with (130, 143, 129). */
  exitCode: number;
  /** How many shares this run had given before. */
  sharesGiven: number;
}

export function interruptedOf(run: QuorumRun): Interrupted | undefined {
  const i = run.interrupted;
  return i && { by: i.how, said: i.said, exitCode: i.exitCode, sharesGiven: run.given.length };
}

/** Overwrites the bytes of the shares held for a run, as far as JavaScript lets us. */
export function forgetShares(shares: KeyShare[]): void {
  for (const share of shares) share.bytes.fill(0);
}

/** Submits one share to one node and settles the node's state from the answer or the failure. */
async function feed(t: QuorumTarget, share: KeyShare, opts: QuorumRunOptions, ledger: Ledger): Promise<ShareResult> {
  const node = t.node;
  const who = share.operator ?? share.origin;
  const before = node.progress;
  const nonceBefore = node.nonce;
  let outcome: QuorumOutcome;
  let failure: Failure | undefined;
  try {
    const answer = await t.submit(share);
    outcome = settleAnswer(node, answer, before, nonceBefore, who);
  } catch (err) {
    failure = classifyFailure(err, opts.refusal);
    outcome = failure.outcome;
    if (outcome === "rejected-set") {
      node.progress = 0;
      node.contributors = [];
    }
    if (stopsNode(outcome)) node.state = "stopped";
  }
  node.last = outcome;
  const set = ledger.settle(node, share, outcome, before);
  // each share's note is its own: a note an earlier share left (a rejection, a reset) is not this one's, and what it
  // said may no longer be true of the node (issue 26.4)
  node.message = opts.describe(outcome, { node, who, before, failure, set });
  opts.record?.(t, share, outcome);
  return { address: node.address, outcome, ...(set ? { set } : {}) };
}

function settleAnswer(
  node: QuorumNode,
  a: QuorumAnswer,
  before: number,
  nonceBefore: string | undefined,
  who: string,
): QuorumOutcome {
  node.progress = a.progress;
  if (a.required) node.required = a.required;
  if (a.nonce !== undefined) node.nonce = a.nonce || undefined;
  if (a.complete) {
    node.state = "complete";
    if (a.outcome === "completed-elsewhere") return "completed-elsewhere";
    node.contributors.push(who);
    return "complete";
  }
  if (a.outcome === "no-unseal") {
    node.contributors = [];
    node.state = "stopped";
    return "no-unseal";
  }
  if (a.outcome === "repeat-reset") return "repeat-reset";
  if (before > 0 && nonceBefore !== undefined && a.nonce && a.nonce !== nonceBefore) {
    node.contributors = [who];
    return "restarted";
  }
  if (a.progress === before) return "duplicate";
  if (a.progress < before) node.contributors = [];
  node.contributors.push(who);
  return "accepted";
}

/** A source that yields the given shares in order, then runs dry. */
export function fixedSource(shares: KeyShare[]): ShareSource {
  let i = 0;
  return { next: async () => shares[i++] ?? null };
}

/**
 * Reads shares until `threshold` distinct ones are in hand (a ceremony that needs the whole quorum before the first
 * server call, e.g. seal migration): the engine on a local target, so duplicates are named the same way.
 * @throws UsageError when the source runs dry first (nothing was sent anywhere).
 */
export async function collectDistinctShares(
  source: ShareSource,
  threshold: number,
  purpose: string,
): Promise<KeyShare[]> {
  const held = new Map<string, KeyShare>();
  const node = newNode("local", 0, threshold);
  const run = await runQuorum({
    targets: [
      {
        node,
        submit: async (share) => {
          if (!held.has(share.fingerprint)) held.set(share.fingerprint, share);
          return { progress: held.size, complete: held.size >= threshold };
        },
      },
    ],
    source,
    describe: () => undefined,
    prompt: ([n]) => ({ progressLine: `${n!.progress}/${threshold} shares`, remaining: threshold - n!.progress }),
  });
  // nothing was sent anywhere: the interruption ends the run with its own code and words
  if (run.interrupted) throw run.interrupted;
  if (held.size < threshold) {
    throw new UsageError(`${held.size} distinct shares given, ${purpose} needs the threshold of ${threshold}`);
  }
  return [...held.values()];
}
