import type { Command } from "commander";
import type { ReviewerOptions, ReviewerPlan } from "../../bootstrap/kube-reviewer.js";
import type { KubeconfigCluster } from "../../bootstrap/kubeconfig.js";
import type { LintFinding } from "../../bootstrap/lint.js";
import type { Plan } from "../../bootstrap/plan.js";
import type { BootstrapSpec } from "../../bootstrap/spec.js";
import type { VerifyReport } from "../../bootstrap/verify.js";
import { ExitCode, SealkeeperError, UsageError, withExitCode } from "../../errors.js";
import type { VaultClient } from "../../vault/client.js";
import { ExitWith } from "../exit.js";
import { parseBoundedInt } from "../flags.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, clientFromOptions, type RawConnectionOpts } from "../options.js";
import { paint, renderTable, resolveFormat, terminalSafe, useColor, writeJson } from "../output.js";
import {
  addClusterOptions,
  addReviewerOptions,
  clusterFromFlags,
  fillSpecFromCluster,
  type KubeFlags,
  reviewerOptionsFromFlags,
  writeReviewerApplied,
} from "./bootstrap-kube.js";

export interface ExportOpts extends RawConnectionOpts {
  file: string;
  selfInit?: boolean;
  verifierTokenFile?: string;
  serverVerifierTokenFile?: string;
  verifierTtl: string;
  serverConfig?: string;
  out?: string;
}

interface BootstrapOpts extends RawConnectionOpts, KubeFlags {
  file: string;
  format?: string;
  purge?: boolean;
  strict?: boolean;
  detailedExitcode?: boolean;
  concurrency?: string;
  revokeRootToken?: boolean;
  tokenRole?: string;
  allowNoAudit?: boolean;
  secretId?: string[];
  secretIdOut?: string;
  rotateSecretId?: boolean;
  lockTimeout?: string;
  /** commander's --no-lock */
  lock?: boolean;
  /** commander's --no-kubernetes */
  kubernetes?: boolean;
}

