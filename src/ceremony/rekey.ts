/**
 * Rekey: new unseal shares (or recovery shares under auto-unseal) for new operators, a new count and threshold,
 * authorised by a quorum of the OLD shares, without the key ever being rebuilt outside the server.
 *
 * Phases, as the server runs them: `update` collects old shares; when the threshold is reached the server answers
 * with the new shares, which are sealed and written at once with init's guarantees (deliver-shares.ts); then, with
 * verification (the default), `verify` collects a threshold of the NEW shares, and only then does the server switch
 * keys. Until that moment the old shares stay valid, so a failure anywhere before it loses nothing: cancel and the old
 * shares still work. The server keeps the attempt in memory only: a seal or restart abandons it (Vault 1.21).
 *
 * Vault: /sys/rekey/* and /sys/rekey-recovery-key/*, unauthenticated. OpenBao >= 2.5: /sys/rotate/root/* and
 * /sys/rotate/recovery/*, with a token (the unauthenticated ones are off unless the listener says otherwise).
 */
import type { OperatorSpec } from "../ciphers/types.js";
import { SealkeeperError, UsageError, VaultConnectionError } from "../errors.js";
import type { ShareStore, WrittenFile } from "../store/share-store.js";
import { enterCriticalSection } from "../util/critical-section.js";
import type { VaultClient } from "../vault/client.js";
import {
  isRekeyDone,
  RekeyApi,
  type RekeyStatus,
  type RekeyUpdateDone,
  type RekeyVerifyStatus,
  rekeyEndpoints,
} from "../vault/sys-rekey.js";
import {
  checkOperatorCount,
  type DeliveryOperator,
  deliverShares,
  loadOperators,
  probeRecipients,
  type SealMode,
  type ShareKind,
  SharesRescuedError,
} from "./deliver-shares.js";
import { checkSharesAndThreshold } from "./init.js";
import { notePendingRescue, recordPending, settlePending } from "./pending.js";
import {
  classifyFailure,
  type Describe,
  describeSet,
  type Interrupted,
  interruptedOf,
  newNode,
  type QuorumAnswer,
  type QuorumOutcome,
  runQuorum,
  type ShareResult,
} from "./quorum.js";
import {
  AttemptInProgressError,
  detectQuorumEndpoint,
  type EndpointPreference,
  type QuorumEndpoint,
} from "./quorum-endpoint.js";
import type { ShareSource } from "./share-source.js";
import type { Transcript } from "./transcript.js";
import type { KeyShare } from "./unseal-key.js";

export type { RekeyStatus, RekeyUpdateDone, RekeyVerifyStatus } from "../vault/sys-rekey.js";
export { rekeyEndpoints } from "../vault/sys-rekey.js";

export interface RekeyConfig {
  shares: number;
  threshold: number;
  operators: OperatorSpec[];
  /** server: the server encrypts to pgp keys (plaintext never leaves it); client: sealkeeper seals; auto: server when
   *  every operator is pgp. */
  sealShares?: "auto" | "server" | "client";
  /** Default true: the new shares take effect only once a threshold of them is proven. */
  requireVerification?: boolean;
}

export type RekeyMode = "start" | "resume" | "verify";
export type RekeyPhase = "update" | "verify";
export type RekeyState = "complete" | "in-progress" | "cancelled" | "failed";

export interface RekeyOptions {
  client: VaultClient;
  source: ShareSource;
  mode: RekeyMode;
  /** start and resume: the new shares and their holders. */
  config?: RekeyConfig;
  /** start and resume: where the new shares go (pre-flighted before anything is sent). */
  store?: ShareStore;
  cwd: string;
  /** Submit under this nonce (the operators' confirmation of which attempt they contribute to). */
  nonce?: string;
  endpoint?: EndpointPreference;
  /** After the new shares are written, go on collecting NEW shares for verification from the same source
   *  (an interactive ceremony); otherwise the run ends there and the new holders verify with mode "verify". */
  continueToVerify?: boolean;
  /**
   * With continueToVerify: runs once the new shares are written, before verification starts, so that the new
   * holders can check their files (`shares check`) first; false stops there (verify later with --verify).
   */
  beforeVerify?: (report: RekeyReport) => Promise<boolean>;
  transcript?: Transcript;
  onEvent?: (e: RekeyEvent) => void;
  log?: (line: string) => void;
  rescueDirs?: string[];
  /** The pending-ceremony journal (src/ceremony/pending.ts): a record is fsynced there before the completing share
   *  goes out and removed once the new shares are written, so that the next run can say what a lost answer means. */
  pendingDir?: string;
  /** Test seam: runs after the server returned the new shares, before they are written. */
  afterServerAnswered?: () => Promise<void> | void;
}

