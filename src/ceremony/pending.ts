/**
 * The pending-ceremony journal: before an init request (or a rekey's completing share) goes out, sealkeeper writes (and fsyncs) one small record
 * naming the node, the output directory and the transcript, in a per-user state directory; it removes the record once
 * the manifest is written (or notes the rescue bundle). A record still there while its node is initialised and no
 * manifest or rescue bundle exists means the answer was lost after the server produced it (SIGKILL, power loss, a
 * connection cut after the request): the next `init` or `status` against that node says so and what to do.
 *
 * Never holds a secret. Best effort: when no state directory can be used, the transcript line (fsynced before the
 * request, in the output directory) is the only record, and the caller is told so once.
 */
import type * as Crypto from "node:crypto";
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { lazyBuiltin } from "../util/lazy-builtin.js";

// only writing a record needs randomness: `status` reads records, and should not load node:crypto for it
const crypto = lazyBuiltin<typeof Crypto>("node:crypto");

export interface PendingRecord {
  format: "sealkeeper-pending";
  /** init: the answer holds the shares and the root token; rekey: the completing OLD share's answer, the new shares. */
  ceremony: "init" | "rekey";
  node: string;
  startedAt: string;
  pid: number;
  host: string;
  /** The output directory (where manifest.json goes). */
  out: string;
  transcript?: string;
  /** Set when the answer went to a rescue bundle instead. */
  rescue?: string;
  /** rekey: the attempt's nonce, and whether the new shares wait for verification (else they are in force at once). */
  nonce?: string;
  verification?: boolean;
}

type Env = Record<string, string | undefined>;

/** $SEALKEEPER_STATE_DIR, else $XDG_STATE_HOME/sealkeeper, else ~/.local/state/sealkeeper (when $HOME exists). */
export function pendingDir(env: Env): string | undefined {
  if (env.SEALKEEPER_STATE_DIR) return join(env.SEALKEEPER_STATE_DIR, "pending");
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, "sealkeeper", "pending");
  const home = env.HOME;
  if (!home) return undefined;
  try {
    if (!statSync(home).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  return join(home, ".local", "state", "sealkeeper", "pending");
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeDurably(path: string, text: string): void {
  const tmp = `${path}.tmp-${crypto().randomBytes(3).toString("hex")}`;
  const fd = openSync(tmp, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(join(path, ".."));
}

/**
 * Writes the record, durably (file and directory fsynced) before returning. Returns its path, or undefined when no
 * state directory is usable (then `why` says why).
 */
export function recordPending(
  dir: string | undefined,
  rec: Omit<PendingRecord, "format" | "pid" | "host" | "startedAt">,
): { path?: string; why?: string } {
  if (!dir) return { why: "no state directory ($HOME unset or missing; set SEALKEEPER_STATE_DIR)" };
  const full: PendingRecord = {
    format: "sealkeeper-pending",
    ...rec,
    startedAt: new Date().toISOString(),
    pid: process.pid,
    host: hostname(),
  };
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, `${full.startedAt.replace(/[:.]/g, "-")}-${crypto().randomBytes(4).toString("hex")}.json`);
    writeDurably(path, `${JSON.stringify(full, null, 2)}\n`);
    return { path };
  } catch (err) {
    return { why: `${dir}: ${(err as NodeJS.ErrnoException).code ?? "cannot write"}` };
  }
}

/** The answer is safe in the output directory: the record goes. */
export function settlePending(path: string | undefined): void {
  if (!path) return;
  try {
    unlinkSync(path);
    fsyncDir(join(path, ".."));
  } catch {
    // already gone
  }
}

/** The answer is safe in a rescue bundle: the record says where. */
export function notePendingRescue(path: string | undefined, rescue: string): void {
  if (!path) return;
  try {
    const rec = JSON.parse(readFileSync(path, "utf8")) as PendingRecord;
    writeDurably(path, `${JSON.stringify({ ...rec, rescue }, null, 2)}\n`);
  } catch {
    // the bundle's path is in the error message as well
  }
}

/**
 * One form per node address, so that a record written for `http://127.0.0.1:8200` is found for `http://localhost:8200/`
 * too: scheme, host (lower case, `localhost` as 127.0.0.1), port (the scheme's default filled in), no path. A node
 * reached through a proxy under another address is not recognised: nothing the sealed node answers names its cluster.
 */
export function canonicalNode(address: string): string {
  try {
    const u = new URL(address);
    const host = u.hostname.toLowerCase() === "localhost" ? "127.0.0.1" : u.hostname.toLowerCase();
    const port = u.port || (u.protocol === "https:" ? "443" : "80");
    return `${u.protocol}//${host}:${port}`;
  } catch {
    return address.replace(/\/+$/, "");
  }
}

/** Every record for this node (oldest first), of one ceremony when given; unreadable files are skipped. */
export function pendingFor(
  dir: string | undefined,
  node: string,
  ceremony?: PendingRecord["ceremony"],
): { path: string; record: PendingRecord }[] {
  if (!dir) return [];
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith(".json"))
      .sort();
  } catch {
    return [];
  }
  const out: { path: string; record: PendingRecord }[] = [];
  for (const name of names) {
    try {
      const record = JSON.parse(readFileSync(join(dir, name), "utf8")) as PendingRecord;
      if (
        record.format === "sealkeeper-pending" &&
        canonicalNode(record.node) === canonicalNode(node) &&
        (ceremony === undefined || (record.ceremony ?? "init") === ceremony)
      )
        out.push({ path: join(dir, name), record });
    } catch {
      // not ours, or half-written by a dead process (written via rename, so this is not expected)
    }
  }
  return out;
}