/** `bootstrap plan|apply|verify|manifests`: declarative mounts, Kubernetes auth, policies and apps. */
export function registerBootstrap(program: Command, io: CliIO): void {
  const group = program
    .command("bootstrap")
    .description("configure mounts, Kubernetes auth roles and least-privilege policies from a spec file");

  const specOptions = (cmd: Command) =>
    cmd
      .requiredOption("-f, --file <file>", "bootstrap spec (YAML)")
      .option("--format <format>", "output format: table or json (VAULT_FORMAT)");

  const plan = addReviewerOptions(
    addClusterOptions(specOptions(group.command("plan").description("show what apply would change, field by field"))),
  );
  addConnectionOptions(plan);
  plan
    .option("--purge", "also delete policies, roles and auth methods the spec does not name (never root/default/token)")
    .option("--strict", "treat lint findings as errors")
    .option("--detailed-exitcode", "exit 0 when there is nothing to do, 2 when changes are pending, 1 on error")
    .addHelpText("after", EXIT_CODES_HELP)
    .action(
      driftOnly(async (opts: BootstrapOpts) => {
        const format = resolveFormat(opts.format, io);
        const reviewerOpts = await reviewerOptionsFromFlags(opts);
        const { spec, cluster } = await loadSpecWithCluster(opts, io);
        await withClient(opts, io, async (client) => {
          const { result, reviewer } = await computePlan(client, spec, opts, 8, cluster, reviewerOpts);
          await printPlan(io, format, result, opts.strict, reviewer);
          failOnFindings(result, opts);
          if (result.conflicts.length > 0) throw new ExitWith(ExitCode.error);
          const { reviewerPending } = await import("../../bootstrap/kube-reviewer.js");
          const pending = result.changes.length > 0 || (reviewer !== undefined && reviewerPending(reviewer));
          if (opts.detailedExitcode && pending) throw new ExitWith(ExitCode.drift);
        });
      }),
    );

  const apply = addReviewerOptions(
    addClusterOptions(specOptions(group.command("apply").description("apply the plan; a second apply writes nothing"))),
  );
  addConnectionOptions(apply);
  apply
    .option("--purge", "also delete policies, roles and auth methods the spec does not name (never root/default/token)")
    .option("--strict", "refuse to apply while lint reports findings")
    .option("--concurrency <n>", "requests in flight at once (default 8)")
    .option("--revoke-root-token", "after apply and a passing verify, revoke the token used (it must be a root token)")
    .option("--allow-no-audit", "with --revoke-root-token: revoke even when no audit device is enabled")
    .option(
      "--secret-id <auth/role=TYPE:VALUE>",
      "after apply, create a secret_id of this approle role sealed to the recipient (repeatable; never printed)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--secret-id-out <dir>", "directory for the sealed secret_id files (default: the current directory)")
    .option(
      "--lock-timeout <duration>",
      "wait this long (e.g. 10m) for another apply of the same spec to finish (default: fail at once)",
    )
    .option("--no-lock", "do not take the server-side apply lock (sealkeeper/ KV v2 mount)")
    .option(
      "--rotate-secret-id",
      "with --secret-id: mint a new secret_id even when the role has one, then destroy the previous ones (a rerun without it mints nothing)",
    )
    .addHelpText("after", EXIT_CODES_HELP)
    .action(
      driftOnly(async (opts: BootstrapOpts) => {
        const format = resolveFormat(opts.format, io);
        const concurrency = parseConcurrency(opts.concurrency);
        const reviewerOpts = await reviewerOptionsFromFlags(opts);
        const { spec, cluster } = await loadSpecWithCluster(opts, io);
        const { parseSecretIdFlag } = await import("../../bootstrap/secret-id.js");
        const secretIds = (opts.secretId ?? []).map(parseSecretIdFlag);
        const lockWaitMs = await parseLockTimeout(opts.lockTimeout);
        await withClient(opts, io, async (client) => {
          // The lock is taken only by a run that will write: a rerun with nothing to do reads and writes nothing at
          // all (not even the lock). A run that will write plans again under the lock, since another run may have
          // applied in the meantime. With --create-reviewer the plan marks the spec: it is planned once, locked.
          let pre: Awaited<ReturnType<typeof computePlan>> | undefined;
          let lock: Awaited<ReturnType<typeof takeApplyLock>> | undefined;
          if (opts.lock !== false) {
            if (!(cluster && reviewerOpts)) pre = await computePlan(client, spec, opts, concurrency);
            if (!pre || pre.result.changes.length > 0 || secretIds.length > 0) {
              lock = await takeApplyLock(client, spec.file, lockWaitMs, io);
              pre = undefined;
            }
          }
          try {
            await applyUnderLock(client, pre);
          } finally {
            await lock?.release();
          }
        });
        async function applyUnderLock(
          client: VaultClient,
          pre: Awaited<ReturnType<typeof computePlan>> | undefined,
        ): Promise<void> {
          const { applyPlan } = await import("../../bootstrap/apply.js");
          const planned = pre ?? (await computePlan(client, spec, opts, concurrency, cluster, reviewerOpts));
          const { reviewer } = planned;
          let result = planned.result;
          if (format === "table") await printPlan(io, format, result, opts.strict, reviewer);
          failOnFindings(result, opts);
          if (opts.revokeRootToken) await preflightRevoke(client);
          // the cluster first (the reviewer's token goes into the server's config), and only for a plan apply accepts
          let reviewerApplied: import("../../bootstrap/kube-reviewer.js").AppliedReviewer | undefined;
          if (reviewer && cluster && result.conflicts.length === 0) {
            const { applyReviewer, markSpec } = await import("../../bootstrap/kube-reviewer.js");
            reviewerApplied = await applyReviewer(cluster, reviewer);
            if (format === "table") writeReviewerApplied(io, reviewerApplied, reviewer.options);
            if (reviewerApplied.token) {
              markSpec(spec, reviewer, reviewerApplied.token.value);
              result = await planBootstrapNow(spec, planned.observed, opts);
            }
          }
          await assertNoPendingToken(result);
          const { runInterruptible } = await import("../../util/interrupt.js");
          const progress = progressLine(io, result.changes.length);
          const applied = await runInterruptible(
            (line) => io.stderr.write(`${line}\n`),
            (interruption) =>
              applyPlan(client, result, {
                concurrency,
                stop: interruption.signal,
                stoppedBy: interruption.received,
                onStep: (c) => {
                  if (format === "table") io.stderr.write(`applied ${terminalSafe(c.id)}\n`);
                  else progress();
                },
              }),
          );
          let delivered: import("../../bootstrap/secret-id.js").DeliveredSecretId[] = [];
          if (secretIds.length > 0) {
            const { deliverSecretIds } = await import("../../bootstrap/secret-id.js");
            delivered = await deliverSecretIds(client, spec, secretIds, opts.secretIdOut ?? ".", io.cwd, {
              rotate: Boolean(opts.rotateSecretId),
            });
          }
          if (format === "json") {
            const { planToJson } = await import("../../bootstrap/plan.js");
            const { reviewerToJson } = await import("../../bootstrap/kube-reviewer.js");
            writeJson(io, {
              plan: planToJson(result),
              ...(reviewer ? { kubernetes: reviewerToJson(reviewer, reviewerApplied) } : {}),
              applied: applied.applied,
              requests: applied.requests,
              ...(delivered.length > 0 ? { secretIds: delivered } : {}),
            });
          } else if (result.changes.length > 0) {
            io.stdout.write(
              `Apply complete: ${applied.applied.length} step(s), ${applied.requests} write request(s).\n`,
            );
          }
          if (format === "table") {
            for (const d of delivered) {
              if (d.status === "exists") {
                io.stdout.write(
                  terminalSafe(
                    `secret_id for ${d.role}: the role already has one (accessor ${d.accessor}); nothing minted ` +
                      "(--rotate-secret-id replaces it)\n",
                  ),
                );
                continue;
              }
              io.stdout.write(
                terminalSafe(`secret_id for ${d.role} sealed to ${d.recipient}: ${d.file} (accessor ${d.accessor})\n`),
              );
              if (d.revoked && d.revoked.length > 0) {
                io.stdout.write(
                  `  the previous secret_id(s) of ${d.role} were destroyed (accessor ${d.revoked.join(", ")})\n`,
                );
              }
            }
          }
          if (opts.revokeRootToken) {
            const { verifyBootstrap } = await import("../../bootstrap/verify.js");
            const report = await verifyBootstrap(client, spec, { concurrency });
            if (!report.ok) {
              if (format === "table") io.stdout.write(renderVerify(report, io));
              throw new UsageError("verify found excess rights: the root token was NOT revoked", {
                hint: "fix the spec, apply again, then revoke",
              });
            }
            const { revokeRootToken } = await import("../../bootstrap/revoke-root.js");
            const revoked = await revokeRootToken(client, { requireAudit: !opts.allowNoAudit });
            writeRevokeReport(io, revoked);
          }
        }
      }),
    );

  const verify = addClusterOptions(
    specOptions(
      group
        .command("verify")
        .description("for every role, ask the server what a token with its policies may do; fail on any excess"),
    ),
  );
  addConnectionOptions(verify);
  verify
    .option("--concurrency <n>", "requests in flight at once (default 8)")
    .option("--token-role <name>", "create the probe tokens through this token role (a verifier token, not root)")
    .option("--no-kubernetes", "do not check the kubernetes auth methods' API servers (reviewer, CA, issuer) from here")
    .addHelpText("after", EXIT_CODES_HELP)
    .action(
      driftOnly(async (opts: BootstrapOpts) => {
        const format = resolveFormat(opts.format, io);
        const concurrency = parseConcurrency(opts.concurrency);
        const spec = await loadSpecFromOptions(opts, io);
        await withClient(opts, io, async (client) => {
          // a spec with no roles asks the server nothing: prove the token first, so that an expired or revoked CI
          // token fails the job (exit 1) instead of passing a verify that checked nothing
          await client.read("auth/token/lookup-self");
          const { verifyBootstrap, verifyToJson } = await import("../../bootstrap/verify.js");
          const report = await verifyBootstrap(client, spec, {
            concurrency,
            tokenRole: opts.tokenRole,
            kubernetes: opts.kubernetes !== false,
          });
          if (format === "json") writeJson(io, verifyToJson(report));
          else io.stdout.write(renderVerify(report, io));
          const hasKube = spec.auth.some((a) => a.type === "kubernetes");
          const unreachable = report.kubernetes.filter((k) => k.status === "unreachable").length;
          if (hasKube && opts.kubernetes === false) {
            io.stderr.write(
              "note: the kubernetes auth methods' API servers were not checked from here (--no-kubernetes)\n",
            );
          } else if (unreachable > 0) {
            io.stderr.write(
              `note: ${unreachable} kubernetes check(s) could not reach the API server from this machine: not counted ` +
                "as failures; run verify where the cluster is reachable, or pass --no-kubernetes\n",
            );
          }
          if (!report.ok) throw new ExitWith(ExitCode.drift);
        });
      }),
    );

  const exportCmd = group
    .command("export")
    .description("write the spec as OpenBao's self-initialization stanza (--self-init), for a server's first boot")
    .requiredOption("-f, --file <file>", "bootstrap spec (YAML)")
    .option("--self-init", "write OpenBao's `initialize` stanza (OpenBao 2.4+, auto-unseal only)")
    .option(
      "--verifier-token-file <file>",
      "create this file (0600) with a new verifier token ID; the server reads it on first boot (absolute path there)",
    )
    .option("--server-verifier-token-file <path>", "the same file's path as the server sees it (default: the same)")
    .option("--verifier-ttl <duration>", "lifetime of the verifier token", "24h")
    .option("--server-config <file>", "the server's config: refuse it unless it has an auto-unseal seal stanza")
    .option("--out <file>", "write the stanza to this file instead of stdout");
  addConnectionOptions(exportCmd);
  exportCmd.action(async (opts: ExportOpts) => {
    const { runSelfInitExport } = await import("./bootstrap-export.js");
    await runSelfInitExport(opts, io, await loadSpecFromOptions(opts, io));
  });

  specOptions(
    group
      .command("manifests")
      .description("print External Secrets Operator manifests (SecretStores, ExternalSecrets) for the spec's apps"),
  )
    .option("--out <dir>", "write one file per manifest into this directory instead of stdout")
    .action(async (opts: BootstrapOpts & { out?: string }) => {
      const spec = await loadSpecFromOptions(opts, io);
      const { renderManifests, writeManifests } = await import("../../bootstrap/manifests.js");
      if (opts.out) {
        const written = writeManifests(spec, opts.out);
        for (const f of written) io.stderr.write(`wrote ${f}\n`);
      } else {
        io.stdout.write(renderManifests(spec));
      }
    });
}

