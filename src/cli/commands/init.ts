import { resolve } from "node:path";
import type { Command } from "commander";
import type { InitCeremonyConfig, InitOutcome } from "../../ceremony/init.js";
import type { Transcript as TranscriptT } from "../../ceremony/transcript.js";
import type { OperatorSpec } from "../../ciphers/types.js";
import { UsageError } from "../../errors.js";
import { collect, int, parseSealShares } from "../flags.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, addFormatOption, clientFromOptions } from "../options.js";
import { renderTable, resolveFormat, terminalSafe, writeJson } from "../output.js";

export function registerInit(program: Command, io: CliIO): void {
  const cmd = program
    .command("init")
    .description(
      "initialise one node: every share sealed to its operator (OpenPGP or age), the root token sealed, " +
        "a manifest; checked before the irreversible call, never lost after it",
    );
  addConnectionOptions(cmd);
  addFormatOption(cmd);
  cmd
    .option("--ceremony <file>", "a YAML ceremony file with the settings below")
    .option("-n, --shares <n>", "number of shares (default 5)", int("--shares"))
    .option("-t, --threshold <n>", "shares needed to unseal (default 3)", int("--threshold"))
    .option(
      "--operator <name=type:key>",
      "an operator and their key: alice=pgp:alice.asc or bob=age:age1...; one per share",
      collect,
    )
    .option("--recovery-shares <n>", "auto-unseal nodes: number of recovery shares", int("--recovery-shares"))
    .option("--recovery-threshold <n>", "auto-unseal nodes: recovery threshold", int("--recovery-threshold"))
    .option("--recovery-operator <name=type:key>", "auto-unseal nodes: a recovery share holder; one per share", collect)
    .option("--root-token-recipient <type:key>", "seal the root token to this key (pgp:FILE or age:RECIPIENT)")
    .option("--print-root-token", "ALSO print the plaintext root token on stdout (explicitly unsafe)")
    .option("--seal-shares <mode>", "server (Vault's pgp_keys), client (sealkeeper seals) or auto", "auto")
    .option("-o, --out <dir>", "output directory (created 0700; must not hold a ceremony)")
    .option("--transcript <file>", "ceremony transcript (default: <out>/transcript.jsonl)")
    .action(async (opts) => {
      const format = resolveFormat(opts.format, io);
      const { readCeremonyFile } = await import("../../ceremony/ceremony-file.js");
      const { parseOperatorSpec, parseRecipientSpec } = await import("../../ciphers/recipient-spec.js");
      const file = opts.ceremony ? readCeremonyFile(resolve(io.cwd, opts.ceremony)) : undefined;

      const recoveryFlags =
        opts.recoveryShares !== undefined || opts.recoveryThreshold !== undefined || opts.recoveryOperator;
      const unsealFlags = opts.shares !== undefined || opts.threshold !== undefined || opts.operator;
      if (recoveryFlags && unsealFlags) {
        throw new UsageError("give either --shares/--threshold/--operator or the --recovery-* flags, not both");
      }
      const operatorSpecs: OperatorSpec[] =
        (recoveryFlags ? opts.recoveryOperator : opts.operator)?.map(parseOperatorSpec) ?? file?.operators ?? [];
      const shares: number =
        (recoveryFlags ? opts.recoveryShares : opts.shares) ?? file?.shares ?? (operatorSpecs.length || 5);
      const threshold: number = (recoveryFlags ? opts.recoveryThreshold : opts.threshold) ?? file?.threshold ?? 3;
      const sealShares = parseSealShares(opts.sealShares !== "auto" ? opts.sealShares : file?.sealShares);
      const config: InitCeremonyConfig = {
        shares,
        threshold,
        operators: operatorSpecs,
        rootTokenRecipient: opts.rootTokenRecipient
          ? parseRecipientSpec(opts.rootTokenRecipient)
          : file?.rootTokenRecipient,
        keepRootToken: Boolean(opts.printRootToken),
        sealShares,
        kind: recoveryFlags ? "recovery" : (file?.kind ?? "auto"),
      };
      const out = resolve(
        io.cwd,
        opts.out ?? file?.out ?? `sealkeeper-init-${new Date().toISOString().replace(/[:.]/g, "-")}`,
      );
      const client = await clientFromOptions({ ...opts, address: opts.address ?? file?.address }, io);
      client.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
      const { ShareStore } = await import("../../store/share-store.js");
      const { Transcript } = await import("../../ceremony/transcript.js");
      const { runInitCeremony } = await import("../../ceremony/init.js");
      const { pendingDir } = await import("../../ceremony/pending.js");
      const store = new ShareStore(out);
      const transcriptPath = resolve(io.cwd, opts.transcript ?? file?.transcript ?? resolve(out, "transcript.jsonl"));
      let transcript: TranscriptT | undefined;
      try {
        const outcome = await runInitCeremony(config, {
          client,
          store,
          cwd: file?.baseDir ?? io.cwd,
          log: (line) => io.stderr.write(`${terminalSafe(line)}\n`),
          pendingDir: pendingDir(io.env),
          // a line every few seconds for a person at a terminal; a log file gets one every 30 s
          waitingIntervalMs: io.stderrIsTTY ? 5_000 : 30_000,
          get transcript() {
            // opened on first use: the default output directory exists only after the store's pre-flight
            transcript ??= Transcript.open(transcriptPath);
            return transcript;
          },
        });
        if (format === "json") {
          writeJson(io, { ...summarise(outcome), ...(opts.printRootToken ? { rootToken: outcome.rootToken } : {}) });
        } else {
          io.stdout.write(renderInitSummary(outcome, await store.modeText().catch(() => "mode unknown")));
          if (opts.printRootToken)
            io.stdout.write(`root token (you asked for it in plaintext): ${outcome.rootToken}\n`);
        }
        // the hash to record elsewhere: with it, `transcript verify --last-hash` also detects lines cut off the end
        if (transcript) io.stderr.write(`transcript: ${transcript.path} (last hash ${transcript.lastHash})\n`);
      } finally {
        await client.close();
      }
    });
}

function summarise(o: InitOutcome) {
  return {
    kind: o.kind,
    sealedBy: o.sealMode,
    dir: o.dir,
    threshold: o.manifest.threshold,
    shares: o.manifest.shares,
    operators: o.manifest.operators.map((op) => ({
      name: op.name,
      keyType: op.keyType,
      recipient: op.recipientFingerprint,
      file: op.file,
      fileSha256: op.fileSha256,
    })),
    rootTokenFile: o.manifest.rootToken?.file ?? null,
    manifest: "manifest.json",
  };
}

function renderInitSummary(o: InitOutcome, dirMode: string): string {
  const head =
    `initialised: ${o.kind} shares, ${o.manifest.threshold} of ${o.manifest.shares}, sealed by the ${o.sealMode}\n` +
    `output: ${o.dir} (directory ${dirMode}; files 0600)\n\n`;
  const table = renderTable(
    ["OPERATOR", "KEY", "RECIPIENT", "FILE"],
    o.manifest.operators.map((op) => [op.name, op.keyType, op.recipientFingerprint, op.file]),
  );
  const root = o.manifest.rootToken
    ? `\nroot token: ${o.manifest.rootToken.file} (sealed to ${o.manifest.rootToken.recipientType} ${o.manifest.rootToken.recipientFingerprint})\n`
    : "";
  const next =
    o.kind === "recovery"
      ? "\nrecovery shares cannot unseal: the seal does that. Keep them for generate-root and rekey.\n"
      : "\nnext: give each operator their file; each runs `sealkeeper shares check`; then `sealkeeper unseal` on every node.\n";
  return head + table + root + next;
}
