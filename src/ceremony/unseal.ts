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
}

export interface UnsealReport {
  nodes: UnsealNodeReport[];
  sharesUsed: number;
}

/** Runs the ceremony until every reachable node is unsealed or the source runs dry. Never throws for a node fault. */
export async function runUnseal(opts: UnsealOptions): Promise<UnsealReport> {
  const reports = await Promise.all(opts.clients.map((c) => observeForUnseal(c)));
  const byAddress = new Map(opts.clients.map((c, i) => [c.address, { client: c, report: reports[i]! }]));
  const emit = (e: UnsealEvent) => opts.onEvent?.(e);
  reports.forEach((r) => emit({ kind: "node", node: r }));

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
  for (;;) {
    const pending = reports.filter((r) => r.state === "sealed");
    if (pending.length === 0) break;
    const remaining = Math.max(...pending.map((r) => r.threshold - r.progress));
    const share = await opts.source.next({ progressLine: progressLine(reports), remaining });
    if (share === null) break;
    sharesUsed++;
    const who = share.operator ?? share.origin;
    const repeated = seen.has(share.fingerprint);
    seen.add(share.fingerprint);
    const results = await Promise.all(
      pending.map(async (report) => {
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
    emit({ kind: "share", share, results });
  }
  for (const r of reports)
    opts.transcript?.append({
      action: "unseal-end",
      node: r.address,
      detail: r.state,
      progress: r.progress,
      threshold: r.threshold,
    });
  return { nodes: reports, sharesUsed };
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
  // A raft follower that has not joined yet says initialized=false but accepts the leader's shares to join.
  report.state = !s.sealed ? "unsealed" : "sealed";
  if (!s.initialized && s.t === 0) {
    report.state = "uninitialised";
    report.message = "not initialised (run sealkeeper init first, or join it to an initialised cluster)";
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

export function progressLine(reports: UnsealNodeReport[]): string {
  return reports
    .map((r) => `${r.address} ${r.state === "sealed" ? `${r.progress}/${r.threshold}` : r.state}`)
    .join(", ");
}
