/**
 * The init ceremony: `operator init` hands out the only copy of the shares and the root token, once. Everything that
 * can be checked is checked BEFORE the irreversible call (node, recipients, output directory); after it, the response
 * is sealed in memory and written with the store's guarantees, and if anything fails the sealed material survives in
 * a rescue bundle (or on stderr). Plaintext shares stay in memory only, and only when the caller asks (a scripted
 * bootstrap that unseals right after init).
 */
import type { LoadedRecipient, OperatorSpec, RecipientSpec } from "../ciphers/types.js";
import {
  describeError,
  ExitCode,
  SealkeeperError,
  UsageError,
  VaultConnectionError,
  VaultHttpError,
} from "../errors.js";
import type { Manifest } from "../store/manifest.js";
import type { ShareStore, WrittenFile } from "../store/share-store.js";
import type { VaultClient } from "../vault/client.js";
import type { InitRequest, InitResponse } from "../vault/types.js";
import {
  checkOperatorCount,
  deliverShares,
  loadOperators,
  probeRecipients,
  type ShareKind,
  SharesRescuedError,
} from "./deliver-shares.js";
import type { Transcript } from "./transcript.js";
import type { KeyShare } from "./unseal-key.js";

export type { ShareKind } from "./deliver-shares.js";

export interface InitCeremonyConfig {
  shares: number;
  threshold: number;
  operators: OperatorSpec[];
  /** Where the root token goes: sealed to this recipient (always written as a file). */
  rootTokenRecipient?: RecipientSpec;
  /** Keep the plaintext root token in memory and return it (bootstrap revokes it later; --print-root-token). */
  keepRootToken?: boolean;
  /** server: Vault's pgp_keys (pgp only; plaintext never leaves the server). client: sealkeeper seals. auto: server
   *  when every recipient is pgp and plaintext shares are not kept, else client. */
  sealShares?: "auto" | "server" | "client";
  /** unseal or recovery shares; auto decides from the node's seal type. */
  kind?: "auto" | ShareKind;
  /** Return the plaintext shares (in memory) for an unseal right after init. Forces client sealing. */
  keepPlaintextShares?: boolean;
}

export interface InitCeremonyDeps {
  client: VaultClient;
  store: ShareStore;
  transcript?: Transcript;
  cwd: string;
  /** Progress lines for people (stderr). Never receives a secret. */
  log?: (line: string) => void;
  /** Test seam: runs after the server answered, before files are written (fault injection). */
  afterServerAnswered?: () => Promise<void> | void;
  /** Where a rescue bundle may go (default: $HOME, then the temp dir). */
  rescueDirs?: string[];
  /** The pending-ceremony journal's directory (src/ceremony/pending.ts); none: the transcript is the only record. */
  pendingDir?: string;
  /** How often a "still waiting" line is logged while the server works on the init (default 5 s). */
  waitingIntervalMs?: number;
}

export interface InitOutcome {
  kind: ShareKind;
  sealMode: "server" | "client";
  manifest: Manifest;
  dir: string;
  files: WrittenFile[];
  /** Only with keepPlaintextShares. */
  plaintextShares?: KeyShare[];
  /** Only with keepRootToken. */
  rootToken?: string;
}

interface PreparedInit {
  kind: ShareKind;
  sealMode: "server" | "client";
  operators: { name: string; recipient: LoadedRecipient }[];
  rootRecipient: LoadedRecipient | undefined;
  rootSealMode: "server" | "client";
  request: InitRequest;
}

/** Vault's rules for shares and threshold, with exact messages. */
export function checkSharesAndThreshold(shares: number, threshold: number, what = "shares"): void {
  const label = what === "shares" ? "" : "recovery ";
  if (!Number.isInteger(shares) || shares < 1 || shares > 255) {
    throw new UsageError(`${label}shares must be a whole number from 1 to 255, got ${shares}`);
  }
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > shares) {
    throw new UsageError(
      `${label}threshold must be a whole number from 1 to ${label}shares (${shares}), got ${threshold}`,
    );
  }
  if (shares > 1 && threshold < 2)
    throw new UsageError(`${label}threshold must be at least 2 when there is more than one share`);
}

/**
 * Everything that can go wrong before the irreversible call: counts, the node (reachable, uninitialised, its seal
 * type), every recipient (parses, can encrypt: a test seal each in client mode), the output directory.
 * @throws UsageError / RecipientError / StoreError / VaultConnectionError naming what is wrong. Nothing was sent.
 */