/**
 * The exit codes of plan, apply and verify, for `--help` (docs/bootstrap.md, "Exit codes", says the same): a pipeline
 * must tell "the server differs from the spec" from "the run could not look", so 2 means drift and nothing else.
 */
export const EXIT_CODES_HELP = `
Exit codes:
  0  done: nothing to change (plan), applied (apply), every check passed (verify)
  1  error: bad spec or flags, no or a refused token (403), a node unreachable or answering an error, interrupted
     runs exit 128 + the signal (130 SIGINT, 143 SIGTERM)
  2  drift only: changes pending (plan --detailed-exitcode), excess or missing rights (verify)
`;

/**
 * Vault's CLI exits 2 for any error the server answered; for plan, apply and verify 2 means drift, so a server's
 * refusal (an expired or under-privileged token: 403) or any other error exits 1. ExitWith carries the command's own
 * verdict and passes through; interrupts keep 128 + the signal.
 */
function driftOnly<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof SealkeeperError && err.exitCode === ExitCode.drift) throw withExitCode(err, ExitCode.error);
      throw err;
    }
  };
}

async function loadSpecFromOptions(opts: { file: string } & KubeFlags, io: CliIO): Promise<BootstrapSpec> {
  return (await loadSpecWithCluster(opts, io)).spec;
}

