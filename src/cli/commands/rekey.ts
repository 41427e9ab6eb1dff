import { resolve } from "node:path";
import type { Command } from "commander";
import type { RekeyEvent, RekeyMode, RekeyReport } from "../../ceremony/rekey.js";
import type { Transcript as TranscriptT } from "../../ceremony/transcript.js";
import { ExitCode, UsageError } from "../../errors.js";
import { ExitWith } from "../exit.js";
import { collect, int, parseEndpoint, parseSealShares } from "../flags.js";
import { type CliIO, readAllStdin } from "../io.js";
import { addConnectionOptions, addFormatOption, clientFromOptions, type RawConnectionOpts } from "../options.js";
import { type Paint, paint, renderTable, resolveFormat, terminalSafe, useColor, writeJson } from "../output.js";
import { addShareInputOptions, type ShareInputOptions, shareSourceFromOptions } from "../share-input.js";

interface RekeyOpts extends RawConnectionOpts, ShareInputOptions {
  shares?: number;
  threshold?: number;
  operator?: string[];
  sealShares?: string;
  out?: string;
  skipVerification?: boolean;
  resume?: boolean;
  verify?: boolean;
  cancel?: boolean;
  status?: boolean;
  nonce?: string;
  endpoint?: string;
  transcript?: string;
  format?: string;
  allowInsecureHttp?: boolean;
}

export function registerRekey(program: Command, io: CliIO): void {
  const cmd = program
    .command("rekey")
    .description(
      "re-issue the unseal shares (recovery shares under auto-unseal) to new operators: a quorum of OLD shares " +
        "authorises it, the new shares are sealed and written like init's, and they take effect only once a threshold " +
        "of them is verified (exit 0 done, 2 waiting for more shares or verification, 1 error)",
    );
  addConnectionOptions(cmd);
  addShareInputOptions(cmd);
  addFormatOption(cmd);
  cmd
    .option("-n, --shares <n>", "number of new shares (default: one per --operator)", int("--shares"))
    .option("-t, --threshold <n>", "new threshold (default 3, or the share count when lower)", int("--threshold"))
    .option("--operator <name=type:key>", "a new share holder: alice=pgp:alice.asc or bob=age:age1...", collect)
    .option("--seal-shares <mode>", "server (Vault's pgp_keys), client (sealkeeper seals) or auto", "auto")
    .option("-o, --out <dir>", "output directory for the new shares (created 0700; must not hold a ceremony)")
    .option("--skip-verification", "let the new shares take effect at once, unproven (not recommended)")
    .option("--resume", "continue the rekey in progress with more OLD shares (same --shares/--threshold/--operator)")
    .option("--verify", "give NEW shares to verify the rekey in progress; the switch happens when enough are in")
    .option("--cancel", "cancel the rekey in progress (the old shares stay valid) and exit")
    .option("--status", "show the rekey in progress (if any) and which API the server offers, and exit")
    .option("--nonce <nonce>", "contribute only to the attempt with this nonce")
    .option("--endpoint <api>", "auto, unauthenticated (/sys/rekey) or authenticated (OpenBao's /sys/rotate)")
    .option("--transcript <file>", "ceremony transcript (default: <out>/transcript.jsonl when shares are written)")
    .action(async (opts: RekeyOpts) => {
      const format = resolveFormat(opts.format, io);
      const endpoint = parseEndpoint(opts.endpoint);
      const flags = [opts.resume, opts.verify, opts.cancel, opts.status].filter(Boolean).length;
      if (flags > 1) throw new UsageError("give at most one of --resume, --verify, --cancel and --status");
      const given = await clientFromOptions(opts, io);
      let client = given;
      const { Transcript } = await import("../../ceremony/transcript.js");
      try {
        // the cluster's ceremony is held by its active node: find it (a standby given with -a names it)
        const { onActiveNode } = await import("../../ceremony/active-node.js");
        client = await onActiveNode(given, "rekey", (line) => io.stderr.write(`${line}\n`));
        if (opts.status) return await showStatus(client, endpoint, format, io);
        const explicitTranscript = opts.transcript ? Transcript.open(resolve(io.cwd, opts.transcript)) : undefined;
        if (opts.cancel) {
          const { cancelRekey } = await import("../../ceremony/rekey.js");
          const r = await cancelRekey(client, { endpoint, transcript: explicitTranscript });
          // whatever an earlier run of this machine lost with that attempt is void now
          const { clearPendingRekeys, pendingDir } = await import("../../ceremony/pending.js");
          clearPendingRekeys(pendingDir(io.env), client.address);
          if (format === "json") return writeJson(io, { address: client.address, cancelled: r.wasRunning, ...r });
          io.stdout.write(
            r.wasRunning
              ? `${client.address}: cancelled the rekey ${r.nonce}; the old shares stay valid${r.newSharesVoid ? " (the new share files it had handed out are void: delete them)" : ""}\n`
              : `${client.address}: no rekey was in progress\n`,
          );
          return;
        }
        await rekey(client, endpoint, opts, format, io, explicitTranscript);
      } finally {
        await client.close();
        if (client !== given) await given.close();
      }
    });
}

