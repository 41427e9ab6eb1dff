import type { Command } from "commander";
import { describeSet } from "../../ceremony/quorum.js";
import type { UnsealEvent, UnsealNodeReport } from "../../ceremony/unseal.js";
import { ExitCode } from "../../errors.js";
import { ExitWith } from "../exit.js";
import { parseSeconds } from "../flags.js";
import { type CliIO, readAllStdin } from "../io.js";
import { addConnectionOptions, addFormatOption, clientsFromOptions } from "../options.js";
import { type Paint, paint, renderTable, resolveFormat, terminalSafe, useColor, writeJson } from "../output.js";
import { addShareInputOptions, shareSourceFromOptions } from "../share-input.js";

export function registerUnseal(program: Command, io: CliIO): void {
  const cmd = program
    .command("unseal")
    .description(
      "unseal every node with a quorum of shares: interactive at a terminal, or scripted from files and stdin " +
        "(exit 0 all unsealed, 2 some still sealed, 1 error)",
    );
  addConnectionOptions(cmd, { multi: true });
  addShareInputOptions(cmd);
  addFormatOption(cmd);
  cmd
    .option("--reset", "clear the progress of any unseal attempt in flight first")
    .option("--migrate", "send migrate=true (needed while a seal migration is pending)")
    .option("--transcript <file>", "append a hash-chained record of the ceremony to this file")
    .option(
      "--join-timeout <seconds>",
      "how long a raft follower may take to join its leader (before it is initialised, and after it reached the " +
        "threshold); the wait ends as soon as the node shows the outcome, with a line every few seconds; 0: no wait",
      "300",
    )
    .action(async (opts) => {
      const format = resolveFormat(opts.format, io);
      const joinTimeoutMs = parseSeconds(opts.joinTimeout, "--join-timeout", { allowZero: true });
      const clients = await clientsFromOptions(opts, io);
      for (const c of clients) c.assertSafeForSecrets(Boolean(opts.allowInsecureHttp));
      const { runUnseal } = await import("../../ceremony/unseal.js");
      const { Transcript } = await import("../../ceremony/transcript.js");
      const transcript = opts.transcript ? Transcript.open(opts.transcript) : undefined;
      const p = paint(useColor(io, "stderr"));
      const source = await shareSourceFromOptions(opts, io, () => readAllStdin(io));
      try {
        const report = await runUnseal({
          clients,
          source,
          reset: Boolean(opts.reset),
          migrate: Boolean(opts.migrate),
          joinTimeoutMs,
          transcript,
          onEvent: (e) => reportEvent(io, e, p),
        });
        if (format === "json") writeJson(io, report);
        else io.stdout.write(renderUnsealTable(report.nodes, paint(useColor(io))));
        if (transcript) io.stderr.write(`transcript: ${transcript.path} (last hash ${transcript.lastHash})\n`);
        if (report.interrupted) {
          const { commandLine, endInterrupted } = await import("../interrupt.js");
          const again = ["sealkeeper", "unseal", ...clients.flatMap((c) => ["-a", c.address])];
          const sealed = report.nodes.filter((n) => n.state === "sealed" && n.progress > 0);
          endInterrupted(io, report.interrupted, [
            sealed.length > 0
              ? `the shares given stay counted on ${sealed.map((n) => `${n.address} (${n.progress}/${n.threshold}, nonce ${n.nonce})`).join(", ")} until the node restarts or is reset`
              : "no node holds a share of this run now",
            `go on (the remaining holders give their shares): ${commandLine(again)}`,
            ...(sealed.length > 0 ? [`or start over on every node: ${commandLine([...again, "--reset"])}`] : []),
          ]);
        }
        throw new ExitWith(unsealExitCode(report.nodes));
      } finally {
        await Promise.all(clients.map((c) => c.close()));
      }
    });
}

function reportEvent(io: CliIO, e: UnsealEvent, p: Paint): void {
  // a line mixes our colours with names and messages from files and servers: shown escaped
  const say = (line: string) => io.stderr.write(terminalSafe(line));
  if (e.kind === "node") {
    if (e.node.state !== "sealed" || e.node.message)
      say(`${e.node.address}: ${e.node.state}${e.node.message ? ` (${e.node.message})` : ""}\n`);
    return;
  }
  if (e.kind === "waiting") {
    say(
      `${e.address}: ${e.what}, waiting (${Math.round(e.waitedMs / 1000)}s of at most ${Math.round(e.limitMs / 1000)}s, --join-timeout)\n`,
    );
    return;
  }
  if (e.kind === "refused") {
    io.stderr.write(
      `share from ${e.share.operator ?? e.share.origin} [${e.share.fingerprint}]: ${p.yellow("refused")}: ${e.reason}\n`,
    );
    return;
  }
  if (e.kind === "wrong-share") {
    const w = e.set.wrong!;
    io.stderr.write(
      `${p.yellow("wrong share")}: the share from ${w.who} [${w.fingerprint}] is the wrong one of the set ` +
        `${e.set.address} refused: every other share of that set has unsealed a node\n`,
    );
    return;
  }
  const who = e.share.operator ?? e.share.origin;
  const parts = e.results.map(({ address, outcome }) => {
    // the engine's "complete" is, for this ceremony, an unsealed node; a refused set is not this share's fault
    const word =
      outcome === "complete"
        ? "unsealed"
        : outcome === "completed-elsewhere"
          ? "unsealed by another run's share"
          : outcome === "rejected-set"
            ? "refused the set"
            : outcome;
    return `${address} ${outcome === "accepted" || outcome === "complete" ? p.green(word) : p.yellow(word)}`;
  });
  say(`share from ${who} [${e.share.fingerprint}]: ${parts.join(", ")}\n`);
  for (const { address, set } of e.results) {
    if (set) {
      say(
        `  ${address} refused the set it reached its threshold with: ${describeSet(set)}; one of them is wrong ` +
          "or from another cluster (not necessarily the last); its progress is back to 0\n",
      );
    }
  }
}

export function unsealExitCode(nodes: UnsealNodeReport[]): number {
  if (nodes.some((n) => n.state === "unreachable" || n.state === "failed")) return ExitCode.error;
  if (nodes.some((n) => n.state !== "unsealed")) return ExitCode.remote;
  return ExitCode.ok;
}

function renderUnsealTable(nodes: UnsealNodeReport[], p: Paint): string {
  return renderTable(
    ["ADDRESS", "STATE", "PROGRESS", "CONTRIBUTORS", "NOTE"],
    nodes.map((n) => [
      n.address,
      n.state === "unsealed" ? p.green(n.state) : n.state === "sealed" ? p.yellow(n.state) : p.red(n.state),
      n.state === "sealed" ? `${n.progress}/${n.threshold}` : "-",
      contributorsCell(n),
      n.message ?? "",
    ]),
  );
}

/** This run's contributors, then the shares counted on the node that this run did not give (another operator's). */
function contributorsCell(n: UnsealNodeReport): string {
  const others = n.othersShares > 0 ? `+${n.othersShares} of another run` : "";
  return [...n.contributors, others].filter((x) => x !== "").join(", ") || "-";
}
