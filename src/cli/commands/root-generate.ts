import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import type { GenerateRootEvent, GenerateRootReport, TokenDelivery } from "../../ceremony/generate-root.js";
import type { EndpointPreference } from "../../ceremony/quorum-endpoint.js";
import type { LoadedRecipient } from "../../ciphers/types.js";
import { describeError, ExitCode, UsageError } from "../../errors.js";
import type { VaultClient } from "../../vault/client.js";
import { ExitWith } from "../exit.js";
import { parseEndpoint } from "../flags.js";
import { type CliIO, readAllStdin } from "../io.js";
import { addConnectionOptions, addFormatOption, clientFromOptions, type RawConnectionOpts } from "../options.js";
import { type Paint, paint, renderTable, resolveFormat, terminalSafe, useColor, writeJson } from "../output.js";
import { addShareInputOptions, type ShareInputOptions, shareSourceFromOptions } from "../share-input.js";

interface GenerateOpts extends RawConnectionOpts, ShareInputOptions {
  pgpKey?: string;
  tokenRecipient?: string;
  printToken?: boolean;
  out?: string;
  resume?: boolean;
  nonce?: string;
  cancel?: boolean;
  status?: boolean;
  endpoint?: string;
  transcript?: string;
  format?: string;
  allowInsecureHttp?: boolean;
}

/**
 * `sealkeeper root generate`: break-glass root token generation by quorum. Joins the `root` group whichever of
 * root.ts and this file registers first.
 */
export function registerRootGenerate(program: Command, io: CliIO): void {
  const root =
    program.commands.find((c) => c.name() === "root") ??
    program.command("root").description("root token lifecycle: revoke it after bootstrap, regenerate it by quorum");
  const cmd = root
    .command("generate")
    .description(
      "break-glass: generate a new root token with a quorum of unseal (or recovery) shares; the token is decoded " +
        "from a one-time password that never leaves this process, or encrypted to a PGP key by the server " +
        "(exit 0 token delivered, 2 attempt not finished, 1 error)",
    );
  addConnectionOptions(cmd);
  addShareInputOptions(cmd);
  addFormatOption(cmd);
  cmd
    .option("--pgp-key <file>", "the server encrypts the new token to this OpenPGP public key (armored or binary)")
    .option("--token-recipient <type:key>", "seal the decoded token here to pgp:FILE or age:RECIPIENT")
    .option("--print-token", "print the new root token in plaintext on stdout (explicitly unsafe)")
    .option("-o, --out <file>", "where the sealed token goes (default ./root-token-<time>.asc|.age; never overwritten)")
    .option("--resume", "continue the attempt already in progress (PGP attempts only)")
    .option("--nonce <nonce>", "with --resume: contribute only to the attempt with this nonce")
    .option("--cancel", "cancel the attempt in progress and exit")
    .option("--status", "show the attempt in progress (if any) and which API the server offers, and exit")
    .option("--endpoint <api>", "auto, unauthenticated (/sys/generate-root) or authenticated (OpenBao's token path)")
    .option("--transcript <file>", "append a hash-chained record of the ceremony to this file")
    .action(async (opts: GenerateOpts) => {
      const format = resolveFormat(opts.format, io);
      const endpoint = parseEndpoint(opts.endpoint);
      const modes = [opts.cancel, opts.status].filter(Boolean).length;
      if (modes > 1) throw new UsageError("give either --cancel or --status, not both");
      if (opts.nonce && !opts.resume) throw new UsageError("--nonce goes with --resume");
      const given = await clientFromOptions(opts, io);
      let client = given;
      const { Transcript } = await import("../../ceremony/transcript.js");
      const transcript = opts.transcript ? Transcript.open(resolve(io.cwd, opts.transcript)) : undefined;
      try {
        // the cluster's ceremony is held by its active node: find it (a standby given with -a names it)
        const { onActiveNode } = await import("../../ceremony/active-node.js");
        client = await onActiveNode(given, "root generation", (line) => io.stderr.write(`${line}\n`));
        if (opts.status) return await showStatus(client, endpoint, format, io);
        if (opts.cancel) return await cancel(client, endpoint, format, io, transcript);
        await generate(client, endpoint, opts, format, io, transcript);
      } finally {
        await client.close();
        if (client !== given) await given.close();
      }
    });
}

async function showStatus(client: VaultClient, endpoint: EndpointPreference, format: string, io: CliIO) {
  const { readGenerateRootStatus } = await import("../../ceremony/generate-root.js");
  const { endpoint: api, status } = await readGenerateRootStatus(client, endpoint);
  const view = {
    address: client.address,
    api: `/v1/${api.base}`,
    authenticated: api.kind === "authenticated",
    started: status.started,
    nonce: status.nonce || null,
    progress: status.progress,
    required: status.required,
    mode: status.started ? (status.pgp_fingerprint ? "pgp" : "otp") : null,
    pgpFingerprint: status.pgp_fingerprint || null,
  };
  if (format === "json") return writeJson(io, view);
  io.stdout.write(
    status.started
      ? `${client.address}: root generation in progress via ${view.api}, nonce ${status.nonce}, progress ${status.progress}/${status.required}, ${view.mode === "pgp" ? `token to PGP key ${status.pgp_fingerprint}` : "OTP (only its starting run can finish it)"}\n`
      : `${client.address}: no root generation in progress; ${view.api} is usable (${status.required} shares required)\n`,
  );
}