async function showStatus(
  client: import("../../vault/client.js").VaultClient,
  endpoint: "auto" | "unauthenticated" | "authenticated",
  format: string,
  io: CliIO,
) {
  const { readRekeyStatus } = await import("../../ceremony/rekey.js");
  const { kind, endpoint: api, status, verify } = await readRekeyStatus(client, endpoint);
  await warnLostRekey(client.address, status, io);
  const phase = !status.started ? null : status.verification_nonce ? "verify" : "update";
  const view = {
    address: client.address,
    kind,
    api: `/v1/${api.base}`,
    authenticated: api.kind === "authenticated",
    started: status.started,
    phase,
    nonce: phase === "verify" ? (verify?.nonce ?? null) : status.nonce || null,
    progress: phase === "verify" ? (verify?.progress ?? 0) : status.progress,
    required: phase === "verify" ? (verify?.t ?? status.t) : status.required,
    newShares: status.started ? status.n : null,
    newThreshold: status.started ? status.t : null,
    verificationRequired: Boolean(status.verification_required),
    pgpFingerprints: status.pgp_fingerprints ?? [],
  };
  if (format === "json") return writeJson(io, view);
  io.stdout.write(
    !status.started
      ? `${client.address}: no rekey in progress; ${view.api} is usable (${kind} shares, ${status.required} old shares required)\n`
      : `${client.address}: ${kind} rekey in progress via ${view.api}, new ${status.t} of ${status.n}; ` +
          (phase === "verify"
            ? `new shares handed out, verification ${view.progress}/${view.required} (nonce ${view.nonce})\n`
            : `old shares ${status.progress}/${status.required} (nonce ${status.nonce})\n`),
  );
}