/** The node is uninitialised: no earlier init of it can have produced shares (or its storage was wiped). */
export function clearPendingFor(dir: string | undefined, node: string): void {
  for (const { path } of pendingFor(dir, node)) settlePending(path);
}

/** Rescue bundles for `node` in the usual rescue directories. */
export function findRescueBundles(node: string, dirs: string[]): string[] {
  const found: string[] = [];
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d).filter((n) => n.startsWith("sealkeeper-rescue-") && n.endsWith(".json"));
    } catch {
      continue;
    }
    for (const n of names) {
      try {
        const b = JSON.parse(readFileSync(join(d, n), "utf8")) as { node?: string };
        if (b.node !== undefined && canonicalNode(b.node) === canonicalNode(node)) found.push(join(d, n));
      } catch {
        // not a bundle
      }
    }
  }
  return found;
}

function lastTranscriptAction(path: string | undefined): string | undefined {
  if (!path) return undefined;
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n");
    return (JSON.parse(lines.at(-1)!) as { action?: string }).action;
  } catch {
    return undefined;
  }
}

export function defaultRescueDirs(env: Env): string[] {
  return [...new Set([env.HOME ?? "", tmpdir()].filter((d) => d !== ""))];
}

/**
 * For a node that IS initialised: when a sealkeeper init of it left a record and neither a manifest nor a rescue
 * bundle, the exact story and what to do (several lines); undefined when there is nothing to report. Records whose
 * manifest exists are stale and removed.
 */
export function diagnoseLostInit(
  dir: string | undefined,
  node: string,
  rescueDirs: string[],
  now?: { sealed?: boolean },
): string | undefined {
  return lostInitReport(dir, node, rescueDirs, now)?.text;
}

/**
 * diagnoseLostInit's story with what it rests on. `now` is what the node answers: a node that is UNSEALED is not
 * locked out, so a record of a lost init of it is stale (the node was wiped and initialised again by someone else, or
 * the shares turned up): that is said, and the record removed, instead of "nobody can ever unseal this cluster".
 */
