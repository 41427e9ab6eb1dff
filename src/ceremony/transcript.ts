/**
 * The ceremony transcript: append-only JSON lines, each chained to the previous line's hash, so that any edit,
 * insertion, reordering or deletion inside the file is detected by `verifyTranscript`. (Cutting lines off the END
 * is not detectable from the file alone: the ceremony prints the last hash so that operators can record it, and
 * `verifyTranscript` checks it when given.) Vault's audit log does not record unseal calls: this is that record.
 *
 * Never holds a secret: shares appear only as `shareFingerprint`, a truncated domain-separated SHA-256 of the share
 * bytes (32+ random bytes: not invertible, yet lets operators see who contributed the same share twice).
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { UsageError } from "../errors.js";
import { redactSecrets } from "../util/redact.js";
import { VERSION } from "../version.js";

export interface TranscriptEvent {
  action: string;
  node?: string;
  operator?: string;
  progress?: number;
  threshold?: number;
  shareFingerprint?: string;
  nonce?: string;
  detail?: string;
}

export interface TranscriptLine extends TranscriptEvent {
  seq: number;
  time: string;
  tool: string;
  prev: string;
  hash: string;
}

const GENESIS = "0".repeat(64);

/** A short public fingerprint of a share: never the share, not invertible. */
export function fingerprintShare(share: Uint8Array): string {
  return createHash("sha256").update("sealkeeper share fingerprint v1\0").update(share).digest("hex").slice(0, 16);
}

function hashLine(line: Omit<TranscriptLine, "hash">): string {
  return createHash("sha256").update(canonicalJson(line)).digest("hex");
}

/** JSON with keys sorted, so the hash does not depend on key order. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** Appends to a transcript file (created 0600 if absent), continuing the chain of what is already there. */
export class Transcript {
  private prev: string;
  private seq: number;
  /** The file does not exist yet: the first append creates it exclusively. */
  private isNew: boolean;

  private constructor(
    readonly path: string,
    prev: string,
    seq: number,
    isNew: boolean,
  ) {
    this.prev = prev;
    this.seq = seq;
    this.isNew = isNew;
  }

  /**
   * Opens (or creates) a transcript. An existing file must verify first: a ceremony never extends a broken chain.
   * @throws UsageError when the existing file does not verify or cannot be read.
   */
  static open(path: string): Transcript {
    let text: string | undefined;
    try {
      const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        text = readFileSync(fd, "utf8");
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw transcriptFileError(path, err, "read");
    }
    if (text === undefined) return new Transcript(path, GENESIS, 0, true);
    if (text === "") return new Transcript(path, GENESIS, 0, false);
    const result = verifyTranscriptText(text);
    if (!result.ok) throw new UsageError(`transcript ${path} does not verify (${result.error}); not appending to it`);
    return new Transcript(path, result.lastHash, result.lines, false);
  }

  /** Appends one event and fsyncs. Returns the line written. */
  append(event: TranscriptEvent): TranscriptLine {
    const body = {
      ...event,
      seq: this.seq + 1,
      time: new Date().toISOString(),
      tool: `sealkeeper ${VERSION}`,
      prev: this.prev,
    };
    const line: TranscriptLine = { ...body, hash: hashLine(body) };
    // never through a symlink, and a new file is created exclusively: a name planted between open() and the first
    // line (a link to a file of someone's choosing) is refused instead of written through
    let fd: number;
    try {
      fd = openSync(
        this.path,
        constants.O_WRONLY |
          constants.O_APPEND |
          constants.O_NOFOLLOW |
          (this.isNew ? constants.O_CREAT | constants.O_EXCL : 0),
        0o600,
      );
    } catch (err) {
      throw transcriptFileError(this.path, err, "append to");
    }
    this.isNew = false;
    try {
      writeSync(fd, `${JSON.stringify(line)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    // a new file's name lives in its directory: fsync that too, so the first line survives a power loss
    if (line.seq === 1) fsyncDirOf(this.path);
    this.prev = line.hash;
    this.seq = line.seq;
    return line;
  }

  get lastHash(): string {
    return this.prev;
  }
}

function transcriptFileError(path: string, err: unknown, verb: string): UsageError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ELOOP") {
    return new UsageError(`transcript ${path} is a symbolic link: refusing to follow it`, {
      hint: "give the real file's path, or a new one",
    });
  }
  if (code === "EEXIST") {
    return new UsageError(`transcript ${path} appeared after it was opened: refusing to write through it`, {
      hint: "check who else writes to the output directory",
    });
  }
  return new UsageError(`cannot ${verb} transcript ${path}: ${code}`);
}

function fsyncDirOf(path: string): void {
  const fd = openSync(dirname(path), "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export type VerifyResult = { ok: true; lines: number; lastHash: string } | { ok: false; error: string; line: number };

/** Checks every line's hash and its link to the previous one. `expectLastHash` also detects a cut-off end. */
export function verifyTranscriptText(text: string, expectLastHash?: string): VerifyResult {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  let prev = GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let parsed: TranscriptLine;
    try {
      parsed = JSON.parse(lines[i]!);
    } catch {
      return { ok: false, line: n, error: `line ${n} is not JSON` };
    }
    // entries are flat (strings and numbers): anything nested is not ours, and hashing deep nesting would overflow
    if (
      typeof parsed !== "object" ||
      parsed === null ||
      Array.isArray(parsed) ||
      typeof parsed.hash !== "string" ||
      !Object.values(parsed).every((v) => v === null || typeof v !== "object")
    ) {
      return { ok: false, line: n, error: `line ${n} is not a transcript entry` };
    }
    if (parsed.prev !== prev)
      return { ok: false, line: n, error: `line ${n} does not follow line ${n - 1} (chain broken)` };
    if (parsed.seq !== n) {
      // a hand-edited seq may be any string: shown cut like any value from outside (src/util/redact.ts)
      return {
        ok: false,
        line: n,
        error: `line ${n} has sequence number ${redactSecrets(String(JSON.stringify(parsed.seq)))}`,
      };
    }
    const { hash, ...body } = parsed;
    if (hashLine(body) !== hash) return { ok: false, line: n, error: `line ${n} was modified (hash mismatch)` };
    prev = hash;
  }
  if (expectLastHash !== undefined && prev !== expectLastHash) {
    return {
      ok: false,
      line: lines.length,
      error: "the last line's hash is not the one recorded (lines removed at the end?)",
    };
  }
  return { ok: true, lines: lines.length, lastHash: prev };
}
