import { resolve } from "node:path";
import { type Command, Option } from "commander";
import type { AwsKmsSealOptions, SealTarget, StaticCredentials } from "../../autounseal/awskms-config.js";
import type { KmsCheckReport } from "../../autounseal/validate.js";
import { UsageError } from "../../errors.js";
import { parseSeconds } from "../flags.js";
import { type CliIO, readAllStdin } from "../io.js";
import { addConnectionOptions, addFormatOption, clientsFromOptions } from "../options.js";
import { paint, renderTable, resolveFormat, useColor, writeJson } from "../output.js";
import { addShareInputOptions, shareSourceFromOptions } from "../share-input.js";

const ARTIFACTS = ["hcl", "helm", "iam", "key-policy"] as const;
type Artifact = (typeof ARTIFACTS)[number];
const FILE_NAMES: Record<Artifact, string> = {
  hcl: "seal-awskms.hcl",
  helm: "values-awskms.yaml",
  iam: "iam-policy.json",
  "key-policy": "key-policy-statement.json",
};

export function registerAutounseal(program: Command, io: CliIO): void {
  const group = program
    .command("autounseal")
    .description("AWS KMS auto-unseal: generate and check the seal configuration, migrate a Shamir cluster");
  registerAwsKms(group, io);
  registerMigrate(group, io);
}