async function rekey(
  client: import("../../vault/client.js").VaultClient,
  endpoint: "auto" | "unauthenticated" | "authenticated",
  opts: RekeyOpts,
  format: string,
  io: CliIO,
  explicitTranscript: TranscriptT | undefined,
) {
  client.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
  const mode: RekeyMode = opts.verify ? "verify" : opts.resume ? "resume" : "start";
  const { parseOperatorSpec } = await import("../../ciphers/recipient-spec.js");
  const { ShareStore } = await import("../../store/share-store.js");
  const { Transcript } = await import("../../ceremony/transcript.js");
  const { runRekey } = await import("../../ceremony/rekey.js");
  let config: import("../../ceremony/rekey.js").RekeyConfig | undefined;
  let store: InstanceType<typeof ShareStore> | undefined;
  if (mode !== "verify") {
    const operators = (opts.operator ?? []).map(parseOperatorSpec);
    if (operators.length === 0) {
      throw new UsageError("say who holds the new shares: one --operator NAME=pgp:FILE|age:RECIPIENT per share");
    }
    const shares = opts.shares ?? operators.length;
    const sealShares = parseSealShares(opts.sealShares);
    config = {
      shares,
      threshold: opts.threshold ?? Math.min(3, shares),
      operators,
      sealShares,
      requireVerification: !opts.skipVerification,
    };
    store = new ShareStore(
      resolve(io.cwd, opts.out ?? `sealkeeper-rekey-${new Date().toISOString().replace(/[:.]/g, "-")}`),
    );
  } else if (opts.operator || opts.shares !== undefined || opts.threshold !== undefined || opts.out) {
    throw new UsageError("--verify takes only the NEW shares (no --operator, --shares, --threshold or --out)");
  }
  const interactive = io.stdinIsTTY && !opts.nonInteractive && (opts.shareFile ?? []).length === 0;
  // a rekey that writes new shares keeps a transcript beside them even without --transcript
  const source = await shareSourceFromOptions({ ...opts, transcript: opts.transcript ?? Boolean(store) }, io, () =>
    readAllStdin(io),
  );
  const p = paint(useColor(io, "stderr"));
  const { readRekeyStatus } = await import("../../ceremony/rekey.js");
  const before = await readRekeyStatus(client, endpoint).catch(() => undefined);
  if (before) await warnLostRekey(client.address, before.status, io);
  const { pendingDir } = await import("../../ceremony/pending.js");
  let transcript = explicitTranscript;
  const report = await runRekey({
    client,
    source,
    mode,
    config,
    store,
    cwd: io.cwd,
    nonce: opts.nonce,
    endpoint,
    continueToVerify: interactive,
    // a pause before verification: the new holders check their files first (issue 25)
    ...(interactive
      ? {
          beforeVerify: async (r: RekeyReport) => {
            const { ttyPrompter } = await import("../../prompt/prompter.js");
            const dir = r.delivered?.dir ?? "the output directory";
            io.stderr.write(
              `the new shares are written to ${dir}. Before verifying, each new holder can check their file (in ` +
                `another terminal): sealkeeper shares check --file ${dir}/THEIR-FILE --identity THEIR-KEY\n`,
            );
            return ttyPrompter({ input: io.stdin, output: io.stderr }).confirm(
              "Have the new holders checked their files? Continue to verification with their NEW shares",
              true,
            );
          },
        }
      : {}),
    pendingDir: pendingDir(io.env),
    log: (line) => io.stderr.write(`${terminalSafe(line)}\n`),
    get transcript() {
      // opened on first use: the default output directory exists only after the store's pre-flight
      if (!transcript && store) transcript = Transcript.open(resolve(store.dir, "transcript.jsonl"));
      return transcript;
    },
    onEvent: (e) => reportEvent(io, e, p),
  });
  if (format === "json") {
    writeJson(io, {
      ...report,
      delivered: report.delivered
        ? { dir: report.delivered.dir, files: report.delivered.files.map((f) => ({ name: f.name, sha256: f.sha256 })) }
        : null,
    });
  } else {
    io.stdout.write(renderReport(report, paint(useColor(io))));
  }
  if (report.delivered) {
    io.stderr.write(
      `next: give each new holder their file from ${report.delivered.dir}; each checks it with sealkeeper shares check` +
        (report.state === "complete"
          ? "\n"
          : `, then ${report.newThreshold} of them run: sealkeeper rekey --verify -a ${client.address}` +
            `${report.nonce ? ` --nonce ${report.nonce}` : ""} --share-file THEIR-FILE --identity THEIR-KEY` +
            (report.endpoint.kind === "authenticated"
              ? ` (with BAO_TOKEN set to a token allowed on /v1/${report.endpoint.base}/*: this server's rekey API needs one)\n`
              : "\n")),
    );
  }
  if (transcript) io.stderr.write(`transcript: ${transcript.path} (last hash ${transcript.lastHash})\n`);
  if (report.interrupted) await endRekeyInterrupted(io, report, opts, store?.dir);
  throw new ExitWith(report.state === "complete" ? ExitCode.ok : ExitCode.remote);
}

