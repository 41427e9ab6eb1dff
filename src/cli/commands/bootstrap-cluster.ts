import { resolve } from "node:path";
import type { Command } from "commander";
import type { BootstrapClusterResult } from "../../ceremony/bootstrap-cluster.js";
import type { Transcript } from "../../ceremony/transcript.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, addFormatOption, clientsFromOptions } from "../options.js";
import { resolveFormat, terminalSafe, writeJson } from "../output.js";

/** `bootstrap cluster`: the scripted bootstrap in one command (added to the `bootstrap` group). */
export function registerBootstrapCluster(program: Command, io: CliIO): void {
  const group =
    program.commands.find((c) => c.name() === "bootstrap") ??
    program.command("bootstrap").description("configure a cluster from a spec file");
  const cmd = group
    .command("cluster")
    .description(
      "blank nodes to initialised (shares sealed to the operators), unsealed, configured, verified and " +
        "root-revoked, in one scripted run",
    )
    .requiredOption("--ceremony <file>", "ceremony file: shares, threshold, operators, rootToken.recipient")
    .requiredOption("-f, --file <file>", "bootstrap spec (YAML)")
    .option("-o, --out <dir>", "ceremony output directory (default: the ceremony file's out)")
    .option("--transcript <file>", "ceremony transcript (default: <out>/transcript.jsonl)")
    .option("--concurrency <n>", "bootstrap requests in flight at once (default 8)")
    .option("--allow-no-audit", "revoke the root token even when no audit device is enabled")
    .option(
      "--no-kubernetes",
      "do not check the kubernetes auth methods' API servers (reviewer, CA, issuer) from here",
    );
  addConnectionOptions(cmd, { multi: true });
  addFormatOption(cmd);
  cmd.action(async (opts) => {
    const format = resolveFormat(opts.format, io);
    const { readCeremonyFile } = await import("../../ceremony/ceremony-file.js");
    const { loadSpec } = await import("../../bootstrap/spec.js");
    const ceremony = readCeremonyFile(resolve(io.cwd, opts.ceremony));
    const spec = loadSpec(resolve(io.cwd, opts.file), { env: io.env });
    const { parseBoundedInt } = await import("../flags.js");
    const concurrency = parseBoundedInt(opts.concurrency, "--concurrency", 1, 64, 8);
    const address = opts.address ?? (ceremony.address ? [ceremony.address] : undefined);
    const clients = await clientsFromOptions({ ...opts, address }, io);
    for (const c of clients) c.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
    const out = resolve(
      io.cwd,
      opts.out ?? ceremony.out ?? `sealkeeper-bootstrap-${new Date().toISOString().replace(/[:.]/g, "-")}`,
    );
    const { ShareStore } = await import("../../store/share-store.js");
    const { Transcript: TranscriptClass } = await import("../../ceremony/transcript.js");
    const { runBootstrapCluster } = await import("../../ceremony/bootstrap-cluster.js");
    const transcriptPath = resolve(io.cwd, opts.transcript ?? ceremony.transcript ?? resolve(out, "transcript.jsonl"));
    let transcript: Transcript | undefined;
    try {
      const result = await runBootstrapCluster({
        clients,
        ceremony,
        spec,
        store: new ShareStore(out),
        concurrency,
        allowNoAudit: Boolean(opts.allowNoAudit),
        kubernetes: opts.kubernetes !== false,
        log: (line) => io.stderr.write(`${terminalSafe(line)}\n`),
        pendingDir: (await import("../../ceremony/pending.js")).pendingDir(io.env),
        waitingIntervalMs: io.stderrIsTTY ? 5_000 : 30_000,
        transcriptPath,
        get transcript() {
          // opened on first use: the default output directory exists only after init's pre-flight
          transcript ??= TranscriptClass.open(transcriptPath);
          return transcript;
        },
      });
      // a rerun that found the work done appends nothing: its JSON still names the transcript and its last hash
      const { existsSync } = await import("node:fs");
      const t =
        (transcript as Transcript | undefined) ??
        (existsSync(transcriptPath) ? TranscriptClass.open(transcriptPath) : undefined);
      if (format === "json") {
        writeJson(io, { ...result, ...(t ? { transcript: { path: t.path, lastHash: t.lastHash } } : {}) });
      } else io.stdout.write(renderResult(result));
      if (t) io.stderr.write(`transcript: ${t.path} (last hash ${t.lastHash})\n`);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
}

function renderResult(r: BootstrapClusterResult): string {
  const init = `${r.init.kind} shares ${r.init.threshold} of ${r.init.shares}, sealed to the operators in ${r.init.dir}`;
  const verified = r.verified
    ? `verified: ${r.verified.checks} checks, every role holds exactly what the spec grants` +
      (r.verified.kubernetes.mode === "skipped"
        ? " (kubernetes API servers not checked: --no-kubernetes)"
        : r.verified.kubernetes.unreachable > 0
          ? ` (${r.verified.kubernetes.unreachable} kubernetes check(s) could not reach the API server from here)`
          : "")
    : "verified: not run (no token: give a verifier token in VAULT_TOKEN to verify)";
  if (r.outcome === "already-done") {
    return [
      `already bootstrapped, nothing changed: ${init}`,
      verified,
      `root token revoked earlier (accessor ${r.rootRevoked.accessor}${r.rootRevoked.at ? `, ${r.rootRevoked.at}` : ""})`,
      "",
    ].join("\n");
  }
  return [
    r.outcome === "resumed" ? `initialised earlier (resumed): ${init}` : `initialised: ${init}`,
    r.outcome === "resumed"
      ? "unsealed: earlier"
      : r.unseal
        ? `unsealed: ${r.unseal.nodes.length} node(s) with ${r.unseal.sharesUsed} shares`
        : "unsealed: by the seal (auto-unseal)",
    `applied: ${r.applied.steps} step(s), ${r.applied.requests} write request(s) on ${r.activeNode}`,
    verified,
    `root token revoked (accessor ${r.rootRevoked.accessor}); lookup-self now answers ${r.rootRevoked.lookupStatusAfter}`,
    "",
  ].join("\n");
}
