/**
 * Issue 25 item 3: `status --timeout 3s` took 6.2 s against an address that does not answer. The command's answer
 * came at 3 s, but one of the node's two requests (seal-status, health) was still in flight when the command closed
 * its client; the closed socket counted as a reset and the request was retried with a fresh timeout, keeping the
 * process alive 3 s more. The timeout now bounds the whole command: no request outlives it, for one and for several
 * addresses, and a retry never goes past the request's own timeout.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";

/** TCP servers that accept and never answer; they count the connections they get. */
let silent: { server: Server; address: string; connections: number; sockets: Socket[] }[] = [];

beforeAll(async () => {
  silent = await Promise.all(
    [0, 1, 2].map(async () => {
      const s = { server: createServer(), address: "", connections: 0, sockets: [] as Socket[] };
      s.server.on("connection", (c) => {
        s.connections++;
        s.sockets.push(c);
      });
      s.server.listen(0, "127.0.0.1");
      await once(s.server, "listening");
      s.address = `http://127.0.0.1:${(s.server.address() as { port: number }).port}`;
      return s;
    }),
  );
});

afterAll(() => {
  for (const s of silent) {
    for (const c of s.sockets) c.destroy();
    s.server.close();
  }
});

/**
 * Runs `status` as its own process (tsx, the source): how long the command took to answer (start-up aside: from the
 * process's start of main to its table on stdout, as the process measures it) and how long the process lived on
 * after answering. Start-up is left out: on a loaded machine it varies by seconds.
 */
async function statusProcess(
  addresses: string[],
  timeout: string,
): Promise<{ code: number | null; answerMs: number; afterMs: number }> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join("src", "cli", "entry.ts"),
      "status",
      ...addresses.flatMap((a) => ["-a", a]),
      "--timeout",
      timeout,
    ],
    { stdio: ["ignore", "pipe", "ignore"], env: { ...process.env, NO_COLOR: "1" } },
  );
  let answeredAt = 0;
  child.stdout.on("data", () => {
    answeredAt ||= Date.now();
  });
  // the command's first request goes out once the process is up: the silent servers see it
  const firstConnection = new Promise<number>((resolve) => {
    for (const s of silent) s.server.once("connection", () => resolve(Date.now()));
  });
  const [code] = (await once(child, "exit")) as [number | null];
  const exitedAt = Date.now();
  return { code, answerMs: answeredAt - (await firstConnection), afterMs: exitedAt - answeredAt };
}

describe("status --timeout bounds the whole command", () => {
  it.each([1, 3])(
    "%i silent address(es), --timeout 3s: answered within it, and nothing runs on after",
    async (n) => {
      const before = silent.map((s) => s.connections);
      const r = await statusProcess(
        silent.slice(0, n).map((s) => s.address),
        "3s",
      );
      expect(r.code).toBe(1);
      expect(r.answerMs).toBeLessThan(3_000 + 1_000);
      // before the fix a request retried after the command had answered kept the process 3 s more
      expect(r.afterMs).toBeLessThan(1_500);
      // two requests per node (seal-status, health), none retried after the command ended
      silent.slice(0, n).forEach((s, i) => {
        expect(s.connections - before[i]!).toBe(2);
      });
    },
    60_000,
  );

  it("a request's retries stay within its timeout", async () => {
    // a server that resets every connection at once: retried (idempotent GET), but never past the timeout
    const reset = createServer((c) => c.resetAndDestroy());
    reset.listen(0, "127.0.0.1");
    await once(reset, "listening");
    const client = new VaultClient(
      resolveConnection(
        { address: `http://127.0.0.1:${(reset.address() as { port: number }).port}`, timeout: "100ms" },
        {},
      ),
    );
    const started = Date.now();
    await expect(client.sealStatus()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(100 + 150); // before: 3 attempts and 300 ms of pauses
    await client.close();
    reset.close();
  });
});