/** The rekey's share prompt was interrupted: what the server holds and the exact commands to go on or cancel. */
async function endRekeyInterrupted(io: CliIO, r: RekeyReport, opts: RekeyOpts, out: string | undefined) {
  const { commandLine, endInterrupted } = await import("../interrupt.js");
  const on = ["-a", r.address];
  const token =
    r.endpoint.kind === "authenticated" ? " (with BAO_TOKEN set: this server's rekey API needs a token)" : "";
  const cancel = `cancel it (the old shares stay valid${r.delivered || r.phase === "verify" ? "; the new share files become void" : ""}): ${commandLine(["sealkeeper", "rekey", "--cancel", ...on])}${token}`;
  if (r.state !== "in-progress") return endInterrupted(io, r.interrupted!, [`${r.address}: ${r.message}`]);
  const resume =
    r.phase === "update"
      ? [
          "sealkeeper",
          "rekey",
          "--resume",
          ...on,
          "-n",
          String(r.newShares),
          "-t",
          String(r.newThreshold),
          ...(opts.operator ?? []).flatMap((o) => ["--operator", o]),
          ...(out ? ["-o", out] : []),
          ...(opts.skipVerification ? ["--skip-verification"] : []),
        ]
      : ["sealkeeper", "rekey", "--verify", ...on];
  endInterrupted(io, r.interrupted!, [
    r.phase === "update"
      ? `${r.address} holds the rekey ${r.nonce}: OLD shares ${r.progress}/${r.required}, new ${r.newThreshold} of ${r.newShares}; nothing has changed, the old shares stay valid`
      : `${r.address} holds the rekey's verification ${r.nonce}: NEW shares ${r.progress}/${r.required}; nothing has changed yet, the old shares stay valid until it completes`,
    `go on (the ${r.phase === "update" ? "remaining OLD" : "NEW"} shares' holders): ${commandLine(resume)}${token}`,
    cancel,
  ]);
}

/**
 * A rekey of this machine sent its completing share and never wrote the new shares (src/ceremony/pending.ts): say what
 * that means now, on stderr, before anything else.
 */
async function warnLostRekey(
  address: string,
  status: import("../../ceremony/rekey.js").RekeyStatus,
  io: CliIO,
): Promise<void> {
  const { diagnoseLostRekey, pendingDir } = await import("../../ceremony/pending.js");
  const story = diagnoseLostRekey(pendingDir(io.env), address, {
    started: status.started,
    nonce: status.nonce,
    verificationNonce: status.verification_nonce || undefined,
  });
  if (story) io.stderr.write(`warning: ${story}\n`);
}

function reportEvent(io: CliIO, e: RekeyEvent, p: Paint): void {
  // a line mixes our colours with names and messages from files and servers: shown escaped
  const say = (line: string) => io.stderr.write(terminalSafe(line));
  if (e.kind === "attempt") {
    const r = e.report;
    say(
      `${r.address}: ${e.resumed ? "resumed" : "started"} ${r.kind} rekey via /v1/${r.endpoint.base}, new ${r.newThreshold} of ${r.newShares}, ` +
        `${r.phase === "update" ? "OLD" : "NEW"} shares ${r.progress}/${r.required}, nonce ${r.nonce}` +
        `${r.verificationRequired ? "" : ", verification OFF"}\n`,
    );
    return;
  }
  if (e.kind === "delivered") {
    say(`${p.green("new shares written")}: ${e.report.delivered?.dir} (${e.report.message})\n`);
    return;
  }
  const who = e.share.operator ?? e.share.origin;
  const ok = e.outcome === "accepted" || e.outcome === "complete";
  say(
    `${e.phase === "update" ? "old" : "new"} share from ${who} [${e.share.fingerprint}]: ${ok ? p.green(e.outcome) : p.yellow(e.outcome)} ${e.progress}/${e.required}` +
      `${e.message && !ok ? ` (${e.message})` : ""}\n`,
  );
}

function renderReport(r: RekeyReport, p: Paint): string {
  const state =
    r.state === "complete" ? p.green(r.state) : r.state === "in-progress" ? p.yellow(r.state) : p.red(r.state);
  return renderTable(
    ["ADDRESS", "KIND", "PHASE", "STATE", "PROGRESS", "NONCE", "NOTE"],
    [[r.address, r.kind, r.phase, state, `${r.progress}/${r.required}`, r.nonce, r.message ?? ""]],
  );
}
