/**
 * Quorum unseal across every node of a cluster. Progress is per node (a raft follower needs the threshold too, and a
 * load balancer would mix nodes), so each share is submitted to every node still sealed, concurrently.
 */
import { describeError, SealkeeperError, VaultConnectionError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import type { SealStatus } from "../vault/types.js";
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
  /** Operators (or share origins) whose share counted on this node, in order. */
  contributors: string[];
  /** The last thing that went wrong or was notable on this node (duplicate, rejected set, down). */
  message?: string;
}

export type UnsealEvent =
  | { kind: "node"; node: UnsealNodeReport }
  | { kind: "share"; share: KeyShare; results: { address: string; outcome: string }[] };

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
   * How long to wait for raft followers that have not joined yet (they report initialized=false until their
   * retry_join reaches the leader) before reporting them as uninitialised. Default 30 s; 0 disables waiting.
   */
  joinWaitMs?: number;
}

export interface UnsealReport {
  nodes: UnsealNodeReport[];
  sharesUsed: number;
}

/**
 * Runs the ceremony until every reachable node is unsealed or the source runs dry. Never throws for a node fault.
 * The shares given are held in memory for the ceremony only (to replay to nodes that join late); their bytes are
 * zeroed at the end. The server is always sent the hex form.
 */
export async function runUnseal(opts: UnsealOptions): Promise<UnsealReport> {
  const reports = await Promise.all(opts.clients.map((c) => observeForUnseal(c)));
  const byAddress = new Map(opts.clients.map((c, i) => [c.address, { client: c, report: reports[i]! }]));
  const emit = (e: UnsealEvent) => opts.onEvent?.(e);
  for (const r of reports) emit({ kind: "node", node: r });

  if (opts.reset) {
    await Promise.all(
      [...byAddress.values()]
        .filter(({ report }) => report.state === "sealed")
        .map(async ({ client, report }) => {
          try {
            apply(report, await client.unseal({ reset: true }));
            report.contributors = [];
            opts.transcript?.append({ action: "unseal-reset", node: client.address, progress: 0 });
          } catch (err) {
            markFault(report, err);
          }
        }),
    );
  }

  let sharesUsed = 0;
  const seen = new Set<string>();
  // Shares given so far, in memory for the ceremony only: a node that joins or restarts late gets them replayed.
  const given: KeyShare[] = [];
  const submitAll = async (targets: UnsealNodeReport[], share: KeyShare, repeated: boolean) => {
    const who = share.operator ?? share.origin;
    return Promise.all(
      targets.map(async (report) => {
        const { client } = byAddress.get(report.address)!;
        const outcome = await submitShare(client, report, share, who, opts.migrate ?? false, repeated);
        opts.transcript?.append({
          action: "unseal-share",
          node: report.address,
          operator: share.operator,
          shareFingerprint: share.fingerprint,
          progress: report.progress,
          threshold: report.threshold,
          nonce: report.nonce,
          detail: outcome,
        });
        return { address: report.address, outcome };
      }),
    );
  };
  /** Re-observes nodes that were waiting to join; those now initialised get every share given so far. */
  const admitJoiners = async () => {
    const waiting = reports.filter((r) => r.state === "uninitialised");
    if (waiting.length === 0) return;
    await Promise.all(
      waiting.map(async (r) => {
        try {
          apply(r, await byAddress.get(r.address)!.client.sealStatus());
        } catch (err) {
          markFault(r, err);
        }
        if (r.state !== "sealed") return;
        r.message = undefined;
        emit({ kind: "node", node: r });
        for (const share of given) {
          if (r.state !== "sealed") break;
          const results = await submitAll([r], share, false);
          emit({ kind: "share", share, results });
        }
      }),
    );
  };

  for (;;) {
    await admitJoiners();
    const pending = reports.filter((r) => r.state === "sealed");
    const joining = reports.filter((r) => r.state === "uninitialised");
    if (pending.length === 0) {
      if (joining.length === 0 || given.length === 0) break;
      // every initialised node is unsealed; raft followers may still be joining: wait for them, then replay
      if (!(await waitForJoin(reports, byAddress, opts.joinWaitMs ?? 30_000))) break;
      continue;
    }
    const remaining = Math.max(...pending.map((r) => r.threshold - r.progress));
    const share = await opts.source.next({ progressLine: progressLine(reports), remaining });
    if (share === null) break;
    sharesUsed++;
    const repeated = seen.has(share.fingerprint);
    seen.add(share.fingerprint);
    if (!repeated) given.push(share);
    const results = await submitAll(pending, share, repeated);
    emit({ kind: "share", share, results });
    // A node that restarted (or whose attempt was reset) since the last share counts only this one now: give it the
    // earlier shares again from memory, so the operators need not step up twice. One pass: a node that restarts
    // again during the replay is left to the next shares.
    for (const { address } of results.filter((r) => r.outcome === "restarted")) {
      const report = byAddress.get(address)!.report;
      for (const earlier of given) {
        if (report.state !== "sealed") break;
        if (earlier.fingerprint === share.fingerprint) continue;
        emit({ kind: "share", share: earlier, results: await submitAll([report], earlier, false) });
      }
    }
  }
  for (const r of reports) {
    opts.transcript?.append({
      action: "unseal-end",
      node: r.address,
      detail: r.state,
      progress: r.progress,
      threshold: r.threshold,
    });
  }
  // forget the shares as far as JavaScript lets us: overwrite the bytes we own
  for (const share of given) share.bytes.fill(0);
  return { nodes: reports, sharesUsed };
}

