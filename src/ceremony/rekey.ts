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
import { describeError, SealkeeperError, UsageError, VaultConnectionError, VaultHttpError } from "../errors.js";
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
} from "./deliver-shares.js";
import { checkSharesAndThreshold } from "./init.js";
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
  transcript?: Transcript;
  onEvent?: (e: RekeyEvent) => void;
  log?: (line: string) => void;
  rescueDirs?: string[];
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
}

export type RekeyEvent =
  | { kind: "attempt"; report: RekeyReport; resumed: boolean }
  | { kind: "delivered"; report: RekeyReport }
  | {
      kind: "share";
      phase: RekeyPhase;
      share: KeyShare;
      outcome: string;
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

/**
 * Runs one rekey ceremony step: start (or resume) and collect OLD shares, write the new shares as they arrive, and
 * (mode verify, or continueToVerify) collect NEW shares until the server switches keys.
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

  let prepared: Prepared | undefined;
  let current = status;
  let phase: RekeyPhase = "update";
  let resumed = false;
  if (opts.mode === "verify") {
    if (!status.started) throw new UsageError(`no ${name} is in progress on ${client.address}: nothing to verify`);
    if (!status.verification_nonce) {
      throw new UsageError(
        `the ${name} on ${client.address} is still collecting OLD shares (${status.progress}/${status.required}): nothing to verify yet`,
        { hint: "give the old shares with sealkeeper rekey --resume first" },
      );
    }
    phase = "verify";
    resumed = true;
  } else if (status.started) {
    const what = `a ${name} is already in progress on ${client.address} (nonce ${status.nonce}, ${status.verification_nonce ? "new shares handed out, waiting for verification" : `old shares ${status.progress}/${status.required}`}, new ${status.t} of ${status.n})`;
    if (opts.mode === "start") {
      throw new AttemptInProgressError(
        what,
        status.verification_nonce
          ? "the new holders verify with sealkeeper rekey --verify, or cancel it with --cancel (the old shares stay valid)"
          : "continue it with --resume (same --shares/--threshold/--operator), or cancel it with --cancel",
      );
    }
    if (status.verification_nonce) {
      throw new UsageError(`${what}: the old-share phase is over`, {
        hint: "the new holders verify with sealkeeper rekey --verify, or cancel it with --cancel (the old shares stay valid)",
      });
    }
    if (!opts.config) throw new UsageError("--resume needs the same --shares, --threshold and --operator flags");
    prepared = await prepareDelivery(opts.config, opts, {
      n: status.t === 0 ? opts.config.shares : status.n,
      t: status.t === 0 ? opts.config.threshold : status.t,
      fingerprints: status.pgp_fingerprints ?? [],
    });
    resumed = true;
  } else {
    if (opts.mode === "resume") {
      throw new UsageError(`no ${name} is in progress on ${client.address}: nothing to resume`, {
        hint: "start one without --resume",
      });
    }
    if (!opts.config) throw new UsageError("say what the new shares are: --shares, --threshold and --operator");
    prepared = await prepareDelivery(opts.config, opts);
    log(
      `pre-flight ok: ${client.address} (${kind} shares via /v1/${endpoint.base}); ${prepared.operators.length} recipients checked; ${opts.store!.dir} is writable; new ${opts.config.threshold} of ${opts.config.shares}, sealed by the ${prepared.sealMode}`,
    );
    const started = await api.start({
      secret_shares: opts.config.shares,
      secret_threshold: opts.config.threshold,
      require_verification: opts.config.requireVerification ?? true,
      ...(prepared.sealMode === "server"
        ? { pgp_keys: prepared.operators.map((o) => o.recipient.serverPgpKeyB64!) }
        : {}),
    });
    current = started as RekeyStatus;
  }

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

  const submitNonce = () => opts.nonce ?? report.nonce;
  let nonceOverride = true;
  while (report.state === "in-progress") {
    const share = await opts.source.next({
      progressLine: `${client.address} ${name}: ${report.phase === "update" ? "OLD" : "NEW"} shares ${report.progress}/${report.required} (nonce ${report.nonce})`,
      remaining: report.required - report.progress,
    });
    if (share === null) break;
    const who = share.operator ?? share.origin;
    const nonce = nonceOverride ? submitNonce() : report.nonce;
    let outcome: string;
    if (report.phase === "update") {
      // The share that may complete the old-share phase makes the server hand out the only copy of the new shares:
      // from sending it until they are written, signals are deferred and the answer has no client-side deadline.
      const leave =
        report.required - report.progress <= 1
          ? enterCriticalSection({
              doing: `the completing share of the rekey of ${client.address} is sent or the new shares are being written`,
              wouldLose: "the only copy of the new shares",
              say: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
            })
          : undefined;
      try {
        const r = await submitOld(api, report, share, nonce, who, leave !== undefined);
        outcome = r.outcome;
        if (r.done) {
          record(opts, report, share, outcome);
          // The server's answer is the only copy of the new shares: write them before anything else happens.
          const delivered = await deliverShares(
            {
              ceremony: "rekey",
              node: client.address,
              kind,
              threshold: report.newThreshold,
              shares: report.newShares,
              operators: prepared!.operators,
              sealMode: prepared!.sealMode,
              keys: r.done.keys,
              keysB64: r.done.keys_base64,
              serverDid: r.done.verification_required
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
          if (r.done.verification_required && r.done.verification_nonce) {
            report.phase = "verify";
            report.nonce = r.done.verification_nonce;
            report.progress = 0;
            report.required = report.newThreshold;
            report.contributors = [];
            nonceOverride = false;
            report.message = `new shares written to ${opts.store!.dir}; nothing has changed yet: the old shares stay valid until ${report.newThreshold} of the NEW shares are verified (sealkeeper rekey --verify)`;
            opts.onEvent?.({ kind: "delivered", report: { ...report } });
            if (!opts.continueToVerify) break;
            continue;
          }
          report.state = "complete";
          report.message = `the new shares in ${opts.store!.dir} are in effect now; the old shares no longer work`;
          opts.onEvent?.({ kind: "delivered", report: { ...report } });
          break;
        }
      } finally {
        leave?.();
      }
    } else {
      outcome = await submitNew(api, report, share, nonce, who);
    }
    record(opts, report, share, outcome);
  }

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

function record(opts: RekeyOptions, report: RekeyReport, share: KeyShare, outcome: string): void {
  opts.transcript?.append({
    action: report.phase === "verify" && outcome !== "complete-update" ? "rekey-verify-share" : "rekey-share",
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
    phase: outcome === "complete-update" ? "update" : report.phase,
    share,
    outcome,
    progress: report.progress,
    required: report.required,
    message: report.message,
  });
}

async function submitOld(
  api: RekeyApi,
  report: RekeyReport,
  share: KeyShare,
  nonce: string,
  who: string,
  completing = false,
): Promise<{ outcome: string; done?: RekeyUpdateDone }> {
  let body: RekeyStatus | RekeyUpdateDone;
  try {
    // the answer to the completing share is the only copy of the new shares: no deadline once sent
    body = await api.update({ key: share.hex, nonce }, completing ? {} : undefined);
  } catch (err) {
    return { outcome: interpretFailure(api.client, report, err, who) };
  }
  report.contributors.push(who);
  report.message = undefined;
  if (isRekeyDone(body)) {
    report.progress = report.required;
    return { outcome: "complete-update", done: body };
  }
  const st = body as RekeyStatus;
  report.progress = st.progress;
  return { outcome: "accepted" };
}

async function submitNew(
  api: RekeyApi,
  report: RekeyReport,
  share: KeyShare,
  nonce: string,
  who: string,
): Promise<string> {
  let body: RekeyVerifyStatus;
  try {
    body = await api.verify({ key: share.hex, nonce });
  } catch (err) {
    const outcome = interpretFailure(api.client, report, err, who);
    if (outcome === "rejected-set") {
      // Vault rotates the verification nonce after a failed verification: read the new one to carry on.
      try {
        const v = await api.verifyStatus();
        report.nonce = v.nonce;
        report.progress = v.progress ?? 0;
      } catch (readErr) {
        report.state = "failed";
        report.message = `${report.message}; reading the new verification nonce failed too (${describeError(readErr)})`;
      }
    }
    return outcome;
  }
  report.contributors.push(who);
  report.message = undefined;
  if (body.complete) {
    report.state = "complete";
    report.progress = report.required;
    report.message = `verified: the new shares are in effect now; the old shares no longer work`;
    return "complete";
  }
  report.progress = body.progress ?? report.progress + 1;
  return "accepted";
}

function interpretFailure(client: VaultClient, report: RekeyReport, err: unknown, who: string): string {
  const voidNote =
    report.phase === "verify" || report.delivered
      ? " The rekey never took effect: the OLD shares remain the valid ones and the new files are void."
      : "";
  if (err instanceof VaultConnectionError) {
    report.state = "failed";
    report.message = `${client.address} stopped answering (${describeError(err)}); when it is back, check with --status.${voidNote}`;
    return "node-down";
  }
  if (!(err instanceof VaultHttpError)) throw err;
  const text = err.errors.join("; ");
  if (err.status === 503 || /\bsealed\b/i.test(text)) {
    report.state = "failed";
    report.message = `${client.address} was sealed during the ceremony, which abandons the rekey: unseal it with the shares in use before this rekey, and start again.${voidNote}`;
    return "sealed";
  }
  if (/already been provided/i.test(text)) {
    report.message = `duplicate share from ${who}: the server already has it in this phase (progress stays ${report.progress}/${report.required}); the next operator may continue`;
    return "duplicate";
  }
  if (/incorrect nonce/i.test(text)) {
    report.state = "failed";
    report.message = `wrong nonce: the ${report.phase === "verify" ? "verification" : "rekey"} on ${client.address} is not the one given; nothing was counted (leave out --nonce to continue the current one, or --cancel)`;
    return "wrong-nonce";
  }
  if (/no (barrier |recovery )?(rekey|rotation)( verification)? in progress/i.test(text)) {
    report.state = "cancelled";
    report.message = `the rekey is gone from ${client.address} (cancelled, or the node sealed or restarted).${voidNote}`;
    return "gone";
  }
  if (/verification failed|failed to compute/i.test(text)) {
    report.progress = 0;
    report.contributors = [];
    report.message =
      report.phase === "verify"
        ? `the NEW shares given do not combine to the new key (a wrong share, or an old one); the server restarted verification with a new nonce (${text})`
        : `the OLD shares given do not combine to the current key (a wrong share, or one from another cluster); the server reset the progress to 0 and keeps the rekey open (${text})`;
    return "rejected-set";
  }
  if (/verification must be performed/i.test(text)) {
    report.state = "failed";
    report.message = "the old-share phase is already over: the new holders verify with sealkeeper rekey --verify";
    return "already-updated";
  }
  report.state = "failed";
  report.message = `${client.address} refused the share from ${who}: ${err.status} ${text}`;
  return "failed";
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
