/**
 * The client's deadline rule for irreversible requests (src/vault/client.ts RequestOptions.irreversible): the timeout
 * bounds connecting and sending, never the wait for an answer that may be the only copy of the shares. A local HTTP
 * server that answers late (the logic under test is ours; the real server is in test/integration/never-lost-init).
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";

let slow: Server;
let slowAddr = "";
/** Answers are released by the test, not by a clock. */
const pending: (() => void)[] = [];
let received = 0;

beforeAll(async () => {
  slow = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      pending.push(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ keys: ["aa"], keys_base64: ["qg=="], root_token: "x" }));
      });
    });
  });
  slow.listen(0, "127.0.0.1");
  await once(slow, "listening");
  slowAddr = `http://127.0.0.1:${(slow.address() as { port: number }).port}`;
});

afterAll(() => {
  slow.closeAllConnections();
  slow.close();
});

const client = (address: string, timeout: string) => new VaultClient(resolveConnection({ address, timeout }, {}));

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 20));
}

describe("irreversible requests have no client-side deadline once sent", () => {
  it("init waits past --timeout for a late answer, with waiting ticks, and returns it", async () => {
    const c = client(slowAddr, "200ms");
    const ticks: number[] = [];
    const before = received;
    const answer = c.init(
      { secret_shares: 1, secret_threshold: 1 },
      { waitingIntervalMs: 100, onWaiting: (ms) => ticks.push(ms) },
    );
    await until(() => received > before);
    // three timeouts' worth of waiting, observed through the ticks
    await until(() => ticks.length >= 6);
    pending.shift()!();
    const res = await answer;
    expect(res.keys).toEqual(["aa"]);
    expect(ticks[5]!).toBeGreaterThanOrEqual(500);
    await c.close();
  });

  it("an ordinary request against the same late server still times out", async () => {
    const c = client(slowAddr, "200ms");
    const err = await c.write("sys/anything", {}).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/did not answer within 0.2s/);
    pending.shift()?.();
    await c.close();
  });
});