/** The spec, with its kubernetes auth filled from the cluster the flags name (and that cluster, for the reviewer). */
async function loadSpecWithCluster(
  opts: { file: string } & KubeFlags,
  io: CliIO,
): Promise<{ spec: BootstrapSpec; cluster?: KubeconfigCluster }> {
  const { loadSpec } = await import("../../bootstrap/spec.js");
  const { resolve } = await import("node:path");
  const spec = loadSpec(resolve(io.cwd, opts.file), { env: io.env });
  const cluster = await clusterFromFlags(opts, io);
  if (cluster) await fillSpecFromCluster(spec, cluster, opts, io);
  return { spec, cluster };
}

async function withClient(opts: BootstrapOpts, io: CliIO, fn: (client: VaultClient) => Promise<void>): Promise<void> {
  const client = await clientFromOptions(opts, io);
  try {
    if (!client.hasToken()) {
      const { missingTokenMessage } = await import("../../vault/env.js");
      throw new UsageError(missingTokenMessage(client.tokenSource));
    }
    // a token nobody passed on purpose is worth a word: it acts with whatever rights the last login had
    if (client.tokenSource === "~/.vault-token") {
      io.stderr.write("note: using the token in ~/.vault-token (BAO_TOKEN and VAULT_TOKEN are not set)\n");
    }
    await noteStandby(client, io);
    await fn(client);
  } finally {
    await client.close();
  }
}

