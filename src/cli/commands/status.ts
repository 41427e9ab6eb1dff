import type { Command } from "commander";
import { ExitCode } from "../../errors.js";
import { escapeControl } from "../../util/redact.js";
import type { VaultClient } from "../../vault/client.js";
import { type NodeStatus, observeNodes } from "../../vault/observe.js";
import { ExitWith } from "../exit.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, addFormatOption, clientsFromOptions } from "../options.js";
import { type Paint, paint, renderTable, resolveFormat, terminalSafe, useColor, writeJson } from "../output.js";

export function registerStatus(program: Command, io: CliIO): void {
  const cmd = program
    .command("status")
    .description("show seal and HA status of every node (exit 0 all unsealed, 2 any sealed/uninitialised, 1 error)");
  addConnectionOptions(cmd, { multi: true });
  addFormatOption(cmd);
  cmd.action(async (opts) => {
    const format = resolveFormat(opts.format, io);
    const clients = await clientsFromOptions(opts, io);
    try {
      const nodes = await observeNodes(clients);
      const lostInits = await reportLostInits(nodes, io);
      if (format === "json") {
        writeJson(
          io,
          nodes.map((n) => (lostInits.has(n.address) ? { ...n, lostInit: lostInits.get(n.address) } : n)),
        );
      } else io.stdout.write(renderStatusTable(nodes, paint(useColor(io))));
      noteStaleQuorum(nodes, io);
      await reportLostRekeys(nodes, clients, io);
      throw new ExitWith(statusExitCode(nodes));
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
}

/**
 * After a rekey, a standby keeps reporting the OLD quorum in its seal-status until it restarts (both servers, issue
 * 26): the active node's is the one in force. Said on stderr when an unsealed standby of the same cluster disagrees.
 */
export function noteStaleQuorum(nodes: NodeStatus[], io: CliIO): void {
  const active = nodes.find((n) => n.reachable && n.haRole === "active" && n.threshold && n.shares);
  if (!active) return;
  const p = paint(useColor(io, "stderr"));
  for (const n of nodes) {
    if (n === active || n.haRole !== "standby" || n.clusterName !== active.clusterName) continue;
    if (n.threshold === active.threshold && n.shares === active.shares) continue;
    io.stderr.write(
      `${p.yellow("note:")} ${n.address} (a standby) reports the quorum ${n.threshold} of ${n.shares}, the active node ` +
        `${active.address} ${active.threshold} of ${active.shares}: a standby keeps the quorum it unsealed with until ` +
        `it restarts (after a rekey); the active node's, ${active.threshold} of ${active.shares}, is in force and is ` +
        "what this node needs after its next restart\n",
    );
  }
}

/**
 * An initialised node whose sealkeeper init left a pending record and no manifest or rescue bundle lost its answer:
 * say so, and what to do, on stderr (src/ceremony/pending.ts).
 */
async function reportLostInits(
  nodes: NodeStatus[],
  io: CliIO,
): Promise<Map<string, { stale: boolean; text: string; records: string[] }>> {
  const found = new Map<string, { stale: boolean; text: string; records: string[] }>();
  if (!nodes.some((n) => n.initialized)) return found;
  const { defaultRescueDirs, lostInitReport, pendingDir } = await import("../../ceremony/pending.js");
  const dir = pendingDir(io.env);
  const p = paint(useColor(io, "stderr"));
  for (const n of nodes) {
    if (!n.initialized) continue;
    // checked against the node: an unsealed node is not locked out, its record is stale
    const lost = lostInitReport(dir, n.address, defaultRescueDirs(io.env), { sealed: n.sealed });
    if (!lost) continue;
    found.set(n.address, lost);
    io.stderr.write(`${lost.stale ? p.yellow("note:") : p.red("warning:")} ${terminalSafe(lost.text)}\n`);
  }
  return found;
}

/**
 * An unsealed node for which a sealkeeper rekey of this machine sent the completing share and never wrote the new
 * shares: say what that means now (the same story `rekey --status` tells), on stderr. Only a node with such a record
 * costs a request (the rekey state); one that cannot be read says where to look instead.
 */
async function reportLostRekeys(nodes: NodeStatus[], clients: VaultClient[], io: CliIO): Promise<void> {
  if (!nodes.some((n) => n.initialized && n.sealed === false)) return;
  const { diagnoseLostRekey, pendingDir, pendingFor } = await import("../../ceremony/pending.js");
  const dir = pendingDir(io.env);
  const p = paint(useColor(io, "stderr"));
  for (const n of nodes) {
    if (!n.initialized || n.sealed !== false || pendingFor(dir, n.address, "rekey").length === 0) continue;
    const client = clients.find((c) => c.address === n.address);
    if (!client) continue;
    const { readRekeyStatus } = await import("../../ceremony/rekey.js");
    let status: Awaited<ReturnType<typeof readRekeyStatus>>["status"];
    try {
      status = (await readRekeyStatus(client)).status;
    } catch {
      io.stderr.write(
        `${p.yellow("warning:")} ${n.address}: a sealkeeper rekey of this machine may have lost its answer; ` +
          "its rekey state could not be read here: run sealkeeper rekey --status against it\n",
      );
      continue;
    }
    const lost = diagnoseLostRekey(dir, n.address, {
      started: status.started,
      nonce: status.nonce,
      verificationNonce: status.verification_nonce || undefined,
    });
    if (lost) io.stderr.write(`${p.red("warning:")} ${terminalSafe(lost)}\n`);
  }
}

/** Vault's `status` rule, over a cluster: 1 if any node is unreachable, else 2 if any is sealed or uninitialised. */
export function statusExitCode(nodes: NodeStatus[]): number {
  if (nodes.some((n) => !n.reachable)) return ExitCode.error;
  if (nodes.some((n) => n.sealed !== false || n.initialized !== true)) return ExitCode.remote;
  return ExitCode.ok;
}

export function renderStatusTable(nodes: NodeStatus[], p: Paint): string {
  // every value but the address came from the server: escaped before it is painted, so it cannot even recolour
  const rows = nodes.map((served) => {
    const n = escapeServed(served);
    if (!n.reachable) return [n.address, p.red("unreachable"), "-", "-", "-", "-", "-", "-", "-", n.error ?? ""];
    const state = !n.initialized ? p.yellow("uninitialised") : n.sealed ? p.yellow("sealed") : p.green("unsealed");
    const progress = n.sealed && n.initialized ? `${n.progress}/${n.threshold}` : "-";
    return [
      n.address,
      state,
      progress,
      n.threshold && n.shares ? `${n.threshold} of ${n.shares}` : "-",
      n.sealType ?? "-",
      migrationCell(n, p),
      n.haRole === "standby-unhealthy" || n.haRole === "removed" ? p.yellow(n.haRole) : (n.haRole ?? "-"),
      n.version ?? "-",
      n.clusterName ?? "-",
      n.note ?? "",
    ];
  });
  return renderTable(
    ["ADDRESS", "STATE", "PROGRESS", "QUORUM", "SEAL", "MIGRATION", "HA", "VERSION", "CLUSTER", "NOTE"],
    rows,
  );
}

/**
 * A seal migration seen on the node: "needs-shares" (sealed in migration mode: the old shares with migrate=true, i.e.
 * `autounseal migrate`), "waiting-for-active" (unsealed with migrate=true: the node that becomes active migrates the
 * seal), "-" when none is pending.
 */
function migrationCell(n: NodeStatus, p: Paint): string {
  if (!n.migration) return "-";
  return n.sealed ? p.yellow("needs-shares") : p.yellow("waiting-for-active");
}

/** A node's status with every string field shown escaped (a server may answer anything in `version`). */
function escapeServed(n: NodeStatus): NodeStatus {
  return Object.fromEntries(
    Object.entries(n).map(([k, v]) => [k, typeof v === "string" ? escapeControl(v) : v]),
  ) as unknown as NodeStatus;
}