/** Polls joining nodes until one is initialised (true) or the wait is over (false). */
async function waitForJoin(
  reports: UnsealNodeReport[],
  byAddress: Map<string, { client: VaultClient; report: UnsealNodeReport }>,
  waitMs: number,
): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    for (const r of reports.filter((x) => x.state === "uninitialised")) {
      try {
        const s = await byAddress.get(r.address)!.client.sealStatus();
        if (s.initialized || s.t > 0) return true;
      } catch {
        // a node down while joining: keep waiting for the others
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return false;
}

async function observeForUnseal(client: VaultClient): Promise<UnsealNodeReport> {
  const report: UnsealNodeReport = {
    address: client.address,
    state: "sealed",
    progress: 0,
    threshold: 0,
    contributors: [],
  };
  try {
    apply(report, await client.sealStatus());
  } catch (err) {
    markFault(report, err);
  }
  return report;
}

function apply(report: UnsealNodeReport, s: SealStatus): void {
  report.threshold = s.t;
  report.progress = s.progress;
  report.nonce = s.nonce || undefined;
  report.state = !s.sealed ? "unsealed" : "sealed";
  if (!s.initialized) {
    report.state = "uninitialised";
    report.message =
      "not initialised: run sealkeeper init first, or, for a raft follower, wait for its retry_join to reach the leader";
  }
}

function markFault(report: UnsealNodeReport, err: unknown): void {
  if (err instanceof VaultConnectionError) {
    report.state = "unreachable";
    report.message = describeError(err);
    return;
  }
  if (!(err instanceof SealkeeperError)) throw err;
  report.state = "failed";
  report.message = describeError(err);
}

/** Submits one share to one node and interprets what happened. Returns a short outcome for the transcript. */
async function submitShare(
  client: VaultClient,
  report: UnsealNodeReport,
  share: KeyShare,
  who: string,
  migrate: boolean,
  repeated: boolean,
): Promise<string> {
  const before = report.progress;
  const nonceBefore = report.nonce;
  let status: SealStatus;
  try {
    status = await client.unseal({ key: share.hex, ...(migrate ? { migrate: true } : {}) });
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 400) {
      const text = err.errors.join("; ");
      if (/migrat/i.test(text)) {
        report.message = `a seal migration is pending on this node: rerun with --migrate (${text})`;
        return "migration-pending";
      }
      // At the threshold the server combines the shares; a wrong set fails to decrypt the keyring and resets.
      report.progress = 0;
      report.contributors = [];
      report.message = `the node rejected the combined shares and reset its progress to 0: the set includes a wrong share or one from another cluster (${text})`;
      return "rejected-set";
    }
    markFault(report, err);
    return report.state === "unreachable" ? "node-down" : "error";
  }
  apply(report, status);
  if (!status.sealed) {
    report.contributors.push(who);
    report.message = undefined;
    return "unsealed";
  }
  if (status.progress === 0 && before + 1 >= report.threshold) {
    // A raft follower that reaches the threshold answers "sealed, progress 0" and finishes unsealing in the
    // background once it has used the keys to join the leader (seen on Vault 1.21): wait for it.
    if (await waitUntilUnsealed(client, report)) {
      report.contributors.push(who);
      report.message = undefined;
      return "unsealed";
    }
    report.contributors = [];
    report.message =
      "the node reached the threshold but did not unseal within 30s (it reset to 0/" +
      `${report.threshold}); for a raft follower, check that it can reach the leader`;
    return "no-unseal";
  }
  if (before > 0 && nonceBefore !== undefined && status.nonce && status.nonce !== nonceBefore) {
    // A new nonce: this share started a new attempt. The node restarted (its progress lives in memory: seen on
    // Vault 1.21 after a SIGKILL) or someone reset it; the shares counted before are gone, this one is not a duplicate.
    report.contributors = [who];
    report.message = `the node lost its progress (${before}/${report.threshold}: restarted, or reset elsewhere); the earlier shares are given again`;
    return "restarted";
  }
  if (status.progress === before) {
    report.message = `duplicate share from ${who}: already counted on this node, progress stays ${before}/${report.threshold}`;
    return "duplicate";
  }
  if (status.progress < before) {
    // someone else reset the attempt or the node restarted in between
    report.message = `progress went back from ${before} to ${status.progress} (reset elsewhere or node restarted)`;
    report.contributors = [];
  }
  report.contributors.push(who);
  if (repeated) report.message = undefined;
  return "accepted";
}

/** Polls seal-status until the node is unsealed (true) or 30 s pass (false). */
async function waitUntilUnsealed(client: VaultClient, report: UnsealNodeReport, waitMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    try {
      const s = await client.sealStatus();
      apply(report, s);
      if (!s.sealed) return true;
      if (s.progress > 0) return false; // someone started a new attempt: not ours to wait for
    } catch (err) {
      markFault(report, err);
      return false;
    }
  }
  return false;
}

export function progressLine(reports: UnsealNodeReport[]): string {
  return reports
    .map((r) => `${r.address} ${r.state === "sealed" ? `${r.progress}/${r.threshold}` : r.state}`)
    .join(", ");
}