export async function prepareInit(config: InitCeremonyConfig, deps: InitCeremonyDeps): Promise<PreparedInit> {
  checkSharesAndThreshold(config.shares, config.threshold);
  checkOperatorCount(config.operators, config.shares);
  if (!config.rootTokenRecipient && !config.keepRootToken) {
    throw new UsageError(
      "say where the root token goes: --root-token-recipient pgp:FILE|age:RECIPIENT (or --print-root-token)",
    );
  }

  const status = await deps.client.sealStatus();
  if (status.initialized) {
    const { diagnoseLostInit, defaultRescueDirs } = await import("./pending.js");
    const lost = diagnoseLostInit(
      deps.pendingDir,
      deps.client.address,
      deps.rescueDirs ?? defaultRescueDirs(process.env),
    );
    if (lost) throw new SealkeeperError(lost, { exitCode: ExitCode.remote });
    throw new UsageError(`${deps.client.address} is already initialised; nothing was changed`, {
      hint: "to change the shares or operators of an initialised cluster, use sealkeeper rekey",
    });
  }
  // uninitialised: no earlier init of this node produced shares (or its storage was wiped since)
  if (deps.pendingDir) (await import("./pending.js")).clearPendingFor(deps.pendingDir, deps.client.address);
  const nodeKind: ShareKind = status.type === "shamir" ? "unseal" : "recovery";
  const kind = config.kind && config.kind !== "auto" ? config.kind : nodeKind;
  if (kind !== nodeKind) {
    throw new UsageError(
      nodeKind === "unseal"
        ? `${deps.client.address} uses the Shamir seal: it takes unseal shares, not recovery shares`
        : `${deps.client.address} auto-unseals (${status.type} seal): its shares are recovery shares, which cannot unseal`,
    );
  }

  const { loadRecipient } = await import("../ciphers/registry.js");
  const operators = await loadOperators(config.operators, deps.cwd);
  let rootRecipient: LoadedRecipient | undefined;
  if (config.rootTokenRecipient) {
    try {
      rootRecipient = await loadRecipient(config.rootTokenRecipient, { cwd: deps.cwd });
    } catch (err) {
      throw new UsageError(`root token recipient: ${describeError(err)}`, { cause: err });
    }
  }

  const allServerSealable = operators.every((o) => o.recipient.serverPgpKeyB64 !== undefined);
  const wanted = config.sealShares ?? "auto";
  if (wanted === "server" && !allServerSealable) {
    const other = operators.find((o) => o.recipient.serverPgpKeyB64 === undefined)!;
    throw new UsageError(
      `--seal-shares server needs pgp recipients only; operator ${other.name} is ${other.recipient.type}`,
    );
  }
  if (wanted === "server" && config.keepPlaintextShares) {
    throw new UsageError("server-sealed shares cannot also be kept in memory for an unseal: use client sealing");
  }
  const sealMode = wanted === "client" || config.keepPlaintextShares || !allServerSealable ? "client" : "server";
  const rootSealMode = rootRecipient?.serverPgpKeyB64 && !config.keepRootToken ? "server" : "client";

  // A test seal to every recipient we will seal to ourselves: if it fails, it fails now, before init.
  await probeRecipients([
    ...(sealMode === "client" ? operators.map((o) => o.recipient) : []),
    ...(rootRecipient && rootSealMode === "client" ? [rootRecipient] : []),
  ]);

  await deps.store.checkWritable();

  const request: InitRequest =
    kind === "unseal"
      ? {
          secret_shares: config.shares,
          secret_threshold: config.threshold,
          ...(sealMode === "server" ? { pgp_keys: operators.map((o) => o.recipient.serverPgpKeyB64!) } : {}),
        }
      : {
          recovery_shares: config.shares,
          recovery_threshold: config.threshold,
          ...(sealMode === "server" ? { recovery_pgp_keys: operators.map((o) => o.recipient.serverPgpKeyB64!) } : {}),
        };
  if (rootRecipient && rootSealMode === "server") request.root_token_pgp_key = rootRecipient.serverPgpKeyB64!;
  return { kind, sealMode, operators, rootRecipient, rootSealMode, request };
}