export interface RekeyReport {
  address: string;
  endpoint: QuorumEndpoint;
  kind: ShareKind;
  phase: RekeyPhase;
  state: RekeyState;
  /** The nonce of the current phase (the verification nonce in the verify phase). */
  nonce: string;
  progress: number;
  required: number;
  newShares: number;
  newThreshold: number;
  verificationRequired: boolean;
  sealMode?: SealMode;
  contributors: string[];
  message?: string;
  /** Set when this run received and wrote the new shares. */
  delivered?: { dir: string; files: WrittenFile[] };
  /** The person ended the share prompt; progress and nonce were read again from the server after it. */
  interrupted?: Interrupted;
}

export type RekeyEvent =
  | { kind: "attempt"; report: RekeyReport; resumed: boolean }
  | { kind: "delivered"; report: RekeyReport }
  | {
      kind: "share";
      phase: RekeyPhase;
      share: KeyShare;
      outcome: QuorumOutcome;
      progress: number;
      required: number;
      message?: string;
    };

/**
 * Reads the rekey state (and the API serving it) without changing anything.
 * @throws EndpointUnavailableError, SealkeeperError (sealed, exit 2), VaultHttpError, VaultConnectionError.
 */
export async function readRekeyStatus(
  client: VaultClient,
  preference: EndpointPreference = "auto",
): Promise<{ kind: ShareKind; endpoint: QuorumEndpoint; status: RekeyStatus; verify?: RekeyVerifyStatus }> {
  const kind = await observeKind(client);
  const { endpoint, status } = await detectQuorumEndpoint<RekeyStatus>(client, rekeyEndpoints(kind), preference);
  let verify: RekeyVerifyStatus | undefined;
  if (status.started && status.verification_nonce) {
    verify = await RekeyApi.on(client, endpoint).verifyStatus();
  }
  return { kind, endpoint, status, verify };
}

/**
 * Cancels the rekey in progress (Vault 1.21 wants the attempt's nonce in the DELETE body; it reads it first).
 * Returns whether one was running and whether it had already handed out new shares (then void: the old ones stay).
 */
export async function cancelRekey(
  client: VaultClient,
  opts: { endpoint?: EndpointPreference; transcript?: Transcript } = {},
): Promise<{ wasRunning: boolean; nonce: string; progress: number; required: number; newSharesVoid: boolean }> {
  const { endpoint, status } = await readRekeyStatus(client, opts.endpoint);
  await RekeyApi.on(client, endpoint).cancel(status.nonce);
  opts.transcript?.append({
    action: "rekey-cancel",
    node: client.address,
    nonce: status.nonce || undefined,
    progress: status.progress,
    threshold: status.required,
    detail: status.started ? (status.verification_nonce ? "cancelled during verification" : "cancelled") : "none",
  });
  return {
    wasRunning: status.started,
    nonce: status.nonce,
    progress: status.progress,
    required: status.required,
    newSharesVoid: Boolean(status.verification_nonce),
  };
}

interface Prepared {
  operators: DeliveryOperator[];
  sealMode: SealMode;
}

async function prepareDelivery(
  config: RekeyConfig,
  opts: RekeyOptions,
  server?: { n: number; t: number; fingerprints: string[] },
): Promise<Prepared> {
  checkSharesAndThreshold(config.shares, config.threshold);
  checkOperatorCount(config.operators, config.shares);
  if (!opts.store) throw new UsageError("say where the new shares go (--out)");
  const operators = await loadOperators(config.operators, opts.cwd);
  const allPgp = operators.every((o) => o.recipient.serverPgpKeyB64 !== undefined);
  const wanted = config.sealShares ?? "auto";
  let sealMode: SealMode;
  if (server) {
    if (server.n !== config.shares || server.t !== config.threshold) {
      throw new UsageError(
        `the rekey in progress makes ${server.t} of ${server.n} shares, not ${config.threshold} of ${config.shares}: give the same --shares, --threshold and --operator as when it started`,
      );
    }
    sealMode = server.fingerprints.length > 0 ? "server" : "client";
    if (sealMode === "server") {
      operators.forEach((op, i) => {
        const want = server.fingerprints[i] ?? "";
        if (op.recipient.fingerprint.toLowerCase() !== want.toLowerCase()) {
          throw new UsageError(
            `operator ${op.name} has key ${op.recipient.fingerprint} but the rekey in progress encrypts share ${i + 1} to ${want}: give the operators in the same order as when it started`,
          );
        }
      });
    }
  } else {
    if (wanted === "server" && !allPgp) {
      const other = operators.find((o) => o.recipient.serverPgpKeyB64 === undefined)!;
      throw new UsageError(
        `--seal-shares server needs pgp recipients only; operator ${other.name} is ${other.recipient.type}`,
      );
    }
    sealMode = wanted === "client" || !allPgp ? "client" : "server";
  }
  if (sealMode === "client") await probeRecipients(operators.map((o) => o.recipient));
  await opts.store.checkWritable();
  return { operators, sealMode };
}