/**
 * Plan, apply and verify decide from what they read. OpenBao 2.x standbys answer reads from their own replica
 * (Vault's standbys forward them), and that replica trails the active node for a moment after every write: measured on
 * a 3-node OpenBao 2.6.2 cluster, a policy read back through the standby that wrote it was missing 6 times in 60, a
 * new mount 4 times in 20 (docs/servers.md). Say so when the node is an OpenBao standby, naming the active node, so
 * that a plan right after an apply that still lists changes is read for what it is. A Vault standby forwards reads
 * and writes to the active node: nothing to say. A node that cannot answer sys/leader gets no note.
 */
async function noteStandby(client: VaultClient, io: CliIO): Promise<void> {
  const standby = await openbaoStandby(client);
  if (!standby) return;
  const active = standby.leaderAddress ? ` (the active node is ${standby.leaderAddress})` : "";
  io.stderr.write(
    `note: ${client.address} is an OpenBao standby${active}; OpenBao standbys answer reads from their own replica, ` +
      "which can trail the active node for a moment after a write: point plan and verify at the active node for " +
      "read-your-writes\n",
  );
}

const standbyLooks = new WeakMap<VaultClient, Promise<{ leaderAddress: string } | undefined>>();

/**
 * Whether the node is an OpenBao standby (sys/leader, then sys/health for the server kind), asked once per client:
 * the standby note and the apply lock both need it. Undefined for an active node, a Vault standby (it forwards), or a
 * node that cannot say.
 */
function openbaoStandby(client: VaultClient): Promise<{ leaderAddress: string } | undefined> {
  let look = standbyLooks.get(client);
  if (!look) {
    look = (async () => {
      const leader = await client.leader().catch(() => undefined);
      if (!leader?.haEnabled || leader.isSelf) return undefined;
      const { serverKindOf } = await import("../../vault/server-kind.js");
      if ((await serverKindOf(client).catch(() => undefined)) !== "openbao") return undefined;
      return { leaderAddress: leader.leaderAddress ?? "" };
    })();
    standbyLooks.set(client, look);
  }
  return look;
}

