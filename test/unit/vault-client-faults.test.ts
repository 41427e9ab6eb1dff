import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";
import { runSealkeeper } from "../harness/run-cli.js";

// Local fault fixtures (not a Vault): a web server answering garbage and one that never answers.
let garbage: Server;
let silent: ReturnType<typeof createTcpServer>;
let garbageAddr = "";
let silentAddr = "";

beforeAll(async () => {
  garbage = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>hello, I am not Vault</html>");
  });
  garbage.listen(0, "127.0.0.1");
  await once(garbage, "listening");
  garbageAddr = `http://127.0.0.1:${(garbage.address() as { port: number }).port}`;
  silent = createTcpServer(() => {
    /* accept and never answer */
  });
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  silentAddr = `http://127.0.0.1:${(silent.address() as { port: number }).port}`;
});

afterAll(() => {
  garbage.close();
  silent.close();
});

describe("status against things that are not a healthy Vault", () => {
  it("connection refused: one line, exit 1, no stack", async () => {
    const r = await runSealkeeper(["status", "-a", "http://127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("refused the connection");
    expect(r.stderr).not.toMatch(/\bat .*\.js/);
  });
  it("a non-Vault HTTP server answering garbage", async () => {
    const r = await runSealkeeper(["status", "-a", garbageAddr, "--format", "json"]);
    expect(r.code).toBe(1);
    const [node] = JSON.parse(r.stdout);
    expect(node.reachable).toBe(false);
    expect(node.error).toMatch(/did not answer as a Vault server/);
  });
  it("a timeout is reported as such and does not hang", async () => {
    const r = await runSealkeeper(["status", "-a", silentAddr, "--timeout", "500ms", "--format", "json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/did not answer within 0.5s/);
  });
  it("a request cut by close() is not retried: status --timeout bounds the whole command (issue 27)", async () => {
    // status reads seal-status and health at once; the first time-out ends the look and close() destroys the other
    // request's socket, which was then retried as a reset connection with a fresh time-out (a frozen node: printed
    // at 8 s, exited at 16 s)
    const c = new VaultClient({ ...resolveConnection({ address: silentAddr }, {}), timeoutMs: 3_000 });
    const started = Date.now();
    const health = c.health().then(
      () => "answered",
      (e: Error) => e.message,
    );
    await new Promise((r) => setTimeout(r, 300));
    await c.close();
    expect(await health).toMatch(/reset|closed|connection/i);
    expect(Date.now() - started).toBeLessThan(2_000);
  });
  it("an unresolvable host name", async () => {
    const r = await runSealkeeper(["status", "-a", "http://no-such-host.invalid:8200", "--format", "json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/host name not found|could not be reached/);
  });
  it("a non-boolean VAULT_SKIP_VERIFY is a usage error", async () => {
    const r = await runSealkeeper(["status", "-a", garbageAddr], { env: { VAULT_SKIP_VERIFY: "yes please" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('error: VAULT_SKIP_VERIFY must be a boolean (true/false/1/0), got "yes please"\n');
  });
  it("an unreadable CA file is a usage error naming the file", async () => {
    const r = await runSealkeeper(["status", "-a", garbageAddr, "--ca-cert", "/nonexistent/ca.pem"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot read CA certificate file \/nonexistent\/ca.pem/);
  });
  it("an unknown format is refused", async () => {
    const r = await runSealkeeper(["status", "-a", garbageAddr, "--format", "xml"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/format must be table or json/);
  });
});