/** What a run does, given the server's state and the mode asked for. */
export type RekeyStart =
  | { step: "start" }
  | { step: "resume-update" }
  | { step: "verify" }
  | {
      step: "refuse";
      reason: "in-progress" | "in-verification" | "nothing-to-resume" | "nothing-to-verify" | "still-collecting-old";
    };

/** The first transition of the rekey state machine: pure, from the server's status and the mode. */
export function resolveStart(status: Pick<RekeyStatus, "started" | "verification_nonce">, mode: RekeyMode): RekeyStart {
  if (mode === "verify") {
    if (!status.started) return { step: "refuse", reason: "nothing-to-verify" };
    if (!status.verification_nonce) return { step: "refuse", reason: "still-collecting-old" };
    return { step: "verify" };
  }
  if (status.started) {
    if (mode === "start") return { step: "refuse", reason: "in-progress" };
    if (status.verification_nonce) return { step: "refuse", reason: "in-verification" };
    return { step: "resume-update" };
  }
  if (mode === "resume") return { step: "refuse", reason: "nothing-to-resume" };
  return { step: "start" };
}

/** The error a refused start throws, saying what runs and what to do. */
function refusal(
  reason: Extract<RekeyStart, { step: "refuse" }>["reason"],
  status: RekeyStatus,
  name: string,
  address: string,
) {
  const verifyHint =
    "the new holders verify with sealkeeper rekey --verify, or cancel it with --cancel (the old shares stay valid)";
  const what = `a ${name} is already in progress on ${address} (nonce ${status.nonce}, ${status.verification_nonce ? "new shares handed out, waiting for verification" : `old shares ${status.progress}/${status.required}`}, new ${status.t} of ${status.n})`;
  switch (reason) {
    case "nothing-to-verify":
      return new UsageError(`no ${name} is in progress on ${address}: nothing to verify`);
    case "still-collecting-old":
      return new UsageError(
        `the ${name} on ${address} is still collecting OLD shares (${status.progress}/${status.required}): nothing to verify yet`,
        { hint: "give the old shares with sealkeeper rekey --resume first" },
      );
    case "in-progress":
      return new AttemptInProgressError(
        what,
        status.verification_nonce
          ? verifyHint
          : "continue it with --resume (same --shares/--threshold/--operator), or cancel it with --cancel",
      );
    case "in-verification":
      return new UsageError(`${what}: the old-share phase is over`, { hint: verifyHint });
    case "nothing-to-resume":
      return new UsageError(`no ${name} is in progress on ${address}: nothing to resume`, {
        hint: "start one without --resume",
      });
  }
}

/**
 * Runs one rekey ceremony step: start (or resume) and collect OLD shares, write the new shares as they arrive, and
 * (mode verify, or continueToVerify) collect NEW shares until the server switches keys. The states: resolveStart
 * picks the first phase; the update phase ends with the new shares delivered (then verify, or done); the verify
 * phase ends with the switch. Each phase is one run of the quorum engine.
 * Share faults (duplicate, wrong nonce, rejected set, node sealed or gone) end up in the report, not as exceptions.
 * @throws AttemptInProgressError (mode start while one runs), UsageError (bad config, nothing to resume or verify,
 *   a resume whose config differs from the server's), StoreError (output directory), EndpointUnavailableError,
 *   SharesRescuedError (the new shares could not be written: they are in a rescue bundle), VaultHttpError /
 *   VaultConnectionError before anything was started.
 */