/**
 * Observes the server, then (with --create-reviewer) the cluster's reviewer, and plans both. The spec's reviewed
 * methods are marked for the planner: kept, or a new token (a stand-in until apply mints it).
 */
async function computePlan(
  client: VaultClient,
  spec: BootstrapSpec,
  opts: BootstrapOpts,
  concurrency = 8,
  cluster?: KubeconfigCluster,
  reviewerOpts?: ReviewerOptions,
) {
  const { observeState } = await import("../../bootstrap/observe.js");
  const observed = await observeState(client, spec, { concurrency });
  let reviewer: ReviewerPlan | undefined;
  if (cluster && reviewerOpts) {
    const { clusterSource } = await import("../../bootstrap/kubeconfig.js");
    const { decideReviewer, markSpec, observeReviewer } = await import("../../bootstrap/kube-reviewer.js");
    const k8s = await observeReviewer(cluster, reviewerOpts);
    reviewer = decideReviewer(spec, observed, k8s, reviewerOpts, `${clusterSource(cluster)}, ${cluster.server}`);
    markSpec(spec, reviewer);
  }
  return { result: await planBootstrapNow(spec, observed, opts), observed, reviewer };
}

async function planBootstrapNow(
  spec: BootstrapSpec,
  observed: import("../../bootstrap/plan.js").ObservedState,
  opts: BootstrapOpts,
): Promise<Plan> {
  const { planBootstrap } = await import("../../bootstrap/plan.js");
  return planBootstrap(spec, observed, { purge: opts.purge });
}

/** The plan's stand-in for the reviewer token must never reach the server. */
async function assertNoPendingToken(plan: Plan): Promise<void> {
  const { PENDING_TOKEN } = await import("../../bootstrap/kube-reviewer.js");
  if (plan.changes.some((c) => c.requests.some((r) => r.body?.token_reviewer_jwt === PENDING_TOKEN)))
    throw new Error("internal: the plan still holds the reviewer token's stand-in");
}

async function printPlan(
  io: CliIO,
  format: "table" | "json",
  plan: Plan,
  strict = false,
  reviewer?: ReviewerPlan,
): Promise<void> {
  const { planToJson, renderPlan } = await import("../../bootstrap/plan.js");
  const k = reviewer ? await import("../../bootstrap/kube-reviewer.js") : undefined;
  if (format === "json") {
    const json = planToJson(plan) as Record<string, unknown>;
    writeJson(io, reviewer && k ? { ...json, kubernetes: k.reviewerToJson(reviewer) } : json);
    return;
  }
  if (reviewer && k) io.stdout.write(k.renderReviewerPlan(reviewer, paint(useColor(io))));
  io.stdout.write(renderPlan(plan, paint(useColor(io))));
  writeFindings(io, plan.findings, strict);
}

function writeFindings(io: CliIO, findings: LintFinding[], asErrors: boolean): void {
  if (findings.length === 0) return;
  const label = asErrors ? "error" : "warning";
  for (const f of findings) {
    io.stderr.write(terminalSafe(`${label}: ${f.file}:${f.line}: ${f.rule}: ${f.message} (fix: ${f.fix})\n`));
  }
}

function failOnFindings(plan: Plan, opts: BootstrapOpts): void {
  if (opts.strict && plan.findings.length > 0) {
    throw new UsageError(`lint reported ${plan.findings.length} finding(s) and --strict is set`);
  }
}

/**
 * In JSON mode stdout holds one document at the end; a long apply says how far it is on stderr instead, so that a CI
 * log is not silent for minutes: a line every 100 steps or 10 s, whichever comes first, and one at the end.
 */
function progressLine(io: CliIO, total: number, every = 100, everyMs = 10_000): () => void {
  let done = 0;
  let lastAt = Date.now();
  return () => {
    done++;
    const now = Date.now();
    if (done % every === 0 || now - lastAt >= everyMs || done === total) {
      lastAt = now;
      io.stderr.write(`progress: ${done} of ${total} steps applied\n`);
    }
  };
}