function registerAwsKms(group: Command, io: CliIO): void {
  const cmd = group
    .command("awskms")
    .description(
      'generate the seal "awskms" stanza, Helm values and IAM policy; --validate checks the key live ' +
        "(exit 0 ok, 2 the key or its permissions are wrong, 1 local error or KMS unreachable)",
    )
    .option("--region <region>", "AWS region of the key (default: AWS_REGION)")
    .option("--key-id <id>", "key id, key ARN, alias/NAME or alias ARN")
    .option("--endpoint <url>", "custom KMS endpoint (VPC endpoint, FIPS, or an emulator)")
    .option("--role-arn <arn>", "IAM role the server runs as (IRSA: annotated on the service account)")
    .option("--role-arn-in-stanza", "also put role_arn in the stanza (the server then assumes the role itself)")
    .option("--account-id <id>", "AWS account id, to build the key ARN for --output iam from a key id or alias")
    .addOption(
      new Option("--output <kinds>", "what to write: hcl, helm, iam, key-policy, all (comma-separated)").default("hcl"),
    )
    .option("--out <dir>", "write one file per artifact into this directory (never overwrites) instead of stdout")
    .addOption(
      new Option("--target <server>", "server the artifacts are for").choices(["vault", "openbao"]).default("vault"),
    )
    .option("--plugin-sha256 <hex>", "OpenBao 2.7+: sha256 of the awskms KMS plugin binary (writes the plugin block)")
    .option("--plugin-command <name>", "OpenBao 2.7+: the plugin binary's name", "openbao-plugin-kms-aws")
    .option("--replicas <n>", "Helm: number of server pods", "3")
    .option(
      "--release <name>",
      "Helm: release name (pods are NAME-0..N-1 when NAME contains the chart's name, else NAME-CHART-0..; default: the target's name)",
    )
    .option("--helm-tls-secret <name>", "Helm: Kubernetes TLS secret (tls.crt, tls.key, ca.crt) for the listener")
    .option(
      "--static-credentials",
      "put AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (from the environment) into the stanza; the file is then secret",
    )
    .option(
      "--print-credentials",
      "with --static-credentials and no --out: print the stanza, secret key and all, on stdout (explicitly unsafe)",
    )
    .option("--validate", "check the key live with the AWS SDK and the standard credential chain")
    .option("--create-key", "create a suitable key (symmetric, rotation on) for a fresh setup; needs --alias")
    .option("--alias <name>", "alias for --create-key, e.g. alias/vault-unseal");
  addFormatOption(cmd);
  cmd.action(async (opts, command: Command) => {
    const outputGiven = command.getOptionValueSource("output") === "cli";
    const region: string | undefined = opts.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION;
    if (!region) throw new UsageError("--region is required (or set AWS_REGION)");
    if (opts.createKey && !opts.alias) throw new UsageError("--create-key needs --alias alias/NAME");
    if (opts.alias && !opts.createKey) throw new UsageError("--alias is only used with --create-key");
    if (opts.createKey && opts.keyId) throw new UsageError("give either --key-id or --create-key, not both");
    if (!opts.createKey && !opts.keyId) throw new UsageError("--key-id is required (or --create-key --alias NAME)");
    if (opts.alias && !/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(opts.alias)) {
      throw new UsageError(`alias ${JSON.stringify(opts.alias)} must look like alias/NAME (letters, digits, / _ -)`);
    }
    if (opts.alias?.startsWith("alias/aws/")) throw new UsageError("aliases under alias/aws/ are reserved for AWS");
    const kinds = parseKinds(opts.output);
    if (kinds.length > 1 && !opts.out) {
      throw new UsageError("several artifacts need --out DIR (one file each); or pick one with --output");
    }
    if (opts.output.split(",").includes("all") && !opts.roleArn) {
      // the key-policy statement needs a principal: leave it out of "all" rather than fail the rest
      kinds.splice(kinds.indexOf("key-policy"), 1);
      io.stderr.write("note: no --role-arn, so no key-policy statement (it names the role)\n");
    }
    const replicas = Number(opts.replicas);

    const credentials = opts.staticCredentials ? staticCredentialsFromEnv(io) : undefined;
    if (opts.printCredentials && (!credentials || opts.out)) {
      throw new UsageError("--print-credentials goes with --static-credentials and without --out");
    }
    // the stanza (alone, or inside the Helm values) then holds the secret key: never on stdout unless asked
    const secretOnStdout = credentials && !opts.out && kinds.some((k) => k === "hcl" || k === "helm");
    if (secretOnStdout && !opts.printCredentials) {
      throw new UsageError(
        "with --static-credentials the stanza holds the AWS secret key: refusing to print it on stdout " +
          "(terminals, logs and CI output keep it)",
        { hint: "give --out DIR (files 0600 in a 0700 directory), or --print-credentials to print it anyway" },
      );
    }
    const target = opts.target as SealTarget;
    const seal: AwsKmsSealOptions = {
      region,
      keyId: opts.keyId ?? opts.alias,
      endpoint: opts.endpoint,
      roleArn: opts.roleArn,
      roleArnInStanza: Boolean(opts.roleArnInStanza),
      credentials,
      target,
      openbaoPlugin: opts.pluginSha256 ? { command: opts.pluginCommand, sha256: opts.pluginSha256 } : undefined,
    };
    const { checkAwsKmsOptions, findSealOverrides } = await import("../../autounseal/awskms-config.js");
    checkAwsKmsOptions(seal);
    for (const w of findSealOverrides(io.env, region)) io.stderr.write(`warning: ${w}\n`);
    if (target === "openbao" && !seal.openbaoPlugin) {
      io.stderr.write(
        "note: OpenBao 2.7+ runs awskms as an external KMS plugin: pass --plugin-sha256 to write its plugin block\n",
      );
    }

    // SDK credentials: static ones from the environment step of the chain when present (so an injected env is
    // honoured), else the SDK's own chain (shared files, web identity, ECS, IMDS).
    const sdkCredentials = credentials ?? envCredentials(io);
    const conn = { region, endpoint: opts.endpoint, credentials: sdkCredentials };
    let keyArn: string | undefined;
    let report: KmsCheckReport | undefined;
    const humanOut = outputGiven && !opts.out ? io.stderr : io.stdout;
    if (opts.createKey) {
      const { createSealKey } = await import("../../autounseal/validate.js");
      const created = await createSealKey(conn, opts.alias);
      keyArn = created.keyArn;
      humanOut.write(`created key ${created.keyArn} as ${created.alias} (rotation enabled)\n`);
    }
    if (opts.validate || opts.createKey) {
      const { checkKmsKey } = await import("../../autounseal/validate.js");
      report = await checkKmsKey(conn, seal.keyId);
      keyArn = report.keyArn;
      const format = resolveFormat(opts.format, io);
      if (format === "json" && humanOut === io.stdout) writeJson(io, report);
      else humanOut.write(renderReport(report, io));
    }
    // With --validate/--create-key alone, the report is the output; artifacts only when asked for.
    if ((opts.validate || opts.createKey) && !outputGiven && !opts.out) return;

    const artifacts = await renderArtifacts(kinds, seal, {
      accountId: opts.accountId,
      keyArn,
      replicas,
      release: opts.release,
      tlsSecret: opts.helmTlsSecret,
    });
    const secret = credentials !== undefined;
    if (credentials) {
      io.stderr.write(
        opts.out
          ? "warning: the stanza holds static AWS credentials: keep the files secret (written 0600 in a 0700 directory); prefer a role\n"
          : "warning: the stanza printed on stdout holds static AWS credentials (--print-credentials): whatever keeps that output must be kept secret; prefer a role\n",
      );
    }
    if (opts.out) {
      const { ShareStore } = await import("../../store/share-store.js");
      // static credentials in the stanza make the set secret: 0600 files in a 0700 directory
      const written = await new ShareStore(resolve(io.cwd, opts.out)).writeNewFiles(artifacts, {
        mode: secret ? 0o600 : 0o644,
        dirMode: secret ? 0o700 : 0o755,
      });
      for (const f of written) io.stdout.write(`wrote ${f.path}\n`);
      return;
    }
    io.stdout.write(artifacts[0]!.content);
  });
}