export async function runRekey(opts: RekeyOptions): Promise<RekeyReport> {
  const { client } = opts;
  const log = opts.log ?? (() => {});
  const { kind, endpoint, status, verify } = await readRekeyStatus(client, opts.endpoint);
  const api = RekeyApi.on(client, endpoint);
  const name = kind === "unseal" ? "rekey" : "recovery-key rekey";

  const decision = resolveStart(status, opts.mode);
  if (decision.step === "refuse") throw refusal(decision.reason, status, name, client.address);
  let prepared: Prepared | undefined;
  let current = status;
  let doneAtStart: RekeyUpdateDone | undefined;
  if (decision.step === "resume-update") {
    if (!opts.config) throw new UsageError("--resume needs the same --shares, --threshold and --operator flags");
    prepared = await prepareDelivery(opts.config, opts, {
      n: status.t === 0 ? opts.config.shares : status.n,
      t: status.t === 0 ? opts.config.threshold : status.t,
      fingerprints: status.pgp_fingerprints ?? [],
    });
  } else if (decision.step === "start") {
    if (!opts.config) throw new UsageError("say what the new shares are: --shares, --threshold and --operator");
    prepared = await prepareDelivery(opts.config, opts);
    log(
      `pre-flight ok: ${client.address} (${kind} shares via /v1/${endpoint.base}); ${prepared.operators.length} recipients checked; ${opts.store!.dir} is writable; new ${opts.config.threshold} of ${opts.config.shares}, sealed by the ${prepared.sealMode}`,
    );
    const started = await startRekey(api, opts.config, prepared);
    if (isRekeyDone(started)) {
      // OpenBao rotating recovery keys of a cluster initialised with none: the new shares come with the init answer
      doneAtStart = started;
      current = {
        ...status,
        started: true,
        nonce: started.nonce ?? "",
        t: opts.config.threshold,
        n: opts.config.shares,
      };
    } else {
      current = started;
    }
  }
  const phase: RekeyPhase = decision.step === "verify" ? "verify" : "update";
  const resumed = decision.step !== "start";

  const report: RekeyReport = {
    address: client.address,
    endpoint,
    kind,
    phase,
    state: "in-progress",
    nonce: phase === "verify" ? (verify?.nonce ?? current.verification_nonce ?? "") : current.nonce,
    progress: phase === "verify" ? (verify?.progress ?? 0) : current.progress,
    required: phase === "verify" ? (verify?.t ?? current.t) : current.required,
    newShares: current.n,
    newThreshold: current.t,
    verificationRequired: Boolean(current.verification_required),
    sealMode: prepared?.sealMode,
    contributors: [],
  };
  opts.transcript?.append({
    action: `rekey-${phase === "verify" ? "verify-" : ""}${resumed ? "resume" : "start"}`,
    node: client.address,
    nonce: report.nonce,
    progress: report.progress,
    threshold: report.required,
    detail: `${kind} shares, new ${report.newThreshold}/${report.newShares}, verification ${report.verificationRequired ? "required" : "off"}, via /v1/${endpoint.base}`,
  });
  opts.onEvent?.({ kind: "attempt", report: { ...report }, resumed });

  let verifyNow = phase === "verify";
  if (phase === "update") {
    const critical: Critical = {};
    try {
      const done = doneAtStart ?? (await collectShares(api, report, opts, opts.nonce ?? report.nonce, name, critical));
      if (done) {
        try {
          await deliverRekeyShares(done, report, prepared!, opts);
        } catch (err) {
          if (err instanceof SharesRescuedError && err.bundlePath) notePendingRescue(critical.record, err.bundlePath);
          throw err;
        }
        settlePending(critical.record);
        verifyNow = report.state === "in-progress" && Boolean(opts.continueToVerify);
        if (verifyNow && opts.beforeVerify) verifyNow = await opts.beforeVerify({ ...report });
      }
    } finally {
      critical.leave?.();
    }
  }
  if (verifyNow) await collectShares(api, report, opts, opts.nonce ?? report.nonce, name, {});

  if (report.interrupted && report.state === "in-progress") await rereadAfterInterrupt(api, report);
  if (report.state === "in-progress" && !report.message) {
    report.message =
      report.phase === "update"
        ? `waiting for ${report.required - report.progress} more OLD share(s): continue with --resume, or cancel with --cancel`
        : `waiting for ${report.required - report.progress} more NEW share(s): continue with --verify, or cancel with --cancel (the old shares stay valid)`;
  }
  opts.transcript?.append({
    action: "rekey-end",
    node: client.address,
    nonce: report.nonce,
    progress: report.progress,
    threshold: report.required,
    detail: `${report.phase} ${report.state}`,
  });
  return report;
}

/**
 * After an interrupted prompt, what the server holds now (another run may have given shares meanwhile), in the
 * report: the phase, nonce and progress as read. A node that cannot be read keeps what this run last saw.
 */
