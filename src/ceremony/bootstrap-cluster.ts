/**
 * `bootstrap cluster`: blank nodes to initialised, unsealed, configured, verified and root-revoked, in one scripted
 * run. Every step is one that exists on its own (init, unseal, bootstrap apply/verify, root revoke); this module only
 * orders them and keeps the plaintext shares and root token in memory between them, wiping what it can at the end.
 * Any failure stops the run with the shares already safe on disk and a message saying how to resume by hand.
 */
import type { BootstrapSpec } from "../bootstrap/spec.js";
import { describeError, ExitCode, SealkeeperError, UsageError } from "../errors.js";
import type { ShareStore } from "../store/share-store.js";
import type { VaultClient } from "../vault/client.js";
import type { CeremonyFile } from "./ceremony-file.js";
import type { InitOutcome } from "./init.js";
import type { Transcript } from "./transcript.js";
import type { UnsealReport } from "./unseal.js";

export interface BootstrapClusterDeps {
  /** One client per node; the first is initialised. */
  clients: VaultClient[];
  ceremony: CeremonyFile;
  spec: BootstrapSpec;
  store: ShareStore;
  transcript?: Transcript;
  log?: (line: string) => void;
  concurrency?: number;
  /** The transcript file, read (not written) to tell a rerun what the first run finished. */
  transcriptPath?: string;
  /** Passed to init: the pending-ceremony journal and the waiting-line interval (src/ceremony/init.ts). */
  pendingDir?: string;
  waitingIntervalMs?: number;
  /** Revoke the root token even when no audit device is enabled (default: refuse). */
  allowNoAudit?: boolean;
  /**
   * Check each kubernetes auth method's API server from this machine during verify (default true, as `bootstrap
   * verify` does); false for --no-kubernetes.
   */
  kubernetes?: boolean;
}

export interface BootstrapClusterResult {
  /**
   * bootstrapped: this run did everything; resumed: an earlier run of this ceremony initialised and unsealed the
   * cluster and this one applied, verified and revoked; already-done: an earlier run finished (nothing was changed).
   */
  outcome: "bootstrapped" | "resumed" | "already-done";
  init: Pick<InitOutcome, "kind" | "dir" | "sealMode"> & {
    shares: number;
    threshold: number;
    /** The sealed files written (one per operator, the sealed root token, the manifest). */
    files: string[];
  };
  unseal: UnsealReport | null;
  applied: { steps: number; requests: number };
  /** null: not run (already-done without a token to verify with). */
  verified: {
    ok: boolean;
    checks: number;
    /** The kubernetes auth methods' API servers checked from here: "checked", "skipped" (--no-kubernetes), counts. */
    kubernetes: { mode: "checked" | "skipped"; ok: number; unreachable: number; skipped: number };
  } | null;
  /** lookupStatusAfter: what lookup-self answered right after this run revoked it; at: when an earlier run did. */
  rootRevoked: { accessor: string; lookupStatusAfter?: number; at?: string };
  activeNode: string;
}

/** A step failed after init: the shares are safe on disk; the message says how to go on by hand. */
export class BootstrapClusterError extends SealkeeperError {}

