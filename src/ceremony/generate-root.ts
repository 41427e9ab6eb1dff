/**
 * Break-glass root token generation: a quorum of unseal shares (recovery shares under auto-unseal) makes the server
 * mint a new root token, returned either XOR-ed with a one-time password (OTP) that only this process holds, or
 * encrypted by the server to a PGP key. The OTP never leaves memory, is never printed and never written; so an OTP
 * attempt can only be finished by the run that started it, while a PGP attempt can be resumed by any run.
 *
 * Vault: /sys/generate-root/{attempt,update}, unauthenticated. OpenBao >= 2.6: /sys/generate-root-token/*, with a
 * token; OpenBao >= 2.5.3 turns the unauthenticated pair off unless the listener says otherwise (quorum-endpoint.ts).
 */
import { describeError, SealkeeperError, UsageError, VaultConnectionError } from "../errors.js";
import { enterCriticalSection } from "../util/critical-section.js";
import type { VaultClient } from "../vault/client.js";
import { GENERATE_ROOT_ENDPOINTS, GenerateRootApi, type GenerateRootStatus } from "../vault/sys-generate-root.js";
import {
  AttemptInProgressError,
  detectQuorumEndpoint,
  type EndpointPreference,
  type QuorumEndpoint,
} from "./quorum-endpoint.js";

export { AttemptInProgressError } from "./quorum-endpoint.js";

import {
  type Describe,
  describeSet,
  type Interrupted,
  interruptedOf,
  newNode,
  type QuorumNode,
  type QuorumOutcome,
  runQuorum,
} from "./quorum.js";
import type { ShareSource } from "./share-source.js";
import type { Transcript } from "./transcript.js";
import type { KeyShare } from "./unseal-key.js";

export type { GenerateRootStatus } from "../vault/sys-generate-root.js";
export { GENERATE_ROOT_ENDPOINTS } from "../vault/sys-generate-root.js";

/** How the new token comes back. */
export type TokenDelivery =
  /** The server generates an OTP; the token is decoded here and returned in memory. */
  | { kind: "otp" }
  /** The server encrypts the token to this PGP key (standard base64 of the binary public key). */
  | { kind: "pgp"; pgpKeyB64: string; fingerprint: string };

export type GenerateRootState = "complete" | "in-progress" | "cancelled" | "failed";

export interface GenerateRootReport {
  address: string;
  endpoint: QuorumEndpoint;
  state: GenerateRootState;
  nonce: string;
  progress: number;
  required: number;
  /** The attempt was already running and this run resumed it. */
  resumed: boolean;
  /** "otp" or "pgp": how this attempt returns the token. */
  mode: "otp" | "pgp";
  pgpFingerprint?: string;
  /** Operators (or share origins) whose share counted, in order. */
  contributors: string[];
  /** What went wrong or what to do next, one line, no secret. */
  message?: string;
  /** OTP attempts, complete: the decoded token (in memory only; the caller seals it or prints it on request). */
  token?: string;
  /** PGP attempts, complete: the server-encrypted token (standard base64 of a binary OpenPGP message). */
  encryptedTokenB64?: string;
  /** The person ended the share prompt (an OTP attempt this run started is then cancelled, as at "stop here"). */
  interrupted?: Interrupted;
}

export type GenerateRootEvent =
  | { kind: "attempt"; report: GenerateRootReport }
  | { kind: "share"; share: KeyShare; outcome: ShareOutcome; progress: number; required: number; message?: string };

/** The engine's outcome union (quorum.ts). */
export type ShareOutcome = QuorumOutcome;

export interface GenerateRootOptions {
  client: VaultClient;
  source: ShareSource;
  /** Default: OTP. */
  delivery?: TokenDelivery;
  /** Continue an attempt already in progress (required to touch one; only PGP attempts can be resumed). */
  resume?: boolean;
  /** Submit shares under this nonce instead of the server's current one (the operators' confirmation of which
   *  attempt they contribute to; the server refuses a mismatch). */
  nonce?: string;
  endpoint?: EndpointPreference;
  transcript?: Transcript;
  onEvent?: (event: GenerateRootEvent) => void;
  /** Once complete, seals and writes the token: runs inside the critical section that began with the completing
   *  share (signals deferred until it is done, src/util/critical-section.ts). */
  afterComplete?: (report: GenerateRootReport) => Promise<void>;
  /** Where the critical section's one notice goes (default stderr). */
  log?: (line: string) => void;
}