async function cancel(
  client: VaultClient,
  endpoint: EndpointPreference,
  format: string,
  io: CliIO,
  transcript: import("../../ceremony/transcript.js").Transcript | undefined,
) {
  const { cancelGenerateRoot } = await import("../../ceremony/generate-root.js");
  const r = await cancelGenerateRoot(client, { endpoint, transcript });
  if (format === "json")
    return writeJson(io, { address: client.address, cancelled: r.wasRunning, nonce: r.nonce || null });
  io.stdout.write(
    r.wasRunning
      ? `${client.address}: cancelled the root generation attempt ${r.nonce} (it had ${r.progress}/${r.required} shares)\n`
      : `${client.address}: no root generation attempt was in progress\n`,
  );
}

/** Everything checked before the attempt starts: where the token goes, and that it can go there. */
interface Destination {
  delivery: TokenDelivery;
  /** Client-side sealing of a decoded OTP token. */
  recipient?: LoadedRecipient;
  /** Absolute path of the sealed token file, when one is written. */
  outPath?: string;
}

async function prepareDestination(opts: GenerateOpts, io: CliIO): Promise<Destination> {
  if (opts.resume && opts.tokenRecipient) {
    throw new UsageError("--token-recipient cannot go with --resume: only PGP attempts can be resumed (use --pgp-key)");
  }
  if (opts.pgpKey && opts.tokenRecipient) {
    throw new UsageError(
      "give either --pgp-key (the server encrypts) or --token-recipient (sealkeeper seals), not both",
    );
  }
  if (!opts.pgpKey && !opts.tokenRecipient && !opts.printToken && !opts.resume) {
    throw new UsageError(
      "say where the new root token goes: --pgp-key FILE, --token-recipient age:RECIPIENT|pgp:FILE, or --print-token",
    );
  }
  const { loadRecipient, fileExtensionFor } = await import("../../ciphers/registry.js");
  const { parseRecipientSpec } = await import("../../ciphers/recipient-spec.js");
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const outFor = (ext: string) => resolve(io.cwd, opts.out ?? `root-token-${stamp}${ext}`);
  if (opts.pgpKey) {
    const recipient = await loadRecipient(parseRecipientSpec(`pgp:${opts.pgpKey}`), { cwd: io.cwd }).catch(
      (err: unknown) => {
        throw new UsageError(`--pgp-key: ${describeError(err)}`, { cause: err });
      },
    );
    if (!recipient.serverPgpKeyB64) throw new UsageError(`--pgp-key ${opts.pgpKey}: the server cannot encrypt to it`);
    const outPath = outFor(fileExtensionFor("pgp"));
    checkOutPath(outPath);
    return {
      delivery: { kind: "pgp", pgpKeyB64: recipient.serverPgpKeyB64, fingerprint: recipient.fingerprint },
      outPath,
      // not for sealing (the server does): to check that the server's message is addressed to this key
      recipient,
    };
  }
  if (opts.tokenRecipient) {
    const recipient = await loadRecipient(parseRecipientSpec(opts.tokenRecipient), { cwd: io.cwd }).catch(
      (err: unknown) => {
        throw new UsageError(`--token-recipient: ${describeError(err)}`, { cause: err });
      },
    );
    // a test seal now: if it fails, it fails before a token exists
    const { probeRecipients } = await import("../../ceremony/deliver-shares.js");
    await probeRecipients([recipient]);
    const outPath = outFor(fileExtensionFor(recipient.type));
    checkOutPath(outPath);
    return { delivery: { kind: "otp" }, recipient, outPath };
  }
  if (opts.resume) {
    // a PGP attempt resumed without --pgp-key: the server already knows the key; the file is armored pgp
    const outPath = outFor(fileExtensionFor("pgp"));
    checkOutPath(outPath);
    return { delivery: { kind: "otp" }, outPath };
  }
  return { delivery: { kind: "otp" } };
}

function checkOutPath(path: string): void {
  if (existsSync(path)) throw new UsageError(`refusing to overwrite existing file ${path}`);
  const dir = dirname(path);
  try {
    if (!statSync(dir).isDirectory()) throw new Error("not a directory");
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new UsageError(
      `cannot write the token file in ${dir}: ${(err as NodeJS.ErrnoException).code ?? "not a directory"}`,
    );
  }
}