async function rereadAfterInterrupt(api: RekeyApi, report: RekeyReport): Promise<void> {
  const now = await api.status().catch(() => undefined);
  if (!now) return;
  if (!now.started) {
    report.state = "cancelled";
    report.message = "the server holds no rekey any more (cancelled, or the node sealed or restarted)";
    return;
  }
  if (now.verification_nonce) {
    const v = await api.verifyStatus().catch(() => undefined);
    report.phase = "verify";
    report.nonce = v?.nonce ?? now.verification_nonce;
    report.progress = v?.progress ?? report.progress;
    report.required = v?.t ?? report.newThreshold;
  } else {
    report.nonce = now.nonce;
    report.progress = now.progress;
    report.required = now.required;
  }
}

/** PUT init: starts the attempt with the new share count, threshold, and the pgp keys when the server seals. */
function startRekey(api: RekeyApi, config: RekeyConfig, prepared: Prepared) {
  return api.start({
    secret_shares: config.shares,
    secret_threshold: config.threshold,
    require_verification: config.requireVerification ?? true,
    ...(prepared.sealMode === "server"
      ? { pgp_keys: prepared.operators.map((o) => o.recipient.serverPgpKeyB64!) }
      : {}),
  });
}

/**
 * The irreversible step of the update phase: the share that reaches the threshold makes the server generate the new
 * shares, and its answer is their only copy (delivered at once by deliverRekeyShares).
 */
export function submitOldShare(
  api: RekeyApi,
  share: KeyShare,
  nonce: string,
  completing: boolean,
  onWaiting?: (waitedMs: number) => void,
) {
  // the answer to the completing share is the only copy of the new shares: no deadline once sent
  return api.update({ key: share.hex, nonce }, completing ? { onWaiting } : undefined);
}

/** The critical section of the update phase: entered with the share that may complete it, left once delivered. */
interface Critical {
  leave?: () => void;
  /** The pending record written before the completing share (settled once the new shares are written). */
  record?: string;
  /** Set when the connection was lost after the completing share was sent: what the server says happened. */
  lost?: string;
}

/** The irreversible step of the verify phase: the share that completes verification switches the keys. */
export function submitNewShare(api: RekeyApi, share: KeyShare, nonce: string) {
  return api.verify({ key: share.hex, nonce });
}

/**
 * One phase (report.phase) as a run of the quorum engine on the one node. Returns the server's answer with the new
 * shares when the update phase completed.
 */