/** Runs the whole bootstrap. @throws UsageError before init (nothing changed), BootstrapClusterError after it. */
export async function runBootstrapCluster(deps: BootstrapClusterDeps): Promise<BootstrapClusterResult> {
  const log = deps.log ?? (() => {});
  const [first] = deps.clients;
  if (!first) throw new UsageError("give every node of the cluster with --address (the first one is initialised)");
  if (!deps.ceremony.rootTokenRecipient) {
    throw new UsageError(
      "the ceremony file needs rootToken.recipient: the root token is sealed there before it is used and revoked, so that a failure half-way loses nothing",
    );
  }
  // What the nodes and the ceremony directory say this run is (bootstrap-rerun.ts): a first run, a rerun of a
  // finished bootstrap, or one to resume after init and unseal. Nothing is sent but reads until this is decided.
  const { classifyRerun } = await import("./bootstrap-rerun.js");
  const rerun = await classifyRerun({
    clients: deps.clients,
    store: deps.store,
    transcriptPath: deps.transcriptPath,
  });
  if (rerun.state !== "blank") return finishRerun(deps, rerun, log);

  const { runInitCeremony } = await import("./init.js");
  const outcome = await runInitCeremony(
    {
      shares: deps.ceremony.shares,
      threshold: deps.ceremony.threshold,
      operators: deps.ceremony.operators,
      rootTokenRecipient: deps.ceremony.rootTokenRecipient,
      keepRootToken: true,
      keepPlaintextShares: true,
      sealShares: "client",
      kind: deps.ceremony.kind ?? "auto",
    },
    {
      client: first,
      store: deps.store,
      transcript: deps.transcript,
      cwd: deps.ceremony.baseDir,
      log,
      pendingDir: deps.pendingDir,
      waitingIntervalMs: deps.waitingIntervalMs,
    },
  );
  const shares = outcome.plaintextShares ?? [];
  let rootToken = outcome.rootToken;
  const resumeHint = (done: string) =>
    `${done}. The shares are safe, sealed to each operator, in ${outcome.dir}, and the root token is sealed in ` +
    `${outcome.manifest.rootToken?.file ?? "the ceremony directory"}. To go on: sealkeeper unseal (with the ` +
    "operators' files) on any node still sealed, then, with the root token (decrypted by its holder) in VAULT_TOKEN, " +
    `the same bootstrap cluster command with -o ${outcome.dir}: it resumes with apply, verify and the revocation`;
  try {
    log(
      `init done: ${outcome.kind} shares ${outcome.manifest.threshold} of ${outcome.manifest.shares} in ${outcome.dir}`,
    );
    // A signal that came during init was deferred until the shares and the sealed root token were on disk: honour it
    // now, before anything else happens (a cancelled CI job stops here, resumable by hand).
    const { deferredSignal, SIGNAL_EXIT_CODES } = await import("../util/critical-section.js");
    const sig = deferredSignal();
    if (sig) {
      throw new SealkeeperError(`${sig} received during init (deferred until its answer was written)`, {
        exitCode: SIGNAL_EXIT_CODES[sig],
      });
    }
    let unseal: UnsealReport | null = null;
    if (outcome.kind === "unseal") {
      const { runUnseal } = await import("./unseal.js");
      let next = 0;
      const quorum = shares.slice(0, outcome.manifest.threshold);
      unseal = await runUnseal({
        clients: deps.clients,
        source: { next: async () => quorum[next++] ?? null },
        transcript: deps.transcript,
        onEvent: (e) => {
          if (e.kind === "share") {
            log(`share from ${e.share.operator}: ${e.results.map((r) => `${r.address} ${r.outcome}`).join(", ")}`);
          }
        },
      });
      const sealed = unseal.nodes.filter((n) => n.state !== "unsealed");
      if (sealed.length > 0) {
        throw new Error(
          `unseal left ${sealed.map((n) => `${n.address} ${n.state}${n.message ? ` (${n.message})` : ""}`).join("; ")}`,
        );
      }
      log(`unsealed ${unseal.nodes.length} node(s)`);
    } else {
      log("auto-unseal: the nodes unseal themselves; the recovery shares stay with their operators");
    }

    const active = await waitForActive(deps.clients);
    log(`active node: ${active.address}`);
    const done = await configureAndRevoke(deps, active, rootToken, log);
    return {
      outcome: "bootstrapped",
      init: {
        kind: outcome.kind,
        dir: outcome.dir,
        sealMode: outcome.sealMode,
        shares: outcome.manifest.shares,
        threshold: outcome.manifest.threshold,
        files: outcome.files.map((f) => f.path),
      },
      unseal,
      ...done,
    };
  } catch (err) {
    throw new BootstrapClusterError(resumeHint(`bootstrap stopped after init: ${describeError(err)}`), {
      cause: err,
      exitCode: err instanceof SealkeeperError ? err.exitCode : 1,
    });
  } finally {
    // The plaintext shares and token were needed in memory for this run only. Buffers can be zeroed; JS strings
    // cannot, so we drop every reference and let them go.
    for (const s of shares) s.bytes.fill(0);
    shares.length = 0;
    rootToken = undefined;
    for (const c of deps.clients) c.setToken(undefined);
  }
}