/**
 * XOR-decodes an OTP-protected token as Vault's sdk/helper/roottoken.DecodeToken does for otp_length > 0:
 * token = XOR(base64 RawStd decode of encoded_token, UTF-8 bytes of otp). Padding is tolerated.
 * @throws UsageError when encoded_token is not base64 or its length differs from the OTP's (never shows either).
 */
export function decodeOtpToken(encodedToken: string, otp: string): string {
  const trimmed = encodedToken.trim();
  if (trimmed === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    throw new UsageError("the server's encoded token is not base64");
  }
  const bytes = Buffer.from(trimmed, "base64");
  const pad = Buffer.from(otp, "utf8");
  if (pad.length === 0) throw new UsageError("no one-time password to decode the token with");
  if (bytes.length !== pad.length) {
    throw new UsageError(
      `the encoded token is ${bytes.length} bytes but the one-time password is ${pad.length}: they do not belong together`,
    );
  }
  const out = Buffer.alloc(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! ^ pad[i]!;
  return out.toString("utf8");
}

/** The inverse of decodeOtpToken (what the server does): base64 RawStd of XOR(otp, token). For tests and vectors. */
export function encodeOtpToken(token: string, otp: string): string {
  const t = Buffer.from(token, "utf8");
  const p = Buffer.from(otp, "utf8");
  if (t.length !== p.length) throw new UsageError(`token is ${t.length} bytes but the otp is ${p.length}`);
  return Buffer.from(t.map((b, i) => b ^ p[i]!))
    .toString("base64")
    .replace(/=+$/, "");
}

/**
 * Reads the root generation status of a node and which API serves it. Changes nothing.
 * @throws EndpointUnavailableError, VaultHttpError (e.g. 503 sealed), VaultConnectionError.
 */
export async function readGenerateRootStatus(
  client: VaultClient,
  preference: EndpointPreference = "auto",
): Promise<{ endpoint: QuorumEndpoint; status: GenerateRootStatus }> {
  await assertUnsealed(client, "root generation");
  return detectQuorumEndpoint<GenerateRootStatus>(client, GENERATE_ROOT_ENDPOINTS, preference);
}

/**
 * Cancels the attempt in progress (DELETE attempt). Returns whether one was running.
 * @throws like readGenerateRootStatus.
 */
export async function cancelGenerateRoot(
  client: VaultClient,
  opts: { endpoint?: EndpointPreference; transcript?: Transcript } = {},
): Promise<{ wasRunning: boolean; nonce: string; progress: number; required: number; endpoint: QuorumEndpoint }> {
  const { endpoint, status } = await readGenerateRootStatus(client, opts.endpoint);
  await GenerateRootApi.on(client, endpoint).cancel();
  opts.transcript?.append({
    action: "generate-root-cancel",
    node: client.address,
    nonce: status.nonce || undefined,
    progress: status.progress,
    threshold: status.required,
    detail: status.started ? "cancelled" : "nothing to cancel",
  });
  return {
    wasRunning: status.started,
    nonce: status.nonce,
    progress: status.progress,
    required: status.required,
    endpoint,
  };
}

/**
 * Runs (or resumes) a root generation attempt until it completes or the source runs dry. Node faults, wrong nonces,
 * duplicates and rejected sets end up in the report (state + message), not as exceptions.
 * An OTP attempt this run started and could not finish is cancelled before returning: nobody else holds its OTP.
 * @throws AttemptInProgressError when an attempt runs and `resume` is not set (or it cannot be resumed);
 *   UsageError for --resume with nothing to resume or a PGP key that is not the attempt's;
 *   EndpointUnavailableError / VaultHttpError / VaultConnectionError before anything was started.
 */
export async function runGenerateRoot(opts: GenerateRootOptions): Promise<GenerateRootReport> {
  const { client } = opts;
  const delivery = opts.delivery ?? { kind: "otp" };
  const { endpoint, status } = await readGenerateRootStatus(client, opts.endpoint);
  const api = GenerateRootApi.on(client, endpoint);
  const emit = (e: GenerateRootEvent) => opts.onEvent?.(e);

  let otp: string | undefined;
  let current: GenerateRootStatus = status;
  let resumed = false;
  if (status.started) {
    const what = `a root generation attempt is already in progress on ${client.address} (nonce ${status.nonce}, progress ${status.progress}/${status.required}, ${status.pgp_fingerprint ? `token to PGP key ${status.pgp_fingerprint}` : "OTP"})`;
    if (!opts.resume) {
      throw new AttemptInProgressError(
        what,
        status.pgp_fingerprint
          ? "continue it with --resume (and the remaining shares), or cancel it with --cancel"
          : "its one-time password is held only by the run that started it: if that run is over, cancel it with --cancel and start again",
      );
    }
    if (!status.pgp_fingerprint) {
      throw new AttemptInProgressError(
        `${what}: it cannot be resumed from here`,
        "an OTP attempt can only be finished by the run that started it (the OTP never leaves it); cancel it with --cancel and start again",
      );
    }
    if (delivery.kind === "pgp" && !sameFingerprint(delivery.fingerprint, status.pgp_fingerprint)) {
      throw new UsageError(
        `the attempt in progress encrypts the token to PGP key ${status.pgp_fingerprint}, not to ${delivery.fingerprint}; nothing was submitted`,
        { hint: "resume without --pgp-key, or cancel it with --cancel" },
      );
    }
    resumed = true;
  } else {
    if (opts.resume) {
      throw new UsageError(`no root generation attempt is in progress on ${client.address}: nothing to resume`, {
        hint: "start one without --resume",
      });
    }
    const body = delivery.kind === "pgp" ? { pgp_key: delivery.pgpKeyB64 } : {};
    current = await api.start(body);
    if (delivery.kind === "otp") {
      otp = current.otp;
      // never keep it in the status object that may be logged or returned
      delete current.otp;
      if (!otp) {
        await api.cancel().catch(() => undefined);
        throw new SealkeeperError(
          `${client.address} started an OTP attempt but returned no one-time password; the attempt was cancelled`,
          { exitCode: 2 },
        );
      }
      if (current.otp_length !== undefined && current.otp_length !== otp.length) {
        await api.cancel().catch(() => undefined);
        throw new SealkeeperError(
          `${client.address} says otp_length ${current.otp_length} but sent a one-time password of another length; the attempt was cancelled`,
          { exitCode: 2 },
        );
      }
    }
  }

  const report: GenerateRootReport = {
    address: client.address,
    endpoint,
    state: "in-progress",
    nonce: current.nonce,
    progress: current.progress,
    required: current.required,
    resumed,
    mode: current.pgp_fingerprint ? "pgp" : "otp",
    pgpFingerprint: current.pgp_fingerprint || undefined,
    contributors: [],
  };
  opts.transcript?.append({
    action: resumed ? "generate-root-resume" : "generate-root-start",
    node: client.address,
    nonce: report.nonce,
    progress: report.progress,
    threshold: report.required,
    detail: `${report.mode}${report.pgpFingerprint ? ` ${report.pgpFingerprint}` : ""} via /v1/${endpoint.base}`,
  });
  emit({ kind: "attempt", report: { ...report } });

  const submitNonce = opts.nonce ?? report.nonce;
  let encoded: string | undefined;
  const node = newNode(client.address, report.progress, report.required, report.nonce);
  let leaveCritical: (() => void) | undefined;
  /** Set when the connection was lost after the completing share was sent and the server did mint the token. */
  let lost: string | undefined;
  const leave = () => {
    leaveCritical?.();
    leaveCritical = undefined;
  };
  try {
    const run = await runQuorum({
      targets: [
        {
          node,
          submit: async (share) => {
            // The share that may complete the attempt makes the server hand out the new root token, once: from
            // sending it until the token is sealed and written, signals are deferred and the answer has no deadline.
            if (!leaveCritical && node.required - node.progress <= 1) {
              leaveCritical = enterCriticalSection({
                doing: `the completing share of the root generation on ${client.address} is sent or the token is being written`,
                wouldLose: "the new root token (nobody else holds it)",
                say: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
              });
            }
            const completing = leaveCritical !== undefined;
            try {
              const say = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
              if (completing) {
                say(
                  `the completing share goes to ${client.address}: waiting for its answer with no time limit (it holds the new root token)`,
                );
              }
              const res = await submitGenerateRootShare(api, share, submitNonce, completing, (ms) =>
                say(`still waiting for ${client.address} to answer the completing share (${Math.round(ms / 1000)} s)`),
              );
              if (res.complete) encoded = res.encoded_token || res.encoded_root_token;
              else leave();
              return { progress: res.progress, required: res.required, complete: res.complete };
            } catch (err) {
              // only a share that reached the server can have minted a token (refused, redirected: it did not)
              if (completing && err instanceof VaultConnectionError && err.requestSent) {
                lost = await explainLostToken(api, client, err);
              }
              leave();
              throw err;
            }
          },
        },
      ],
      source: opts.source,
      onRefused: (share, reason) =>
        (opts.log ?? ((line: string) => process.stderr.write(`${line}\n`)))(
          `share from ${share.operator ?? share.origin} [${share.fingerprint}]: refused: ${reason}`,
        ),
      describe: (outcome, ctx) =>
        outcome === "node-down" && lost ? lost : describeFor(client.address, submitNonce)(outcome, ctx),
      prompt: ([n]) => ({
        progressLine: `${client.address} root generation ${n!.progress}/${n!.required} (nonce ${n!.nonce})`,
        remaining: n!.required - n!.progress,
      }),
      onShare: (share, [result]) => {
        Object.assign(report, {
          progress: node.progress,
          required: node.required,
          contributors: node.contributors,
          message: node.message,
        });
        report.state = stateOf(node);
        opts.transcript?.append({
          action: "generate-root-share",
          node: client.address,
          operator: share.operator,
          shareFingerprint: share.fingerprint,
          nonce: report.nonce,
          progress: report.progress,
          threshold: report.required,
          detail: result!.outcome,
        });
        emit({
          kind: "share",
          share,
          outcome: result!.outcome,
          progress: report.progress,
          required: report.required,
          message: report.message,
        });
      },
    });

    report.interrupted = interruptedOf(run);
    if (report.state === "complete" && encoded !== undefined) {
      if (report.mode === "otp") {
        if (!otp) throw new Error("an OTP attempt completed without its OTP (a bug)");
        report.token = decodeOtpToken(encoded, otp);
      } else {
        report.encryptedTokenB64 = encoded;
      }
    } else if (report.state === "complete") {
      report.state = "failed";
      report.message = "the server said complete but returned no encoded token";
    }

    if (lost) {
      // the attempt is over on the server (it minted the token): there is nothing left to cancel
      opts.transcript?.append({ action: "generate-root-answer-lost", node: client.address, nonce: report.nonce });
    } else if (report.state !== "complete" && otp !== undefined && report.state !== "cancelled") {
      // Nobody else holds this OTP: leaving the attempt open would only block the next one.
      try {
        await api.cancel();
        report.message = `${report.message ? `${report.message}; ` : ""}the OTP attempt was cancelled, as only this run held its one-time password: start again with the full quorum`;
        report.state = "cancelled";
      } catch (err) {
        report.message = `${report.message ? `${report.message}; ` : ""}could not cancel the unfinished OTP attempt (${describeError(err)}): cancel it with --cancel once the node answers`;
      }
    } else if (report.state === "in-progress") {
      report.message ??= `waiting for ${report.required - report.progress} more share(s): continue with --resume, or cancel with --cancel`;
    }
    opts.transcript?.append({
      action: "generate-root-end",
      node: client.address,
      nonce: report.nonce,
      progress: report.progress,
      threshold: report.required,
      detail: report.state,
    });
    otp = undefined;
    if (report.state === "complete") await opts.afterComplete?.(report);
    return report;
  } finally {
    leave();
  }
}

/**
 * The connection died after the completing share was sent. When the attempt is gone from the server, the server
 * minted the token and its answer (the encoded token) never arrived: say so; otherwise undefined (the share did not
 * count, and the usual node-down words and the OTP cancel apply).
 */
async function explainLostToken(
  api: GenerateRootApi,
  client: VaultClient,
  err: VaultConnectionError,
): Promise<string | undefined> {
  let now: GenerateRootStatus | undefined;
  for (let i = 0; i < 20 && now === undefined; i++) {
    now = await api.status().catch(() => undefined);
    if (now === undefined) await new Promise((r) => setTimeout(r, 500));
  }
  const lostAt = `the connection to ${client.address} was lost after the completing share was sent (${err.reason})`;
  if (now === undefined) {
    return `${lostAt}, and the node cannot be asked now whether it generated the token: check with --status; a new attempt needs the quorum again`;
  }
  if (now.started) return undefined;
  // the attempt is gone from a node that is still the active one: it minted the token (a Shamir node that restarted
  // would be sealed and not answer). A node that is no longer active may have lost the attempt with its leadership.
  const leader = await client.leader().catch(() => undefined);
  if (leader?.haEnabled && !leader.isSelf) {
    return (
      `${lostAt}; no attempt is open on the node any more, and ${client.address} is no longer the active node: ` +
      "either the server generated the token and its answer never arrived (then nobody holds that token), or the " +
      "attempt was lost with the change of active node (then none was generated). Nothing usable was lost either " +
      "way. Run sealkeeper root generate again with the quorum; once you hold a root token, LIST " +
      "auth/token/accessors shows whether an orphaned root token exists, to revoke by its accessor"
    );
  }
  return (
    `${lostAt}; the server generated a new root token, but its answer never arrived: nobody holds that token (it ` +
    "cannot be rebuilt from anything this run has), so nothing usable was lost, and no attempt is left open. " +
    "Run sealkeeper root generate again with the quorum; the orphaned token can be revoked by its accessor " +
    "(LIST auth/token/accessors lists them) once you hold a root token again"
  );
}

/**
 * The irreversible step of a root generation: the share that reaches the threshold makes the server mint the token,
 * and its answer is the only copy of the encoded token (sealed and written by the caller's delivery).
 */
export async function submitGenerateRootShare(
  api: GenerateRootApi,
  share: KeyShare,
  nonce: string,
  completing: boolean,
  onWaiting?: (waitedMs: number) => void,
): Promise<GenerateRootStatus> {
  // the answer to the completing share is the only copy of the token: no deadline once sent
  return api.update({ key: share.hex, nonce }, completing ? { onWaiting } : undefined);
}

function stateOf(node: QuorumNode): GenerateRootState {
  if (node.state === "complete") return "complete";
  if (node.state === "open") return "in-progress";
  return node.last === "gone" ? "cancelled" : "failed";
}

/** This ceremony's words for the engine's outcomes. */
function describeFor(address: string, nonce: string): Describe {
  return (outcome, { node, who, failure, set }) => {
    switch (outcome) {
      case "accepted":
      case "complete":
        return undefined;
      case "node-down":
        return `${address} stopped answering (${failure?.text}): when it is back, check with --status, then --resume (PGP attempts) or --cancel`;
      case "sealed":
        return `${address} was sealed during the ceremony: unseal it, then check with --status and --resume (PGP attempts) or --cancel`;
      case "duplicate":
        return `duplicate share from ${who}: the server already has it in this attempt (progress stays ${node.progress}/${node.required}); the next operator may continue`;
      case "wrong-nonce":
        return `wrong nonce: the attempt on ${address} is ${node.nonce ?? nonce}, not the nonce given; nothing was counted (--resume without --nonce continues it, --cancel ends it)`;
      case "gone":
        return `the attempt is gone from ${address} (cancelled by someone else, or the node restarted)`;
      case "rejected-set":
        return `the shares counted (${set ? describeSet(set) : "?"}) did not reconstruct the key: one of them is wrong or from another cluster; the server reset the progress to 0 and keeps the attempt open (${failure?.text})`;
      default:
        return `${address} refused the share from ${who}: ${failure?.text}`;
    }
  };
}

async function assertUnsealed(client: VaultClient, operation: string): Promise<void> {
  const s = await client.sealStatus();
  if (!s.initialized) throw new UsageError(`${client.address} is not initialised: there is nothing to ${operation}`);
  if (s.sealed) {
    throw new SealkeeperError(`${client.address} is sealed: ${operation} needs an unsealed node`, {
      exitCode: 2,
      hint: "unseal it first (sealkeeper unseal)",
    });
  }
}

function sameFingerprint(a: string, b: string): boolean {
  return a.replace(/\s/g, "").toLowerCase() === b.replace(/\s/g, "").toLowerCase();
}
