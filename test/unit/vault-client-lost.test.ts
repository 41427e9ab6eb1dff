/**
 * Issue 26.6: a lost connection says what it knows. Refused (never sent), redirected (not processed there), and sent
 * with no answer are three different things; VaultConnectionError.requestSent and the "redirect" reason tell them
 * apart. Local fixtures: a port nothing listens on, a server redirecting, a server that reads the request and closes.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer, type Server as TcpServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultConnectionError } from "../../src/errors.js";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";

let redirecting: Server;
let hangUp: TcpServer;
const addr = (s: Server | TcpServer) => `http://127.0.0.1:${(s.address() as { port: number }).port}`;

beforeAll(async () => {
  redirecting = createServer((_req, res) => {
    res.writeHead(307, { location: "http://10.255.255.1:8200/v1/sys/generate-root/update" });
    res.end();
  });
  redirecting.listen(0, "127.0.0.1");
  hangUp = createTcpServer((socket) => {
    // reads the whole request, then closes without an answer
    socket.on("data", (d) => {
      if (d.toString().includes("\r\n\r\n")) setTimeout(() => socket.destroy(), 50);
    });
  });
  hangUp.listen(0, "127.0.0.1");
  await Promise.all([once(redirecting, "listening"), once(hangUp, "listening")]);
});
afterAll(() => {
  redirecting.close();
  hangUp.close();
});

function client(address: string): VaultClient {
  return new VaultClient(resolveConnection({ address }, {}));
}

async function failure(address: string): Promise<VaultConnectionError> {
  const c = client(address);
  try {
    await c.request("PUT", "sys/generate-root/update", { body: { key: "00", nonce: "n" } });
  } catch (err) {
    return err as VaultConnectionError;
  } finally {
    await c.close();
  }
  throw new Error("the request did not fail");
}

describe("lost connections told apart", () => {
  it("refused: never sent", async () => {
    const err = await failure("http://127.0.0.1:9");
    expect(err).toBeInstanceOf(VaultConnectionError);
    expect(err).toMatchObject({ reason: "refused", requestSent: false });
  });

  it("redirected: not processed there, not followed", async () => {
    const err = await failure(addr(redirecting));
    expect(err).toMatchObject({ reason: "redirect", requestSent: false });
    expect(err.message).toContain(
      "answered 307 to PUT /v1/sys/generate-root/update, redirecting to http://10.255.255.1:8200",
    );
    expect(err.message).toContain("it did not process the request");
  });

  it("sent with no answer: unknown", async () => {
    const err = await failure(addr(hangUp));
    expect(err).toMatchObject({ reason: "reset", requestSent: true });
  });
});
