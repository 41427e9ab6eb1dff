/**
 * Ports for the servers the tests start, chosen so that nothing else takes them while the server is not listening.
 *
 * A port the OS hands out for listen(0) lies in Linux's ephemeral range (32768-60999 here), the same range every
 * outgoing connection gets its local port from. A raft node binds its cluster port only when it joins or unseals,
 * and a restarted node is away from both of its ports for a while: in that window one of the suite's thousands of
 * client connections could take the port as its local end, and the node then failed with "bind: address already in
 * use" (seen: a follower's cluster listener, so it joined but never unsealed, "did not unseal within 150 s"). So the
 * ports come from below the ephemeral range, where the OS never assigns a local port, and each is reserved across
 * the test processes of this machine (a file per port holding the reserving pid, released at exit, reclaimed from a
 * dead pid), so two files running side by side never pick the same one.
 */
import { randomInt } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LOW = 15_000;
const HIGH = 32_000; // below /proc/sys/net/ipv4/ip_local_port_range's start (32768)
// shared by every test run on the machine: test/harness/tmp-setup.ts points TMPDIR at the run's own directory
const RESERVATIONS = process.env.SEALKEEPER_PORTS_DIR ?? join(tmpdir(), "sealkeeper-ports");
const mine = new Set<number>();

process.on("exit", () => {
  for (const port of mine) rmSync(join(RESERVATIONS, String(port)), { force: true });
});

/** A port outside the ephemeral range that nothing listens on and no other test process has reserved. */
export async function reservePort(): Promise<number> {
  return reserveRun(1);
}

/** `count` consecutive such ports (a node's api port and its cluster port, api+1 by Vault's convention). */
export async function reserveRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const first = randomInt(LOW, HIGH - count);
    const taken: number[] = [];
    let ok = true;
    for (let p = first; p < first + count && ok; p++) {
      if (reserve(p)) taken.push(p);
      else ok = false;
    }
    if (ok) {
      const free = await Promise.all(taken.map(isFree));
      if (free.every(Boolean)) return first;
    }
    for (const p of taken) release(p);
  }
  throw new Error(`no ${count} free consecutive ports in ${LOW}-${HIGH} on 127.0.0.1`);
}

function reserve(port: number): boolean {
  mkdirSync(RESERVATIONS, { recursive: true });
  const file = join(RESERVATIONS, String(port));
  for (let i = 0; i < 2; i++) {
    try {
      writeFileSync(file, String(process.pid), { flag: "wx" });
      mine.add(port);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (holderAlive(file)) return false;
      rmSync(file, { force: true }); // its process is gone: the reservation is stale
    }
  }
  return false;
}

function release(port: number): void {
  mine.delete(port);
  rmSync(join(RESERVATIONS, String(port)), { force: true });
}

function holderAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8"));
  } catch {
    return true; // being written right now by its owner
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}
