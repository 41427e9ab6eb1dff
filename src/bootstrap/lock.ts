/**
 * One apply of a spec at a time: a lock ON THE SERVER, so that two pipelines (two runners, two machines) that apply
 * the same spec at once do not both send every write. The lock is a KV v2 entry in sealkeeper's own state mount
 * (`sealkeeper/`, created on first use, never purged), written with check-and-set: version 0 ("only if absent") to
 * take it, the version read to take over a stale one (its expiry passed: the holder died without releasing it) or to
 * refresh it. The entry names its holder (host, pid, start) and its expiry; the holder refreshes it while it runs.
 * It guards against concurrent sealkeeper runs, not against a hostile token holder (who could delete it).
 */

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { SealkeeperError, VaultHttpError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";

export const STATE_MOUNT = "sealkeeper";
const DEFAULT_TTL_MS = 5 * 60_000;

export interface LockHolder {
  owner: string;
  run: string;
  acquired: string;
  expires: string;
}

/** Another run holds the lock (and did not let go within the wait). Exit 1: nothing was applied. */
export class LockHeldError extends SealkeeperError {}

export interface HeldLock {
  readonly key: string;
  readonly tookOver: LockHolder | undefined;
  release(): Promise<void>;
}

/** The lock's key for a spec: its file name without directory or extension, in KV-safe characters. */
export function lockKeyFor(specFile: string): string {
  const base = specFile.replace(/^.*[\\/]/, "").replace(/\.(ya?ml|json)$/i, "");
  return `locks/apply-${base.replace(/[^A-Za-z0-9._-]/g, "_") || "spec"}`;
}

/** Enables the state mount (KV v2) when it is absent. */
export async function ensureStateMount(client: VaultClient): Promise<void> {
  const mounts = await client.read<{ data?: Record<string, unknown> } & Record<string, unknown>>("sys/mounts");
  const table = (mounts?.data ?? mounts ?? {}) as Record<string, unknown>;
  if (`${STATE_MOUNT}/` in table) return;
  try {
    await client.write(`sys/mounts/${STATE_MOUNT}`, {
      type: "kv",
      options: { version: "2" },
      description: "sealkeeper's own state: apply locks (never holds a secret)",
    });
  } catch (err) {
    // another run enabled it between the read and the write
    if (!(err instanceof VaultHttpError && err.status === 400 && /already in use/i.test(err.errors.join(" "))))
      throw err;
  }
}

interface KvRead {
  data?: { data?: LockHolder | null; metadata?: { version?: number; deletion_time?: string; destroyed?: boolean } };
}

async function readLock(client: VaultClient, key: string): Promise<{ holder?: LockHolder; version: number }> {
  const res = await client.read<KvRead>(`${STATE_MOUNT}/data/${key}`);
  const version = res?.data?.metadata?.version ?? 0;
  const deleted = Boolean(res?.data?.metadata?.deletion_time) || res?.data?.metadata?.destroyed === true;
  return { holder: deleted ? undefined : (res?.data?.data ?? undefined), version };
}

/** Writes with check-and-set; false when another writer got there first. */
async function casWrite(
  client: VaultClient,
  key: string,
  holder: LockHolder,
  cas: number,
  upgradingUntil = 0,
): Promise<boolean> {
  try {
    await client.write(`${STATE_MOUNT}/data/${key}`, { options: { cas }, data: holder });
    return true;
  } catch (err) {
    if (err instanceof VaultHttpError && err.status === 400 && /check-and-set/i.test(err.errors.join(" ")))
      return false;
    // the new mount is still upgrading: the caller reads again
    if (isUpgrading(err) && Date.now() < upgradingUntil) {
      await new Promise((r) => setTimeout(r, 200));
      return false;
    }
    throw err;
  }
}

/** KV v2's answer while a mount's upgrade runs (right after it is enabled). */
function isUpgrading(err: unknown): boolean {
  return err instanceof VaultHttpError && /upgrad/i.test(err.errors.join(" "));
}

/**
 * Takes the lock, waiting up to `waitMs` for a live holder to let go (0: fail at once). A holder whose expiry has
 * passed is taken over (and named in the result). The lock is refreshed every ttl/3 until released.
 * @throws LockHeldError naming the holder and its expiry.
 */
export async function acquireApplyLock(
  client: VaultClient,
  key: string,
  opts: { waitMs?: number; ttlMs?: number; now?: () => number; onWait?: (holder: LockHolder) => void } = {},
): Promise<HeldLock> {
  const now = opts.now ?? Date.now;
  const ttl = opts.ttlMs ?? DEFAULT_TTL_MS;
  const deadline = now() + (opts.waitMs ?? 0);
  await ensureStateMount(client);
  const run = randomBytes(8).toString("hex");
  const mine = (): LockHolder => ({
    owner: `${hostname()} pid ${process.pid}`,
    run,
    acquired: started,
    expires: new Date(now() + ttl).toISOString(),
  });
  const started = new Date(now()).toISOString();
  let announced = false;
  // a KV v2 mount enabled a moment ago answers "upgrading" until its first upgrade pass is done: wait for it
  const mountReady = Date.now() + 30_000;
  for (;;) {
    let observed: Awaited<ReturnType<typeof readLock>>;
    try {
      observed = await readLock(client, key);
    } catch (err) {
      if (isUpgrading(err) && Date.now() < mountReady) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      throw err;
    }
    const { holder, version } = observed;
    const stale = holder !== undefined && Date.parse(holder.expires) <= now();
    if (holder === undefined || stale) {
      if (await casWrite(client, key, mine(), version, mountReady)) {
        return held(client, key, run, mine, ttl, stale ? holder : undefined);
      }
      continue; // someone else wrote between our read and write: look again
    }
    if (now() >= deadline) {
      throw new LockHeldError(
        `another apply of this spec holds the lock ${STATE_MOUNT}/${key}: ${holder.owner}, since ${holder.acquired}, ` +
          `until ${holder.expires} unless it refreshes it; nothing was applied`,
        {
          hint:
            "wait for it to finish and run again (its writes converge the same state), or pass --lock-timeout 10m " +
            "to wait; a lock whose holder died is taken over once its expiry passes",
        },
      );
    }
    if (!announced) opts.onWait?.(holder);
    announced = true;
    await new Promise((r) => setTimeout(r, Math.min(2000, Math.max(100, deadline - now()))));
  }
}

function held(
  client: VaultClient,
  key: string,
  run: string,
  mine: () => LockHolder,
  ttl: number,
  tookOver: LockHolder | undefined,
): HeldLock {
  let refreshing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(
    () => {
      refreshing = (async () => {
        const { holder, version } = await readLock(client, key);
        if (holder?.run === run) await casWrite(client, key, mine(), version);
      })().catch(() => undefined);
    },
    Math.max(1000, Math.floor(ttl / 3)),
  );
  timer.unref();
  return {
    key,
    tookOver,
    async release() {
      clearInterval(timer);
      await refreshing;
      const { holder } = await readLock(client, key).catch(() => ({ holder: undefined }));
      // only our own: a run that lost the lock (it expired while we were stopped) leaves the new holder's alone
      if (holder?.run === run) await client.delete(`${STATE_MOUNT}/metadata/${key}`).catch(() => undefined);
    },
  };
}