/** apply, verify (kubernetes checks as asked), revoke: the part after unseal, shared by a first run and a resume. */
async function configureAndRevoke(
  deps: BootstrapClusterDeps,
  active: VaultClient,
  rootToken: string | undefined,
  log: (line: string) => void,
): Promise<Pick<BootstrapClusterResult, "applied" | "verified" | "rootRevoked" | "activeNode">> {
  // undefined: the node's client already holds the token to use (a resume with VAULT_TOKEN)
  if (rootToken !== undefined) active.setToken(rootToken);
  try {
    const { observeState } = await import("../bootstrap/observe.js");
    const { planBootstrap } = await import("../bootstrap/plan.js");
    const { applyPlan } = await import("../bootstrap/apply.js");
    const { verifyBootstrap } = await import("../bootstrap/verify.js");
    const { revokeRootToken } = await import("../bootstrap/revoke-root.js");
    const concurrency = deps.concurrency ?? 8;
    const plan = planBootstrap(deps.spec, await observeState(active, deps.spec, { concurrency }));
    const applied = await applyPlan(active, plan, { concurrency });
    log(`applied ${applied.applied.length} step(s) with ${applied.requests} write request(s)`);
    const kubeMode = deps.kubernetes === false ? "skipped" : "checked";
    const verified = await verifyBootstrap(active, deps.spec, { concurrency, kubernetes: kubeMode === "checked" });
    const kubeFailed = verified.kubernetes.filter((k) => k.status === "fail");
    if (kubeFailed.length > 0) {
      throw new Error(
        `verify failed the kubernetes checks (${kubeFailed.map((k) => `${k.auth} ${k.check}: ${k.message}`).join("; ")}); the root token was NOT revoked`,
      );
    }
    const kubeCounts = {
      ok: verified.kubernetes.filter((k) => k.status === "ok").length,
      unreachable: verified.kubernetes.filter((k) => k.status === "unreachable").length,
      skipped: verified.kubernetes.filter((k) => k.status === "skipped").length,
    };
    if (kubeMode === "skipped") log("verify: kubernetes API servers not checked from here (--no-kubernetes)");
    else if (kubeCounts.unreachable > 0)
      log(
        `verify: ${kubeCounts.unreachable} kubernetes check(s) could not reach the API server from this machine ` +
          "(not counted as failures; run bootstrap verify where the cluster is reachable, or pass --no-kubernetes)",
      );
    if (!verified.ok) {
      const bad = verified.rows.filter((r) => r.status !== "ok").map((r) => `${r.role} ${r.path} ${r.status}`);
      throw new Error(
        `verify found capabilities that differ from the spec (${bad.join("; ")}); the root token was NOT revoked`,
      );
    }
    log(`verify passed: ${verified.rows.length} checks`);
    // said BEFORE the irreversible revoke: what getting root (and rekeying) back will take on this server
    const { assessRootRevoke } = await import("../bootstrap/revoke-root.js");
    for (const w of (await assessRootRevoke(active)).warnings) log(`note: ${w}`);
    const revoked = await revokeRootToken(active, { requireAudit: !deps.allowNoAudit });
    deps.transcript?.append({ action: "root-revoked", node: active.address, detail: `accessor ${revoked.accessor}` });
    log(`root token revoked; lookup-self answers ${revoked.lookupStatusAfter}`);
    return {
      applied: { steps: applied.applied.length, requests: applied.requests },
      verified: { ok: true, checks: verified.rows.length, kubernetes: { mode: kubeMode, ...kubeCounts } },
      rootRevoked: { accessor: revoked.accessor, lookupStatusAfter: revoked.lookupStatusAfter },
      activeNode: active.address,
    };
  } finally {
    active.setToken(undefined);
  }
}