async function collectShares(
  api: RekeyApi,
  report: RekeyReport,
  opts: RekeyOptions,
  firstNonce: string,
  name: string,
  critical: Critical,
): Promise<RekeyUpdateDone | undefined> {
  const phase = report.phase;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const node = newNode(report.address, report.progress, report.required, report.nonce);
  const notes: DescribeNotes = {};
  // the operators' --nonce is checked on the phase they confirmed; a verification this run entered uses the server's
  const nonceFor = () =>
    (phase === "update" || opts.mode === "verify" ? opts.nonce : undefined) ?? node.nonce ?? firstNonce;
  let done: RekeyUpdateDone | undefined;
  /**
   * Verify phase: the NEW shares this run had counted in the current verification. A repeat is never sent: OpenBao
   * 2.6.2's /sys/rotate/{root,recovery}/verify does not refuse a share it already has (vault/rotate.go VerifyRotation looks for it
   * among the OLD shares, which are gone by then), it counts it, and at the threshold the set does not combine
   * ("duplicate part detected"): the server restarts verification under a new nonce. Vault refuses a repeat (400).
   */
  const counted = new Map<string, KeyShare>();
  const verifyOne = async (share: KeyShare): Promise<QuorumAnswer> => {
    if (counted.has(share.fingerprint)) {
      notes.notSent = true;
      return { progress: node.progress, complete: false };
    }
    notes.notSent = false;
    const before = node.progress;
    try {
      const body = await submitNewShare(api, share, nonceFor());
      counted.set(share.fingerprint, share);
      return body.complete
        ? { progress: node.required, complete: true }
        : { progress: body.progress ?? node.progress + 1, complete: false };
    } catch (err) {
      const failure = classifyFailure(err);
      if (failure.outcome !== "rejected-set") throw err;
      // A failed verification rotates the nonce (both servers): read the new one to carry on.
      const v = await api.verifyStatus();
      node.nonce = v.nonce;
      const ours = [...counted.values(), share];
      counted.clear();
      // A share repeated from an earlier run (the server had more shares than this run gave): nothing about the new
      // shares is wrong, only the count was. Give this run's shares again under the new nonce, so only the earlier
      // runs' holders need to come back; never when the operators pinned the old nonce (--nonce), and never what could
      // reach the threshold again (ours.length < required: the repeat came from before this run).
      const pinned = opts.mode === "verify" && opts.nonce !== undefined;
      if (!/duplicate part/i.test(failure.text) || pinned || before < ours.length || ours.length >= node.required) {
        throw err;
      }
      let progress = 0;
      for (const s of ours) {
        const body = await submitNewShare(api, s, v.nonce);
        counted.set(s.fingerprint, s);
        progress = body.progress ?? progress + 1;
      }
      node.contributors = ours.map((s) => s.operator ?? s.origin);
      notes.repeat = failure.text;
      return { progress, nonce: v.nonce, complete: false, outcome: "repeat-reset" };
    }
  };
  const run = await runQuorum({
    targets: [
      {
        node,
        submit: (share) => provenGone(api, report.address, () => submitPhase(share)),
      },
    ],
    source: opts.source,
    onRefused: (share, reason) =>
      log(`share from ${share.operator ?? share.origin} [${share.fingerprint}]: refused: ${reason}`),
    describe: describeFor(report, critical, notes),
    prompt: ([n]) => ({
      progressLine: `${report.address} ${name}: ${phase === "update" ? "OLD" : "NEW"} shares ${n!.progress}/${n!.required} (nonce ${n!.nonce ?? report.nonce})`,
      remaining: n!.required - n!.progress,
    }),
    onShare,
  });
  report.interrupted = interruptedOf(run);
  return done;

  async function submitPhase(share: KeyShare): Promise<QuorumAnswer> {
    if (phase === "update") {
      // The share that may complete the old-share phase makes the server hand out the only copy of the new
      // shares: from sending it until they are written, signals are deferred and the answer has no deadline.
      if (!critical.leave && node.required - node.progress <= 1) {
        critical.leave = enterCriticalSection({
          doing: `the completing share of the rekey of ${report.address} is sent or the new shares are being written`,
          wouldLose: "the only copy of the new shares",
          say: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
        });
        // durable before the share goes out: if its answer is lost, the next run on this machine can tell
        critical.record = recordPending(opts.pendingDir, {
          ceremony: "rekey",
          node: report.address,
          out: opts.store!.dir,
          transcript: opts.transcript?.path,
          nonce: report.nonce,
          verification: report.verificationRequired,
        }).path;
      }
      const completing = critical.leave !== undefined;
      const leave = () => {
        critical.leave?.();
        critical.leave = undefined;
        settlePending(critical.record);
        critical.record = undefined;
      };
      try {
        if (completing) {
          log(
            `the completing share goes to ${report.address}: waiting for its answer with no time limit (it is the only copy of the new shares)`,
          );
        }
        const body = await submitOldShare(api, share, nonceFor(), completing, (ms) =>
          log(`still waiting for ${report.address} to answer the completing share (${Math.round(ms / 1000)} s)`),
        );
        if (isRekeyDone(body)) {
          done = body;
          return { progress: node.required, complete: true };
        }
        leave();
        return { progress: body.progress, complete: false };
      } catch (err) {
        if (completing && err instanceof VaultConnectionError && !err.requestSent) {
          // refused, unreachable, redirected: the share never reached a server that could act on it
          critical.lost = `the completing share was not processed (${err.message}): nothing was handed out and the rekey on ${report.address} is as it was (OLD shares ${node.progress}/${node.required}); when the node answers, continue with --resume or cancel with --cancel`;
          leave();
        } else if (completing && err instanceof VaultConnectionError) {
          // the server may have handed out the new shares: ask it, and keep the record for the next run
          critical.lost = await explainLostRekeyAnswer(api, report, err);
          opts.transcript?.append({
            action: "rekey-answer-lost",
            node: report.address,
            nonce: report.nonce,
            detail: err.reason,
          });
          critical.leave?.();
          critical.leave = undefined;
        } else leave();
        throw err;
      }
    }
    return verifyOne(share);
  }

  function onShare(share: KeyShare, [result]: ShareResult[]): void {
    const outcome = result!.outcome;
    report.progress = node.progress;
    report.contributors = node.contributors;
    report.nonce = node.nonce ?? report.nonce;
    report.message = node.message;
    if (node.state === "complete" && phase === "verify") report.state = "complete";
    if (node.state === "stopped") report.state = node.last === "gone" ? "cancelled" : "failed";
    opts.transcript?.append({
      action: phase === "verify" ? "rekey-verify-share" : "rekey-share",
      node: report.address,
      operator: share.operator,
      shareFingerprint: share.fingerprint,
      nonce: report.nonce,
      progress: report.progress,
      threshold: report.required,
      detail: outcome,
    });
    opts.onEvent?.({
      kind: "share",
      phase,
      share,
      outcome,
      progress: report.progress,
      required: report.required,
      message: report.message,
    });
  }
}

