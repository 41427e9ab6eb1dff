import type { Command } from "commander";
import type { LintFinding } from "../../bootstrap/lint.js";
import type { Plan } from "../../bootstrap/plan.js";
import type { BootstrapSpec } from "../../bootstrap/spec.js";
import type { VerifyReport } from "../../bootstrap/verify.js";
import { ExitCode, UsageError } from "../../errors.js";
import type { VaultClient } from "../../vault/client.js";
import { ExitWith } from "../exit.js";
import { parseBoundedInt } from "../flags.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, clientFromOptions, type RawConnectionOpts } from "../options.js";
import { paint, renderTable, resolveFormat, useColor, writeJson } from "../output.js";

export interface ExportOpts extends RawConnectionOpts {
  file: string;
  selfInit?: boolean;
  verifierTokenFile?: string;
  serverVerifierTokenFile?: string;
  verifierTtl: string;
  serverConfig?: string;
  out?: string;
}

interface BootstrapOpts extends RawConnectionOpts {
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
  /** commander's --no-kubernetes */
  kubernetes?: boolean;
  kubeconfig?: string;
  context?: string;
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

  const kubeOptions = (cmd: Command) =>
    cmd
      .option(
        "--kubeconfig <file>",
        "fill kubernetes_host, the CA (and issuer) of the spec's kubernetes auth from this cluster",
      )
      .option("--context <name>", "with --kubeconfig: the context to use (default: its current-context)");

  const plan = kubeOptions(
    specOptions(group.command("plan").description("show what apply would change, field by field")),
  );
  addConnectionOptions(plan);
  plan
    .option("--purge", "also delete policies, roles and auth methods the spec does not name (never root/default/token)")
    .option("--strict", "treat lint findings as errors")
    .option("--detailed-exitcode", "exit 0 when there is nothing to do, 2 when changes are pending, 1 on error")
    .action(async (opts: BootstrapOpts) => {
      const format = resolveFormat(opts.format, io);
      const spec = await loadSpecFromOptions(opts, io);
      await withClient(opts, io, async (client) => {
        const result = await computePlan(client, spec, opts);
        await printPlan(io, format, result, opts.strict);
        failOnFindings(result, opts);
        if (result.conflicts.length > 0) throw new ExitWith(ExitCode.error);
        if (opts.detailedExitcode && result.changes.length > 0) throw new ExitWith(2);
      });
    });