function parseKinds(value: string): Artifact[] {
  const parts = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (parts.includes("all")) return [...ARTIFACTS];
  for (const p of parts) {
    if (!(ARTIFACTS as readonly string[]).includes(p)) {
      throw new UsageError(`--output ${JSON.stringify(p)} is not one of hcl, helm, iam, key-policy, all`);
    }
  }
  if (parts.length === 0) throw new UsageError("--output needs at least one of hcl, helm, iam, key-policy, all");
  return [...new Set(parts)] as Artifact[];
}

async function renderArtifacts(
  kinds: Artifact[],
  seal: AwsKmsSealOptions,
  opts: { accountId?: string; keyArn?: string; replicas: number; release?: string; tlsSecret?: string },
): Promise<{ kind: Artifact; name: string; content: string }[]> {
  const out: { kind: Artifact; name: string; content: string }[] = [];
  for (const kind of kinds) {
    let content: string;
    if (kind === "hcl") {
      const { renderSealStanza } = await import("../../autounseal/awskms-config.js");
      content = renderSealStanza(seal);
    } else if (kind === "helm") {
      const { renderHelmValues } = await import("../../autounseal/helm.js");
      content = renderHelmValues(seal, { replicas: opts.replicas, release: opts.release, tlsSecret: opts.tlsSecret });
    } else if (kind === "iam") {
      const { buildIamPolicy, renderJson } = await import("../../autounseal/iam.js");
      // a live check told us the key ARN: use it for the tightest resource
      content = renderJson(buildIamPolicy(opts.keyArn ? { ...seal, keyId: opts.keyArn } : seal, opts.accountId));
    } else {
      const { buildKeyPolicyStatement, renderJson } = await import("../../autounseal/iam.js");
      content = renderJson(buildKeyPolicyStatement(seal));
    }
    out.push({ kind, name: FILE_NAMES[kind], content });
  }
  return out;
}

function staticCredentialsFromEnv(io: CliIO): StaticCredentials {
  const accessKey = io.env.AWS_ACCESS_KEY_ID;
  const secretKey = io.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKey || !secretKey) {
    throw new UsageError("--static-credentials reads AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both");
  }
  return { accessKey, secretKey, sessionToken: io.env.AWS_SESSION_TOKEN || undefined };
}

function envCredentials(io: CliIO): StaticCredentials | undefined {
  if (!io.env.AWS_ACCESS_KEY_ID || !io.env.AWS_SECRET_ACCESS_KEY) return undefined;
  return staticCredentialsFromEnv(io);
}

function renderReport(report: KmsCheckReport, io: CliIO): string {
  const p = paint(useColor(io));
  return renderTable(
    ["CHECK", "RESULT", "DETAIL"],
    report.checks.map((c) => [c.name, c.ok ? p.green("ok") : p.red("failed"), c.detail]),
  );
}