/**
 * Runs the whole ceremony. On success every operator's sealed file, the sealed root token and manifest.json are in
 * the store's directory. After the server answered, no error loses the response: sealed material goes to a rescue
 * bundle whose path is in the thrown error's message.
 */
export async function runInitCeremony(config: InitCeremonyConfig, deps: InitCeremonyDeps): Promise<InitOutcome> {
  const log = deps.log ?? (() => {});
  const prepared = await prepareInit(config, deps);
  log(
    `pre-flight ok: ${deps.client.address} is uninitialised; ${prepared.operators.length} recipients checked; ` +
      `${deps.store.dir} is writable; ${prepared.kind} shares ${config.threshold} of ${config.shares}, sealed by the ${prepared.sealMode}`,
  );
  const pending = await import("./pending.js");
  const { enterCriticalSection } = await import("../util/critical-section.js");
  // From here until the answer is written, SIGINT/SIGTERM/SIGHUP are deferred (src/util/critical-section.ts).
  // when the answer started arriving and whether a record of this init is kept: a node that streams its answer
  // without end may be left with two quick signals (the record says what happened), never a held or slow answer
  const answer: { since?: number; record?: string } = {};
  const leave = enterCriticalSection({
    doing: `the init of ${deps.client.address} is sent or its answer is being written`,
    wouldLose: "the only copy of the shares and the root token",
    say: log,
    forceable: () => {
      const streamingMs = answer.since === undefined ? 0 : Date.now() - answer.since;
      if (streamingMs < FORCEABLE_AFTER_MS) return undefined;
      return {
        why: `its answer has been arriving for ${Math.round(streamingMs / 1000)} s; a Vault init answer takes well under a second`,
        note: answer.record
          ? `the pending record ${answer.record} is kept: sealkeeper status against ${deps.client.address} says whether the init happened`
          : `no pending record could be written; the transcript's init-start line is the record: run sealkeeper status against ${deps.client.address}`,
      };
    },
  });
  try {
    // Both records are durable (fsynced, with their directories) before the request goes out: if the answer is lost
    // anyway (SIGKILL, power loss), the next init or status against this node finds them and says what happened.
    deps.transcript?.append({
      action: "init-start",
      node: deps.client.address,
      threshold: config.threshold,
      detail: `${prepared.kind} shares ${config.threshold}/${config.shares}, sealed by ${prepared.sealMode}`,
    });
    const record = pending.recordPending(deps.pendingDir, {
      ceremony: "init",
      node: deps.client.address,
      out: deps.store.dir,
      transcript: deps.transcript?.path,
    });
    if (!record.path && deps.pendingDir) log(`note: no pending-ceremony record (${record.why})`);
    answer.record = record.path;
    const outcome = await initAndDeliver(config, deps, prepared, log, () => {
      answer.since = Date.now();
    });
    // the record stays while the answer may be lost: only a written manifest or a refused request settles it
    if (outcome.rescued) pending.notePendingRescue(record.path, outcome.rescued);
    else if (outcome.result || outcome.refused) pending.settlePending(record.path);
    if (outcome.error) throw outcome.error;
    return outcome.result!;
  } finally {
    leave();
  }
}

/** After this long of an answer still arriving, two quick signals may stop the init (critical-section.ts). */
const FORCEABLE_AFTER_MS = 2_000;