/** A rerun: report a finished bootstrap (verifying when a token is given), or resume one after init and unseal. */
async function finishRerun(
  deps: BootstrapClusterDeps,
  rerun: Exclude<import("./bootstrap-rerun.js").RerunState, { state: "blank" }>,
  log: (line: string) => void,
): Promise<BootstrapClusterResult> {
  const m = rerun.manifest;
  const { join } = await import("node:path");
  const init = {
    kind: m.kind,
    dir: deps.store.dir,
    sealMode: m.operators[0]?.sealedBy ?? "client",
    shares: m.shares,
    threshold: m.threshold,
    files: [
      ...m.operators.map((o) => join(deps.store.dir, o.file)),
      ...(m.rootToken ? [join(deps.store.dir, m.rootToken.file)] : []),
    ],
  } satisfies BootstrapClusterResult["init"];
  // every client was made from the same settings: the active node's holds the token from VAULT_TOKEN, if any
  const active = await waitForActive(deps.clients);
  const hasToken = active.hasToken();
  if (rerun.state === "done") {
    log(
      `already bootstrapped: initialised by the ceremony in ${deps.store.dir}, every node unsealed, root token ` +
        `revoked${rerun.revokedAt ? ` at ${rerun.revokedAt}` : ""}`,
    );
    let verified: BootstrapClusterResult["verified"] = null;
    if (hasToken) {
      // a rerun with a (verifier) token proves the configuration still holds; without one it reports what it read
      const { verifyBootstrap } = await import("../bootstrap/verify.js");
      const kubeMode = deps.kubernetes === false ? "skipped" : "checked";
      const report = await verifyBootstrap(active, deps.spec, {
        concurrency: deps.concurrency ?? 8,
        kubernetes: kubeMode === "checked",
      });
      if (!report.ok) {
        const bad = [
          ...report.rows.filter((r) => r.status !== "ok").map((r) => `${r.role} ${r.path} ${r.status}`),
          ...report.kubernetes.filter((k) => k.status === "fail").map((k) => `${k.auth} ${k.check}: ${k.message}`),
        ];
        throw new SealkeeperError(`the cluster was bootstrapped, but verify now finds drift: ${bad.join("; ")}`, {
          exitCode: ExitCode.drift,
          hint: "sealkeeper bootstrap plan -f SPEC shows the changes; bootstrap apply converges them",
        });
      }
      const count = (st: string) => report.kubernetes.filter((k) => k.status === st).length;
      verified = {
        ok: true,
        checks: report.rows.length,
        kubernetes: { mode: kubeMode, ok: count("ok"), unreachable: count("unreachable"), skipped: count("skipped") },
      };
      log(`verify passed: ${report.rows.length} checks`);
    } else {
      log(
        "verify not run: no token (the root token is revoked); set VAULT_TOKEN to a verifier token to prove the " +
          "configuration",
      );
    }
    return {
      outcome: "already-done",
      init,
      unseal: null,
      applied: { steps: 0, requests: 0 },
      verified,
      rootRevoked: { accessor: rerun.revokedAccessor, at: rerun.revokedAt },
      activeNode: active.address,
    };
  }
  if (!hasToken) {
    throw new UsageError(
      `the ceremony in ${deps.store.dir} initialised and unsealed the cluster, and the root token is not revoked yet: ` +
        "this run needs it to apply, verify and revoke",
      {
        hint:
          `its holder decrypts ${m.rootToken?.file ?? "the sealed root token"} (age -d / gpg -d) into VAULT_TOKEN, then ` +
          "runs the same command again: it resumes with apply, verify and the revocation",
      },
    );
  }
  log(
    `resuming: the ceremony in ${deps.store.dir} initialised and unsealed the cluster; applying, verifying, revoking`,
  );
  try {
    return { outcome: "resumed", init, unseal: null, ...(await configureAndRevoke(deps, active, undefined, log)) };
  } catch (err) {
    throw new BootstrapClusterError(`bootstrap stopped while resuming: ${describeError(err)}`, {
      cause: err,
      exitCode: err instanceof SealkeeperError ? err.exitCode : 1,
      hint: "fix the cause and run the same command again: it resumes from the server's state",
    });
  } finally {
    for (const c of deps.clients) c.setToken(undefined);
  }
}

/** The node that health says is active (200), waiting up to 60 s for raft to elect one. */
async function waitForActive(clients: VaultClient[]): Promise<VaultClient> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    for (const c of clients) {
      try {
        if ((await c.health()).status === 200) return c;
      } catch {
        // down or not ready: try the next
      }
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error("no node became active within 60 s");
}