async function generate(
  client: VaultClient,
  endpoint: EndpointPreference,
  opts: GenerateOpts,
  format: string,
  io: CliIO,
  transcript: import("../../ceremony/transcript.js").Transcript | undefined,
) {
  client.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
  const dest = await prepareDestination(opts, io);
  const source = await shareSourceFromOptions(opts, io, () => readAllStdin(io));
  const { runGenerateRoot } = await import("../../ceremony/generate-root.js");
  const p = paint(useColor(io, "stderr"));
  let tokenFile: string | undefined;
  const report = await runGenerateRoot({
    client,
    source,
    delivery: dest.delivery,
    resume: Boolean(opts.resume),
    nonce: opts.nonce,
    endpoint,
    transcript,
    onEvent: (e) => reportEvent(io, e, p),
    log: (line) => io.stderr.write(`${terminalSafe(line)}\n`),
    // inside the ceremony's critical section: the token is written before any deferred signal takes effect
    afterComplete: async (r) => {
      const { deliverRootToken } = await import("../../ceremony/deliver-shares.js");
      tokenFile = await deliverRootToken(
        { client, nonce: r.nonce, mode: r.mode, token: r.token, encryptedTokenB64: r.encryptedTokenB64 },
        { recipient: dest.recipient, outPath: dest.outPath },
        { transcript, onRescueText: (text) => io.stderr.write(text) },
      );
    },
  });
  const view = {
    ...report,
    token: undefined,
    encryptedTokenB64: undefined,
    tokenFile: tokenFile ?? null,
    ...(opts.printToken && report.token ? { rootToken: report.token } : {}),
  };
  if (format === "json") writeJson(io, view);
  else {
    io.stdout.write(renderReport(report, paint(useColor(io))));
    if (tokenFile) io.stdout.write(`new root token: ${tokenFile} (0600, sealed)\n`);
    if (opts.printToken && report.token)
      io.stdout.write(`root token (you asked for it in plaintext): ${report.token}\n`);
  }
  if (report.state === "complete") {
    io.stderr.write(
      `when the emergency work is done, revoke it: sealkeeper root revoke ${tokenFile ? `--root-token-file ${tokenFile} --identity YOUR-KEY` : "(with VAULT_TOKEN set to it)"} --yes\n`,
    );
  }
  if (transcript) io.stderr.write(`transcript: ${transcript.path} (last hash ${transcript.lastHash})\n`);
  report.token = undefined;
  if (report.interrupted) {
    const { commandLine, endInterrupted } = await import("../interrupt.js");
    const on = ["-a", report.address];
    const token = report.endpoint.kind === "authenticated" ? " (with BAO_TOKEN set)" : "";
    endInterrupted(
      io,
      report.interrupted,
      report.state === "in-progress"
        ? [
            `${report.address} holds the attempt ${report.nonce} (token to PGP key ${report.pgpFingerprint}): ${report.progress}/${report.required} shares`,
            `go on (the remaining holders): ${commandLine(["sealkeeper", "root", "generate", "--resume", ...on, ...(opts.out ? ["-o", opts.out] : [])])}${token}`,
            `or cancel it: ${commandLine(["sealkeeper", "root", "generate", "--cancel", ...on])}${token}`,
          ]
        : [`${report.address}: ${report.message ?? report.state}`],
    );
  }
  throw new ExitWith(report.state === "complete" ? ExitCode.ok : ExitCode.remote);
}

function reportEvent(io: CliIO, e: GenerateRootEvent, p: Paint): void {
  // a line mixes our colours with names and messages from files and servers: shown escaped
  const say = (line: string) => io.stderr.write(terminalSafe(line));
  if (e.kind === "attempt") {
    const r = e.report;
    say(
      `${r.address}: ${r.resumed ? "resumed" : "started"} root generation via /v1/${r.endpoint.base}, nonce ${r.nonce}, ` +
        `${r.progress}/${r.required} shares, ${r.mode === "pgp" ? `token to PGP key ${r.pgpFingerprint}` : "one-time password held in memory"}\n`,
    );
    return;
  }
  const who = e.share.operator ?? e.share.origin;
  const ok = e.outcome === "accepted" || e.outcome === "complete";
  say(
    `share from ${who} [${e.share.fingerprint}]: ${ok ? p.green(e.outcome) : p.yellow(e.outcome)} ${e.progress}/${e.required}` +
      `${e.message ? ` (${e.message})` : ""}\n`,
  );
}

function renderReport(r: GenerateRootReport, p: Paint): string {
  const state =
    r.state === "complete" ? p.green(r.state) : r.state === "in-progress" ? p.yellow(r.state) : p.red(r.state);
  return renderTable(
    ["ADDRESS", "STATE", "PROGRESS", "NONCE", "CONTRIBUTORS", "NOTE"],
    [[r.address, state, `${r.progress}/${r.required}`, r.nonce, r.contributors.join(", ") || "-", r.message ?? ""]],
  );
}