/** The irreversible call and the delivery of its answer (inside the critical section). */
async function initAndDeliver(
  config: InitCeremonyConfig,
  deps: InitCeremonyDeps,
  prepared: PreparedInit,
  log: (line: string) => void,
  onAnswer: () => void,
): Promise<{ result?: InitOutcome; error?: Error; rescued?: string; refused?: boolean }> {
  // The irreversible call. Its response is the only copy of the shares and the root token: no client-side deadline
  // once it is sent (--timeout bounds connecting), and a line every few seconds while the server works.
  log(
    `init sent to ${deps.client.address}: waiting for its answer with no time limit (it is the only copy of the shares)`,
  );
  let response: InitResponse;
  try {
    response = await deps.client.init(prepared.request, {
      waitingIntervalMs: deps.waitingIntervalMs ?? 5_000,
      onWaiting: (ms) =>
        log(`still waiting for ${deps.client.address} to answer the init (${Math.round(ms / 1000)} s)`),
      onAnswer,
    });
  } catch (err) {
    // an HTTP error is the server's answer: it refused, nothing was handed out
    return { error: await explainFailedInit(err, deps), refused: err instanceof VaultHttpError };
  }
  log("the server answered: sealing and writing the shares");

  const keys = prepared.kind === "unseal" ? response.keys : (response.recovery_keys ?? []);
  const keysB64 = prepared.kind === "unseal" ? response.keys_base64 : (response.recovery_keys_base64 ?? []);
  let delivered: Awaited<ReturnType<typeof deliverShares>>;
  try {
    delivered = await deliverShares(
      {
        ceremony: "init",
        node: deps.client.address,
        kind: prepared.kind,
        threshold: config.threshold,
        shares: config.shares,
        operators: prepared.operators,
        sealMode: prepared.sealMode,
        keys,
        keysB64,
        rootToken: prepared.rootRecipient
          ? { recipient: prepared.rootRecipient, sealMode: prepared.rootSealMode, value: response.root_token }
          : undefined,
      },
      {
        store: deps.store,
        transcript: deps.transcript,
        rescueDirs: deps.rescueDirs,
        beforeWrite: deps.afterServerAnswered,
      },
    );
  } catch (err) {
    return { error: err as Error, rescued: err instanceof SharesRescuedError ? err.bundlePath : undefined };
  }
  return {
    result: {
      kind: prepared.kind,
      sealMode: prepared.sealMode,
      manifest: delivered.manifest,
      dir: deps.store.dir,
      files: delivered.files,
      plaintextShares: config.keepPlaintextShares ? delivered.plaintext : undefined,
      rootToken: config.keepRootToken ? response.root_token : undefined,
    },
  };
}

/**
 * The init request failed. Someone else may have initialised the node first (two inits at once), or the connection
 * may have died after the request was sent, when the server may have initialised the node and its answer is lost:
 * the node is asked, and the error says which case this is and what to do.
 */
async function explainFailedInit(err: unknown, deps: InitCeremonyDeps): Promise<Error> {
  const address = deps.client.address;
  let initialised = await deps.client.initStatus().catch(() => undefined);
  // after a lost connection the server may still be working on the init: ask again for a while before saying "no"
  for (let i = 0; i < 20 && initialised === false && err instanceof VaultConnectionError; i++) {
    await new Promise((r) => setTimeout(r, 500));
    initialised = await deps.client.initStatus().catch(() => undefined);
  }
  if (err instanceof VaultHttpError) {
    if (initialised === true && err.status === 400) {
      deps.transcript?.append({ action: "init-refused", node: address, detail: "initialised by someone else" });
      return new SealkeeperError(
        `${address} was initialised by someone else while this init was being prepared (the server refused this ` +
          `one: ${err.errors.join("; ") || "already initialised"}); nothing was changed here, and nothing of theirs was touched`,
        {
          exitCode: ExitCode.remote,
          cause: err,
          hint: "whoever ran the other init holds the shares: ask them (sealkeeper status shows the node's state)",
        },
      );
    }
    return err;
  }
  if (!(err instanceof VaultConnectionError)) return err as Error;
  if (initialised === false) {
    return new SealkeeperError(
      `${err.message} after the init request was sent; the node still says it is uninitialised (10 s later), so ` +
        "the init most likely did not happen: run sealkeeper status, then init again",
      {
        exitCode: err.exitCode,
        cause: err,
        hint: err.hint,
      },
    );
  }
  if (initialised === undefined) {
    deps.transcript?.append({ action: "init-answer-unknown", node: address, detail: err.reason });
    return new SealkeeperError(
      `${err.message} after the init request was sent, and the node cannot be asked now whether it initialised: ` +
        "run sealkeeper status against it; if it says initialised, the shares were lost and it says what to do",
      { exitCode: ExitCode.remote, cause: err },
    );
  }
  deps.transcript?.append({ action: "init-answer-lost", node: address, detail: err.reason });
  return new SealkeeperError(
    `${err.message} after the init request was sent, and the server initialised the node: its answer, the only copy ` +
      "of the shares and the root token, never arrived. Nobody can unseal this cluster: stop every node, wipe its " +
      "storage (the raft data directory or the file storage path, on every node), start the nodes and run " +
      "sealkeeper init again",
    { exitCode: ExitCode.remote, cause: err },
  );
}

/** The init ran on the server, and the material was rescued rather than written normally. Exit 2. */
export { SharesRescuedError as InitRescuedError } from "./deliver-shares.js";