/**
 * "No rekey in progress" is taken for "gone" only when the node's own status agrees: a node whose status still shows a
 * rekey (OpenBao 2.6.2 through a standby: the verification failed "node is not the leader" and the active node restarted
 * it under a new nonce) did not lose it, and saying "the new files are void" would be false.
 */
async function provenGone<T>(api: RekeyApi, address: string, submit: () => Promise<T>): Promise<T> {
  try {
    return await submit();
  } catch (err) {
    if (!(err instanceof SealkeeperError) || classifyFailure(err).outcome !== "gone") throw err;
    const now = await api.status().catch(() => undefined);
    if (!now?.started) throw err;
    throw new SealkeeperError(
      `${address} answered "${classifyFailure(err).text}", yet its status shows a rekey in progress (nonce ${now.nonce}, ` +
        `${now.verification_nonce ? "in verification" : `old shares ${now.progress}/${now.required}`}): it is not gone; ` +
        `see sealkeeper rekey --status -a ${address}`,
      { cause: err, exitCode: 2 },
    );
  }
}

/** The server's answer is the only copy of the new shares: seal and write them before anything else happens. */
async function deliverRekeyShares(
  done: RekeyUpdateDone,
  report: RekeyReport,
  prepared: Prepared,
  opts: RekeyOptions,
): Promise<void> {
  const delivered = await deliverShares(
    {
      ceremony: "rekey",
      node: report.address,
      kind: report.kind,
      threshold: report.newThreshold,
      shares: report.newShares,
      operators: prepared.operators,
      sealMode: prepared.sealMode,
      keys: done.keys,
      keysB64: done.keys_base64,
      serverDid: done.verification_required
        ? "the server handed out the new shares (not in effect until verified: --cancel keeps the old ones)"
        : "the rekey WAS done (the new shares are in effect)",
    },
    {
      store: opts.store!,
      transcript: opts.transcript,
      rescueDirs: opts.rescueDirs,
      beforeWrite: opts.afterServerAnswered,
    },
  );
  report.delivered = { dir: opts.store!.dir, files: delivered.files };
  if (done.verification_required && done.verification_nonce) {
    report.phase = "verify";
    report.nonce = done.verification_nonce;
    report.progress = 0;
    report.required = report.newThreshold;
    report.contributors = [];
    report.message = `new shares written to ${opts.store!.dir}; nothing has changed yet: the old shares stay valid until ${report.newThreshold} of the NEW shares are verified (sealkeeper rekey --verify)`;
  } else {
    report.state = "complete";
    report.message = `the new shares in ${opts.store!.dir} are in effect now; the old shares no longer work`;
  }
  opts.onEvent?.({ kind: "delivered", report: { ...report } });
}

/**
 * The connection died after the completing OLD share was sent: what the server did with it, from its rekey state
 * (asked for a few seconds: it may still be working), in words for the operator.
 */
