/**
 * `bootstrap cluster`: blank nodes to initialised, unsealed, configured, verified and root-revoked, in one scripted
 * run. Every step is one that exists on its own (init, unseal, bootstrap apply/verify, root revoke); this module only
 * orders them and keeps the plaintext shares and root token in memory between them, wiping what it can at the end.
 * Any failure stops the run with the shares already safe on disk and a message saying how to resume by hand.
 */
import type { BootstrapSpec } from "../bootstrap/spec.js";
import { describeError, SealkeeperError, UsageError } from "../errors.js";
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
  /** Passed to init: the pending-ceremony journal and the waiting-line interval (src/ceremony/init.ts). */
  pendingDir?: string;
  waitingIntervalMs?: number;
  /** Revoke the root token even when no audit device is enabled (default: refuse). */
  allowNoAudit?: boolean;
}

export interface BootstrapClusterResult {
  init: Pick<InitOutcome, "kind" | "dir" | "sealMode"> & { shares: number; threshold: number };
  unseal: UnsealReport | null;
  applied: { steps: number; requests: number };
  verified: { ok: boolean; checks: number };
  rootRevoked: { accessor: string; lookupStatusAfter: number };
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
  // Pre-flight the other nodes: all answer, none initialised on its own (followers join the first).
  for (const c of deps.clients.slice(1)) {
    const s = await c.sealStatus();
    if (s.initialized && !s.sealed) {
      throw new UsageError(
        `${c.address} is already initialised and unsealed: bootstrap cluster starts from blank nodes`,
      );
    }
  }

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
    `${outcome.manifest.rootToken?.file ?? "the ceremony directory"}. To go on by hand: sealkeeper unseal (with the ` +
    "operators' files) on every node, then with the root token (decrypted by its holder) in VAULT_TOKEN: " +
    "sealkeeper bootstrap apply -f SPEC --revoke-root-token";
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
    active.setToken(rootToken);
    log(`active node: ${active.address}`);
    const { observeState } = await import("../bootstrap/observe.js");
    const { planBootstrap } = await import("../bootstrap/plan.js");
    const { applyPlan } = await import("../bootstrap/apply.js");
    const { verifyBootstrap } = await import("../bootstrap/verify.js");
    const { revokeRootToken } = await import("../bootstrap/revoke-root.js");
    const concurrency = deps.concurrency ?? 8;
    const plan = planBootstrap(deps.spec, await observeState(active, deps.spec, { concurrency }));
    const applied = await applyPlan(active, plan, { concurrency });
    log(`applied ${applied.applied.length} step(s) with ${applied.requests} write request(s)`);
    const verified = await verifyBootstrap(active, deps.spec, { concurrency });
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
    active.setToken(undefined);
    return {
      init: {
        kind: outcome.kind,
        dir: outcome.dir,
        sealMode: outcome.sealMode,
        shares: outcome.manifest.shares,
        threshold: outcome.manifest.threshold,
      },
      unseal,
      applied: { steps: applied.applied.length, requests: applied.requests },
      verified: { ok: true, checks: verified.rows.length },
      rootRevoked: { accessor: revoked.accessor, lookupStatusAfter: revoked.lookupStatusAfter },
      activeNode: active.address,
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