async function parseLockTimeout(raw: string | undefined): Promise<number> {
  if (raw === undefined) return 0;
  const { parseDurationMs } = await import("../../vault/env.js");
  return parseDurationMs(raw, "--lock-timeout");
}

/** The server-side apply lock (src/bootstrap/lock.ts), announced when it waits or takes over a dead holder's. */
async function takeApplyLock(client: VaultClient, specFile: string, waitMs: number, io: CliIO) {
  // An OpenBao standby answers reads from its own replica, which trails the active node: a check-and-set lock read
  // there can miss the holder's write (docs/servers.md). Through such a node the lock is not taken, and that is said.
  if (await openbaoStandby(client)) {
    io.stderr.write(
      "note: the apply lock is not taken through an OpenBao standby (its reads trail the active node); point " +
        "apply at the active node to keep two applies of this spec apart\n",
    );
    return undefined;
  }
  const { acquireApplyLock, lockKeyFor } = await import("../../bootstrap/lock.js");
  const lock = await acquireApplyLock(client, lockKeyFor(specFile), {
    waitMs,
    onWait: (h) => io.stderr.write(`waiting for the apply lock: held by ${h.owner} since ${h.acquired}\n`),
  });
  if (lock.tookOver) {
    io.stderr.write(
      `note: took over the apply lock of ${lock.tookOver.owner} (expired ${lock.tookOver.expires}: it stopped without releasing it)\n`,
    );
  }
  return lock;
}

function parseConcurrency(raw: string | undefined): number {
  return parseBoundedInt(raw, "--concurrency", 1, 64, 8);
}

/**
 * Before anything is applied: the token must be root. What revoking it leaves is said after the apply (when the
 * spec's auth methods exist), by the revoke itself.
 */
async function preflightRevoke(client: VaultClient): Promise<void> {
  const { lookupRootToken } = await import("../../bootstrap/revoke-root.js");
  await lookupRootToken(client);
}

/** The verify matrix: one line per role and path, then the verdict. */
export function renderVerify(report: VerifyReport, io: CliIO): string {
  const p = paint(useColor(io));
  const rows = report.rows.map((r) => [
    r.role,
    r.path,
    r.kind,
    r.expected.join(","),
    r.actual.join(","),
    r.status === "ok" ? p.green("ok") : p.red(r.status.toUpperCase()),
  ]);
  const bad = report.rows.filter((r) => r.status !== "ok").length;
  const kube = report.kubernetes.map((k) => [
    k.auth,
    k.check,
    k.status === "ok" ? p.green("ok") : k.status === "fail" ? p.red("FAIL") : k.status,
    k.message,
  ]);
  const kubeBad = report.kubernetes.filter((k) => k.status === "fail");
  const verdict =
    bad > 0
      ? `verify FAILED: ${bad} of ${report.rows.length} checks show excess or missing capabilities\n`
      : kubeBad.length > 0
        ? `verify FAILED: ${kubeBad.map((k) => `${k.auth} ${k.check}: ${k.message}`).join("; ")}\n`
        : `verify passed: ${report.rows.length} checks, every role holds exactly what the spec grants\n`;
  return (
    renderTable(["ROLE", "PATH", "KIND", "EXPECTED", "ACTUAL", "RESULT"], rows) +
    (kube.length > 0 ? `\n${renderTable(["AUTH", "KUBERNETES CHECK", "RESULT", "DETAIL"], kube)}` : "") +
    verdict
  );
}

function writeRevokeReport(io: CliIO, r: import("../../bootstrap/revoke-root.js").RevokeResult): void {
  for (const w of r.warnings) io.stderr.write(`warning: ${w}\n`);
  io.stdout.write(`root token revoked; lookup-self now answers ${r.lookupStatusAfter}: the token is gone\n`);
}