export function lostInitReport(
  dir: string | undefined,
  node: string,
  rescueDirs: string[],
  now?: { sealed?: boolean },
): { text: string; stale: boolean; records: string[] } | undefined {
  const lost: PendingRecord[] = [];
  const rescued: { rec: PendingRecord; bundle: string }[] = [];
  const found = pendingFor(dir, node, "init");
  if (found.length > 0 && now?.sealed === false) {
    const stale = found.filter(({ record }) => !existsSync(join(record.out, "manifest.json")));
    for (const { path } of found) settlePending(path);
    if (stale.length === 0) return undefined;
    return {
      stale: true,
      records: stale.map((f) => f.path),
      text: stale
        .map(
          ({ path, record }) =>
            `${node}: the record of the sealkeeper init of ${record.startedAt} (pid ${record.pid} on ${record.host}) ` +
            `that lost its answer is stale: the node is unsealed now, so someone holds the shares it needs (it was ` +
            `initialised again, or the shares were found); the record ${path} was removed`,
        )
        .join("\n"),
    };
  }
  for (const { path, record } of found) {
    if (existsSync(join(record.out, "manifest.json"))) {
      settlePending(path);
      continue;
    }
    if (record.rescue && existsSync(record.rescue)) rescued.push({ rec: record, bundle: record.rescue });
    else lost.push(record);
  }
  if (lost.length === 0 && rescued.length === 0) return undefined;
  const records = found.map((f) => f.path).filter((p) => existsSync(p));
  const bundles = findRescueBundles(node, rescueDirs);
  const lines: string[] = [];
  for (const { rec, bundle } of rescued) {
    lines.push(
      `${node} was initialised by the sealkeeper init of ${rec.startedAt} (pid ${rec.pid} on ${rec.host}), whose shares ` +
        `could not be written to ${rec.out}: they are in the rescue bundle ${bundle}; move it somewhere safe and give ` +
        "each operator their file",
    );
  }
  for (const rec of lost) {
    const last = lastTranscriptAction(rec.transcript);
    const how =
      last === "init-answer-lost"
        ? "the connection was lost after the request was sent, and the server initialised the node anyway"
        : "the process ended (SIGKILL, a crash, power loss) after the request was sent and before the answer was written";
    lines.push(
      `${node} is initialised, but the sealkeeper init of ${rec.startedAt} (pid ${rec.pid} on ${rec.host}) never ` +
        `wrote its answer: ${how}. No manifest is in ${rec.out}` +
        (bundles.length === 0 ? " and no rescue bundle names this node" : "") +
        `.${rec.transcript ? ` Its transcript ${rec.transcript} ends with "${last ?? "nothing readable"}".` : ""}`,
      `check first: ${rec.out} (manifest.json and the share files)` +
        (bundles.length > 0
          ? `, and these rescue bundles for this node: ${bundles.join(", ")}`
          : `, rescue bundles sealkeeper-rescue-*.json in ${rescueDirs.join(" and ")}`) +
        ", and whether another operator ran this init (then they hold the files).",
      "if none of them holds the shares, nobody can ever unseal this cluster: stop every node, wipe its storage " +
        "(the raft data directory or the file storage path, on every node), start the nodes again and run " +
        "sealkeeper init again (this record is cleared once the node is uninitialised again).",
    );
  }
  return { text: lines.join("\n"), stale: false, records };
}

/** What the server says about the rekey now: its attempt (if any) and whether it waits for verification. */
export interface RekeyNow {
  started: boolean;
  nonce: string;
  verificationNonce?: string;
}

/**
 * For a node whose sealkeeper rekey sent the completing OLD share and never wrote the new shares (the connection was
 * lost after it was sent, SIGKILL, power loss): what happened and what to do, from the server's rekey state now;
 * undefined when there is nothing to report. Records that no longer matter (their shares were written, or the
 * attempt they belong to is gone and had not switched the keys) are removed.
 */
export function diagnoseLostRekey(dir: string | undefined, node: string, now: RekeyNow): string | undefined {
  const lines: string[] = [];
  for (const { path, record } of pendingFor(dir, node, "rekey")) {
    if (existsSync(join(record.out, "manifest.json")) || (record.rescue && existsSync(record.rescue))) {
      settlePending(path);
      continue;
    }
    const who = `the sealkeeper rekey of ${record.startedAt} (pid ${record.pid} on ${record.host})`;
    const same = now.started && (!record.nonce || record.nonce === now.nonce);
    if (same && now.verificationNonce) {
      lines.push(
        `${node}: ${who} sent the completing share but never wrote the new shares to ${record.out} (its answer, ` +
          "their only copy, was lost: the connection dropped after the share was sent, or the process was killed). " +
          "The server now waits for them to be verified, which nobody can do: they are void and the OLD shares " +
          "stay valid. Cancel this rekey with sealkeeper rekey --cancel and start again.",
      );
    } else if (same) {
      // the completing share never counted: the attempt still collects old shares, nothing was handed out
      settlePending(path);
    } else if (!same && record.verification === false) {
      lines.push(
        `${node}: ${who} ran without verification, sent the completing share and never wrote the new shares to ` +
          `${record.out}; that rekey is no longer in progress, so it most likely completed: the new shares are in force, ` +
          "their only copy was lost and the OLD shares no longer work. Nobody can unseal this cluster after its " +
          "next seal or restart: keep every node running and unsealed, and move its data to a new cluster. " +
          "(If someone cancelled that rekey instead, the old shares still work; this record goes with --cancel.)",
      );
    } else {
      // that attempt is gone (cancelled, sealed) before any switch: the old shares are in force
      settlePending(path);
    }
  }
  return lines.length > 0 ? lines.join("\n") : undefined;
}

/** A rekey was cancelled on the node: no earlier rekey's lost answer can matter any more. */
export function clearPendingRekeys(dir: string | undefined, node: string): void {
  for (const { path } of pendingFor(dir, node, "rekey")) settlePending(path);
}
