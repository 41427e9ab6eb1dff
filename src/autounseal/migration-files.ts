/**
 * The files an `autounseal migrate --manifest` run keeps beside the manifest, besides the final record
 * (seal-migration.json, written by writeMigrationRecord):
 * - `seal-migration.lock`: held while a run acts on the cluster, so that a second run against the same manifest
 *   refuses instead of sending shares beside the first. It names the run (pid, host, start); a lock whose process no
 *   longer runs on this host is stale, said so, and taken over.
 * - `seal-migration-progress.json`: where each node stood when a run ended unfinished (interrupted, or a node timed
 *   out), replaced by each such run and removed once the record is written. Neither holds a secret (0644).
 */
import { randomBytes } from "node:crypto";
import { access, link, open, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { UsageError } from "../errors.js";
import type { MigrationNodeState } from "./migrate.js";

export const LOCK_FILE = "seal-migration.lock";
export const PROGRESS_FILE = "seal-migration-progress.json";
export const RECORD_FILE = "seal-migration.json";

interface LockBody {
  pid: number;
  host: string;
  started: string;
}

export interface MigrationLock {
  path: string;
  /** Set when a stale lock (its run gone) was found and taken over: one line for the operator. */
  tookOver?: string;
  release(): Promise<void>;
}

/**
 * Takes the lock beside the manifest. Throws UsageError when another run holds it (alive, or on another host: then
 * nobody here can tell, and the operator decides).
 */
export async function acquireMigrationLock(manifestPath: string): Promise<MigrationLock> {
  const path = join(dirname(manifestPath), LOCK_FILE);
  const body: LockBody = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  const text = `${JSON.stringify(body)}\n`;
  // written whole under a temporary name, then linked into place: a reader never sees a half-written lock
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  await writeFile(temp, text, { mode: 0o644, flag: "wx" });
  try {
    try {
      await link(temp, path);
      return { path, release: () => releaseLock(path, body) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw lockError(path, err);
    }
    const holder = await readLock(path);
    if (holder && (holder.host !== body.host || processAlive(holder.pid))) {
      throw new UsageError(
        `another autounseal migrate holds ${path} (pid ${holder.pid} on ${holder.host}, started ${holder.started}): ` +
          "two runs must not send shares to the same cluster at once",
        {
          hint:
            holder.host === body.host
              ? "wait for that run to end (or stop it: it writes where the migration stands), then run this again"
              : `if that run is no longer running on ${holder.host}, remove ${path} and run this again`,
        },
      );
    }
    const tookOver = holder
      ? `a stale lock of pid ${holder.pid} (started ${holder.started}, no longer running) was found and taken over`
      : "an unreadable lock was found and taken over";
    // replace it atomically with ours; a concurrent run doing the same is caught by the re-check
    await rename(temp, path);
    const now = await readLock(path);
    if (now?.pid !== body.pid || now.host !== body.host) throw lockError(path, new Error("taken by another run"));
    return { path, tookOver, release: () => releaseLock(path, body) };
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

function lockError(path: string, err: unknown): UsageError {
  return new UsageError(`cannot take the lock ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
}

async function readLock(path: string): Promise<LockBody | undefined> {
  try {
    const b = JSON.parse(await readFile(path, "utf8")) as Partial<LockBody>;
    return typeof b.pid === "number" && typeof b.host === "string"
      ? { pid: b.pid, host: b.host, started: String(b.started) }
      : undefined;
  } catch {
    return undefined;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, owned by someone else
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes the lock if it is still ours. */
async function releaseLock(path: string, body: LockBody): Promise<void> {
  const now = await readLock(path);
  if (now?.pid === body.pid && now.host === body.host) await unlink(path).catch(() => undefined);
}

/**
 * Writes where each node stands (replacing an earlier progress file of an unfinished run: it is state, not a record).
 * Returns its path.
 */
export async function writeMigrationProgress(
  manifestPath: string,
  nodes: MigrationNodeState[],
  why: "interrupted" | "timed-out",
): Promise<string> {
  const path = join(dirname(manifestPath), PROGRESS_FILE);
  const body = {
    format: "sealkeeper-seal-migration-progress",
    version: 1,
    written: new Date().toISOString(),
    why,
    resume: "run the same autounseal migrate command again: finished nodes are skipped",
    nodes,
  };
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  const fh = await open(temp, "wx", 0o644);
  try {
    await fh.writeFile(`${JSON.stringify(body, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, path);
  return path;
}

/** Removes the progress file once the migration record is written. */
export async function removeMigrationProgress(manifestPath: string): Promise<void> {
  await unlink(join(dirname(manifestPath), PROGRESS_FILE)).catch(() => undefined);
}

/**
 * True when an earlier run of the migration beside this manifest left where it stood (the progress file) and no record:
 * the cluster may have finished since, and a rerun writes the record.
 */
export async function migrationUnrecorded(manifestPath: string): Promise<boolean> {
  const dir = dirname(manifestPath);
  const exists = (name: string) =>
    access(join(dir, name)).then(
      () => true,
      () => false,
    );
  return (await exists(PROGRESS_FILE)) && !(await exists(RECORD_FILE));
}