function registerMigrate(group: Command, io: CliIO): void {
  const cmd = group
    .command("migrate")
    .description(
      "migrate a running Shamir cluster to awskms: prints the config change per node, then unseals each restarted " +
        "node with the old shares and migrate=true (standbys first, the active last) and waits until the migration " +
        "is done; the old shares become the recovery keys (exit 0 done, 2 a node refused or did not finish, 1 error)",
    );
  addConnectionOptions(cmd, { multi: true });
  addShareInputOptions(cmd);
  addFormatOption(cmd);
  cmd
    .option("--stanza-file <file>", "the seal stanza to add (e.g. from autounseal awskms --out); else built from:")
    .option("--region <region>", "AWS region of the key")
    .option("--key-id <id>", "key id, key ARN, alias/NAME or alias ARN")
    .option("--endpoint <url>", "custom KMS endpoint")
    .option("--node-timeout <seconds>", "how long to wait for each node to come back with the new seal", "900")
    .option("--manifest <file>", "the init ceremony's manifest.json: a migration record is written beside it")
    .action(async (opts) => {
      const format = resolveFormat(opts.format, io);
      const stanza = await migrationStanza(opts, io);
      const nodeTimeoutMs = parseSeconds(opts.nodeTimeout, "--node-timeout");
      const clients = await clientsFromOptions(opts, io);
      for (const c of clients) c.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
      try {
        const { describeConfigChange, planMigration, runMigration, writeMigrationRecord } = await import(
          "../../autounseal/migrate.js"
        );
        const plan = await planMigration(clients);
        // the instructions go where a person reads them; stdout stays for the result in --format json
        (format === "json" ? io.stderr : io.stdout).write(describeConfigChange(plan, stanza));
        for (const w of plan.warnings) io.stderr.write(`warning: ${w}\n`);
        const source = await shareSourceFromOptions(opts, io, () => readAllStdin(io));
        const { collectDistinctShares } = await import("../../ceremony/quorum.js");
        const shares = await collectDistinctShares(source, plan.threshold, "the migration");
        // From the first share sent with migrate=true until the migration record is written, the cluster is between
        // two seals: SIGINT/SIGTERM/SIGHUP are deferred (src/util/critical-section.ts) so that this run sees every
        // node through and records the result; a run stopped anyway is resumed by running the command again.
        const { enterCriticalSection } = await import("../../util/critical-section.js");
        let leave: (() => void) | undefined;
        try {
          const report = await runMigration({
            clients,
            plan,
            shares,
            nodeTimeoutMs,
            // a line every 5 s on a terminal; a CI log gets one every 30 s
            waitingIntervalMs: io.stderrIsTTY ? 5_000 : 30_000,
            onEvent: (e) => {
              if (e.kind === "waiting") {
                io.stderr.write(`waiting for ${e.address} (${e.role}) to come back with the new seal...\n`);
              } else if (e.kind === "unsealing") {
                leave ??= enterCriticalSection({
                  doing: "the seal migration is under way (nodes are being moved to the new seal)",
                  wouldLose: "this run's record of the migration (the cluster would be left between two seals)",
                  say: (line) => io.stderr.write(`${line}\n`),
                });
                io.stderr.write(`${e.address}: in migration mode, submitting the old shares with migrate=true\n`);
              } else if (e.kind === "completing") {
                io.stderr.write(
                  `the completing share goes to ${e.address}: waiting for its answer with no time limit (the node moves to the new seal as it answers)\n`,
                );
              } else if (e.kind === "answer-waiting") {
                io.stderr.write(
                  `still waiting for ${e.address} to answer the migrate=true share (${Math.round(e.waitedMs / 1000)} s)\n`,
                );
              } else if (e.kind === "node-done") {
                io.stderr.write(`${e.address}: ${e.how.replace(/-/g, " ")}${e.detail ? `; ${e.detail}` : ""}\n`);
              }
            },
          });
          let record: string | undefined;
          if (opts.manifest) record = await writeMigrationRecord(resolve(io.cwd, opts.manifest), report);
          if (format === "json") {
            writeJson(io, { ...report, record: record ?? null });
          } else {
            io.stdout.write(
              renderTable(
                ["ADDRESS", "SEAL", "RECOVERY SEAL", "HOW"],
                report.nodes.map((n) => [n.address, n.type, String(n.recoverySeal), n.how.replace(/-/g, " ")]),
              ),
            );
            io.stdout.write(
              `migration done: the old unseal shares are now the recovery keys (${report.recoveryThreshold} of ` +
                `${report.recoveryShares}); they authorise generate-root and rekey, they cannot unseal\n`,
            );
            if (record) io.stdout.write(`migration record: ${record}\n`);
          }
        } finally {
          leave?.();
        }
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });
}

async function migrationStanza(
  opts: { stanzaFile?: string; region?: string; keyId?: string; endpoint?: string },
  io: CliIO,
): Promise<string> {
  if (opts.stanzaFile) {
    if (opts.keyId || opts.region) throw new UsageError("give either --stanza-file or --region/--key-id, not both");
    const { readFile } = await import("node:fs/promises");
    let text: string;
    try {
      text = await readFile(resolve(io.cwd, opts.stanzaFile), "utf8");
    } catch (err) {
      throw new UsageError(
        `cannot read stanza file ${opts.stanzaFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    if (!/^\s*seal\s+"awskms"\s*\{/m.test(text)) {
      throw new UsageError(`stanza file ${opts.stanzaFile} holds no seal "awskms" block`);
    }
    return text;
  }
  const region = opts.region ?? io.env.AWS_REGION;
  if (!region || !opts.keyId) throw new UsageError("give --stanza-file, or --region and --key-id to build the stanza");
  const { renderSealStanza } = await import("../../autounseal/awskms-config.js");
  return renderSealStanza({ region, keyId: opts.keyId, endpoint: opts.endpoint, target: "vault" });
}