async function explainLostRekeyAnswer(api: RekeyApi, report: RekeyReport, err: VaultConnectionError): Promise<string> {
  const lostAt = `the connection to ${report.address} was lost after the completing share was sent (${err.reason})`;
  let now: RekeyStatus | undefined;
  for (let i = 0; i < 20; i++) {
    now = await api.status().catch(() => undefined);
    if (now && !(now.started && !now.verification_nonce && now.progress > 0 && now.progress < now.required)) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (!now) {
    return `${lostAt}, and the node cannot be asked now what it did: run sealkeeper rekey --status against it (it says what to do)`;
  }
  if (now.started && now.verification_nonce) {
    return (
      `${lostAt}; the server handed out the new shares, but its answer never arrived: they exist nowhere. They are ` +
      "void until verified, so nothing is lost: the OLD shares stay valid. Cancel this rekey with sealkeeper " +
      "rekey --cancel and start again"
    );
  }
  if (now.started) {
    return `${lostAt}; the node still collects OLD shares (${now.progress}/${now.required}): nothing was handed out; continue with --resume or cancel with --cancel`;
  }
  return report.verificationRequired
    ? `${lostAt}; no rekey is in progress on the node any more (cancelled, or the node sealed): nothing took effect, the OLD shares stay valid`
    : `${lostAt}; the rekey ran without verification and is no longer in progress: it most likely completed, so the new shares are in force and their only copy never arrived, and the OLD shares no longer work. Nobody can unseal this cluster after its next seal or restart: keep every node running and unsealed, and move its data to a new cluster`;
}

/** What the verify adapter knows about the last share beyond its outcome. */
interface DescribeNotes {
  /** The share was a repeat within this run: not sent to the server. */
  notSent?: boolean;
  /** repeat-reset: the server's text for the failed combination. */
  repeat?: string;
}

/** This ceremony's words for the engine's outcomes. */
function describeFor(report: RekeyReport, critical: Critical = {}, notes: DescribeNotes = {}): Describe {
  return (outcome, { node, who, failure, set }) => {
    if (outcome === "node-down" && critical.lost) return critical.lost;
    const counted = set ? ` (${describeSet(set)})` : "";
    const address = report.address;
    const voidNote =
      report.phase === "verify" || report.delivered
        ? " The rekey never took effect: the OLD shares remain the valid ones and the new files are void."
        : "";
    switch (outcome) {
      case "accepted":
        return undefined;
      case "complete":
        return report.phase === "verify"
          ? "verified: the new shares are in effect now; the old shares no longer work"
          : undefined;
      case "node-down":
        return `${address} stopped answering (${failure?.text}); when it is back, check with --status.${voidNote}`;
      case "sealed":
        return `${address} was sealed during the ceremony, which abandons the rekey: unseal it with the shares in use before this rekey, and start again.${voidNote}`;
      case "duplicate":
        return notes.notSent
          ? `duplicate share from ${who}: this run already gave it, so it was not sent again (progress stays ${node.progress}/${node.required}); the next operator may continue`
          : `duplicate share from ${who}: the server already has it in this phase (progress stays ${node.progress}/${node.required}); the next operator may continue`;
      case "repeat-reset":
        return `the share from ${who} repeats one the server had already counted in this verification (given in an earlier run): the server did not refuse it (OpenBao counts a repeated NEW share), so the shares did not combine (${notes.repeat}) and it restarted verification with a new nonce ${node.nonce}. Nothing changed: the old shares stay in effect and the new share files stay valid. sealkeeper gave this run's ${node.contributors.length} share(s) again (${node.contributors.join(", ")}): ${node.progress}/${node.required}; each holder who gave a share before this run gives it again, once`;
      case "wrong-nonce":
        return `wrong nonce: the ${report.phase === "verify" ? "verification" : "rekey"} on ${address} is not the one given; nothing was counted (leave out --nonce to continue the current one, or --cancel)`;
      case "gone":
        return `the rekey is gone from ${address} (cancelled, or the node sealed or restarted).${voidNote}`;
      case "rejected-set":
        return report.phase === "verify"
          ? /duplicate part/i.test(failure?.text ?? "")
            ? `the NEW shares counted include the same share twice (or two shares with the same index): the server did not refuse the repeat when it was given (OpenBao counts a repeated NEW share), so they did not combine (${failure?.text}); it restarted verification with a new nonce ${node.nonce ?? ""}: progress 0/${node.required}. Nothing changed: the old shares stay in effect and the new share files stay valid; ${node.required} holders give their NEW shares again, each once`
            : `the NEW shares counted${counted} do not combine to the new key: one of them is wrong (or an old one); the server restarted verification with a new nonce (${failure?.text})`
          : `the OLD shares counted${counted} do not combine to the current key: one of them is wrong or from another cluster; the server reset the progress to 0 and keeps the rekey open (${failure?.text})`;
      case "already-updated":
        return "the old-share phase is already over: the new holders verify with sealkeeper rekey --verify";
      default:
        return `${address} refused the share from ${who}: ${failure?.text}`;
    }
  };
}

async function observeKind(client: VaultClient): Promise<ShareKind> {
  const s = await client.sealStatus();
  if (!s.initialized) throw new UsageError(`${client.address} is not initialised: there is nothing to rekey`);
  if (s.sealed) {
    throw new SealkeeperError(`${client.address} is sealed: rekey needs an unsealed node`, {
      exitCode: 2,
      hint: "unseal it first (sealkeeper unseal)",
    });
  }
  // Under auto-unseal the shares people hold are recovery shares: rekey those.
  return s.type === "shamir" ? "unseal" : "recovery";
}