  const apply = kubeOptions(
    specOptions(group.command("apply").description("apply the plan; a second apply writes nothing")),
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
    .action(async (opts: BootstrapOpts) => {
      const format = resolveFormat(opts.format, io);
      const concurrency = parseConcurrency(opts.concurrency);
      const spec = await loadSpecFromOptions(opts, io);
      const { parseSecretIdFlag } = await import("../../bootstrap/secret-id.js");
      const secretIds = (opts.secretId ?? []).map(parseSecretIdFlag);
      await withClient(opts, io, async (client) => {
        const { applyPlan } = await import("../../bootstrap/apply.js");
        const result = await computePlan(client, spec, opts, concurrency);
        if (format === "table") await printPlan(io, format, result, opts.strict);
        failOnFindings(result, opts);
        if (opts.revokeRootToken) await preflightRevoke(client);
        const applied = await applyPlan(client, result, {
          concurrency,
          onStep: (c) => {
            if (format === "table") io.stderr.write(`applied ${c.id}\n`);
          },
        });
        let delivered: import("../../bootstrap/secret-id.js").DeliveredSecretId[] = [];
        if (secretIds.length > 0) {
          const { deliverSecretIds } = await import("../../bootstrap/secret-id.js");
          delivered = await deliverSecretIds(client, spec, secretIds, opts.secretIdOut ?? ".", io.cwd);
        }
        if (format === "json") {
          const { planToJson } = await import("../../bootstrap/plan.js");
          writeJson(io, {
            plan: planToJson(result),
            applied: applied.applied,
            requests: applied.requests,
            ...(delivered.length > 0 ? { secretIds: delivered } : {}),
          });
        } else if (result.changes.length > 0) {
          io.stdout.write(`Apply complete: ${applied.applied.length} step(s), ${applied.requests} write request(s).\n`);
        }
        if (format === "table") {
          for (const d of delivered) {
            io.stdout.write(`secret_id for ${d.role} sealed to ${d.recipient}: ${d.file} (accessor ${d.accessor})\n`);
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
      });
    });

  const verify = kubeOptions(
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
    .action(async (opts: BootstrapOpts) => {
      const format = resolveFormat(opts.format, io);
      const concurrency = parseConcurrency(opts.concurrency);
      const spec = await loadSpecFromOptions(opts, io);
      await withClient(opts, io, async (client) => {
        const { verifyBootstrap, verifyToJson } = await import("../../bootstrap/verify.js");
        const report = await verifyBootstrap(client, spec, {
          concurrency,
          tokenRole: opts.tokenRole,
          kubernetes: opts.kubernetes !== false,
        });
        if (format === "json") writeJson(io, verifyToJson(report));
        else io.stdout.write(renderVerify(report, io));
        if (!report.ok) throw new ExitWith(ExitCode.remote);
      });
    });

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

async function loadSpecFromOptions(
  opts: { file: string; kubeconfig?: string; context?: string },
  io: CliIO,
): Promise<BootstrapSpec> {
  const { loadSpec } = await import("../../bootstrap/spec.js");
  const { resolve } = await import("node:path");
  const spec = loadSpec(resolve(io.cwd, opts.file), { env: io.env });
  if (opts.context && !opts.kubeconfig) throw new UsageError("--context needs --kubeconfig");
  if (opts.kubeconfig) {
    const { fillFromKubeconfig } = await import("../../bootstrap/kubeconfig.js");
    for (const note of await fillFromKubeconfig(spec, resolve(io.cwd, opts.kubeconfig), opts.context)) {
      io.stderr.write(`${note}\n`);
    }
  }
  return spec;
}

async function withClient(opts: BootstrapOpts, io: CliIO, fn: (client: VaultClient) => Promise<void>): Promise<void> {
  const client = await clientFromOptions(opts, io);
  try {
    if (!client.hasToken()) {
      throw new UsageError("no token: set VAULT_TOKEN or BAO_TOKEN (or log in so that ~/.vault-token exists)");
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
 * new mount 4 times in 20 (docs/servers.md). Say so when the node is a standby, so that a plan right after an apply
 * that still lists changes is read for what it is. A node that cannot answer sys/leader gets no note.
 */
async function noteStandby(client: VaultClient, io: CliIO): Promise<void> {
  const leader = await client.leader().catch(() => undefined);
  if (!leader?.haEnabled || leader.isSelf) return;
  const active = leader.leaderAddress ? ` (the active node is ${leader.leaderAddress})` : "";
  io.stderr.write(
    `note: ${client.address} is a standby${active}; OpenBao standbys answer reads from their own replica, which can ` +
      "trail the active node for a moment after a write: point plan and verify at the active node for read-your-writes\n",
  );
}

async function computePlan(client: VaultClient, spec: BootstrapSpec, opts: BootstrapOpts, concurrency = 8) {
  const { observeState } = await import("../../bootstrap/observe.js");
  const { planBootstrap } = await import("../../bootstrap/plan.js");
  const observed = await observeState(client, spec, { concurrency });
  return planBootstrap(spec, observed, { purge: opts.purge });
}

async function printPlan(io: CliIO, format: "table" | "json", plan: Plan, strict = false): Promise<void> {
  const { planToJson, renderPlan } = await import("../../bootstrap/plan.js");
  if (format === "json") {
    writeJson(io, planToJson(plan));
    return;
  }
  io.stdout.write(renderPlan(plan, paint(useColor(io))));
  writeFindings(io, plan.findings, strict);
}

function writeFindings(io: CliIO, findings: LintFinding[], asErrors: boolean): void {
  if (findings.length === 0) return;
  const label = asErrors ? "error" : "warning";
  for (const f of findings) {
    io.stderr.write(`${label}: ${f.file}:${f.line}: ${f.rule}: ${f.message} (fix: ${f.fix})\n`);
  }
}

function failOnFindings(plan: Plan, opts: BootstrapOpts): void {
  if (opts.strict && plan.findings.length > 0) {
    throw new UsageError(`lint reported ${plan.findings.length} finding(s) and --strict is set`);
  }
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
