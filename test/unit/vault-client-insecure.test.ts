/**
 * Issue 34, item 2: a token or key material never goes over plain HTTP to a host that is not loopback without the
 * explicit --allow-insecure-http, whichever command sends it; TLS without verification is warned about on every run
 * and needs --allow-unverified-tls for key material. The fake node is plain HTTP on 127.0.0.1, reached by a NAME the
 * client counts as remote (vault.prod.example), resolved to loopback by an injected lookup: no machine setting changes.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { LookupFunction } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";
import { runSealkeeper } from "../harness/run-cli.js";

const TOKEN = "test-token-not-a-real-one";
let node: Server;
let port = 0;
let seen: { method: string; url: string; headers: IncomingHttpHeaders; body: string }[] = [];

/** vault.prod.example -> 127.0.0.1, in this process only. */
const toLoopback: LookupFunction = (_host, opts, cb) => {
  if ((opts as { all?: boolean }).all)
    (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else cb(null, "127.0.0.1", 4);
};

beforeAll(async () => {
  node = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ initialized: true, sealed: false, t: 1, n: 1, progress: 0, version: "1.21.0" }));
    });
  });
  node.listen(0, "127.0.0.1");
  await once(node, "listening");
  port = (node.address() as { port: number }).port;
});
afterAll(() => {
  node.close();
});
beforeEach(() => {
  seen = [];
});

function remoteClient(extra: { allowInsecureHttp?: boolean } = {}): VaultClient {
  const settings = resolveConnection(
    { address: `http://vault.prod.example:${port}`, token: TOKEN, ...extra },
    { HOME: "/nonexistent" },
  );
  return new VaultClient(settings, { lookup: toLoopback });
}

describe("a token or a secret body to a plain-HTTP host that is not loopback", () => {
  it("the name is remote to the client, and the injected lookup really reaches the fake node", async () => {
    const client = remoteClient();
    expect(client.isPlainHttpRemote()).toBe(true);
    // an unauthenticated read without a body carries nothing secret: it goes
    await client.sealStatus();
    expect(seen.map((r) => r.url)).toEqual(["/v1/sys/seal-status"]);
    expect(seen[0]!.headers["x-vault-token"]).toBeUndefined();
    await client.close();
  });

  it.each([
    ["revoke-self (root revoke)", (c: VaultClient) => c.revokeSelf()],
    ["a read with the token (bootstrap plan)", (c: VaultClient) => c.read("sys/policies/acl/x")],
    ["a write (bootstrap apply)", (c: VaultClient) => c.write("sys/policies/acl/x", { policy: "" })],
    ["unseal, no token, a share in the body", (c: VaultClient) => c.unseal({ key: "00".repeat(33) })],
    ["init, no token, the answer is the keys", (c: VaultClient) => c.init({ secret_shares: 1, secret_threshold: 1 })],
  ])("%s: refused before a byte is sent", async (_what, call) => {
    const client = remoteClient();
    const err = await call(client).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(
      /^refusing to send (a token|key material) over plain HTTP to http:\/\/vault\.prod\.example:\d+ \((GET|PUT|POST) \/v1\/[a-z/-]+\): anyone on the path could read it$/,
    );
    expect((err as UsageError).hint).toBe("use https, or pass --allow-insecure-http");
    expect(seen).toEqual([]);
    await client.close();
  });

  it("with the explicit opt-in the request goes, token and all", async () => {
    const client = remoteClient({ allowInsecureHttp: true });
    await client.revokeSelf();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers["x-vault-token"]).toBe(TOKEN);
    await client.close();
  });

  it("loopback is not a network: a token to 127.0.0.1 goes without the flag", async () => {
    const client = new VaultClient(
      resolveConnection({ address: `http://127.0.0.1:${port}`, token: TOKEN }, { HOME: "/nonexistent" }),
    );
    await client.revokeSelf();
    expect(seen[0]!.headers["x-vault-token"]).toBe(TOKEN);
    await client.close();
  });

  it("CLI: root revoke, bootstrap plan and bootstrap apply refuse a token to http://vault.prod.example", async () => {
    const env = { VAULT_ADDR: "http://vault.prod.example:8200", VAULT_TOKEN: TOKEN };
    const spec = join(import.meta.dirname, "../../examples/reference/bootstrap.yaml");
    for (const argv of [
      ["root", "revoke", "--yes"],
      ["bootstrap", "plan", "-f", spec],
      ["bootstrap", "apply", "-f", spec],
    ]) {
      const r = await runSealkeeper(argv, { env });
      expect(r.stderr, argv.join(" ")).toMatch(
        /refusing to send (a token|key material) over plain HTTP to http:\/\/vault\.prod\.example:8200/,
      );
      expect(r.code, argv.join(" ")).toBe(1);
    }
  });
});

describe("TLS without verification", () => {
  it("warns on every run, and key material to a remote host needs --allow-unverified-tls", async () => {
    const r = await runSealkeeper(["unseal", "--non-interactive", "-a", "https://vault.prod.example:8200"], {
      env: { VAULT_SKIP_VERIFY: "true" },
      stdin: "",
    });
    expect(r.stderr).toContain(
      "warning: TLS verification is off (--tls-skip-verify or VAULT_SKIP_VERIFY) for https://vault.prod.example:8200",
    );
    expect(r.stderr).toContain(
      "refusing to send key material to https://vault.prod.example:8200 without verifying its TLS certificate",
    );
    expect(r.code).toBe(1);
    const status = await runSealkeeper(["status", "-a", "https://127.0.0.1:1", "--tls-skip-verify"]);
    expect(status.stderr).toContain("warning: TLS verification is off");
  });

  it("the opt-in lifts the refusal (the run then fails only at the unreachable name)", async () => {
    const r = await runSealkeeper(
      ["unseal", "--non-interactive", "--allow-unverified-tls", "-a", "https://vault.prod.example:8200"],
      { env: { VAULT_SKIP_VERIFY: "true" }, stdin: "" },
    );
    expect(r.stderr).not.toContain("without verifying its TLS certificate");
  });
});
