import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { kubeRequest } from "../../src/bootstrap/kubeconfig.js";
import { DEFERRED_EXTRA_CA_CERTS, defaultTrustContext, resetTrustContextForTests } from "../../src/util/tls-trust.js";
import { VaultClient } from "../../src/vault/client.js";
import type { ConnectionSettings } from "../../src/vault/env.js";
import { makeTlsMaterial, type TlsMaterial } from "../harness/cluster.js";

// A local HTTPS server whose certificate only a throwaway CA (openssl, test/harness/cluster.ts) vouches for: the
// deferred NODE_EXTRA_CA_CERTS (src/util/tls-trust.ts) must make each TLS caller trust it, and nothing else may.
let tlsFiles: TlsMaterial;
let server: https.Server;
let url: string;

beforeAll(async () => {
  tlsFiles = makeTlsMaterial(mkdtempSync(join(tmpdir(), "sk-trust-")));
  server = https.createServer(
    { cert: readFileSync(tlsFiles.certPath), key: readFileSync(tlsFiles.keyPath) },
    (_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ initialized: false, sealed: true, t: 3, n: 5, progress: 0, type: "shamir" }));
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const slot = globalThis as Record<symbol, unknown>;
function defer(file: string | undefined): void {
  if (file === undefined) delete slot[DEFERRED_EXTRA_CA_CERTS];
  else slot[DEFERRED_EXTRA_CA_CERTS] = file;
  resetTrustContextForTests();
}
afterEach(() => defer(undefined));

function get(agentOptions: https.AgentOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get(`${url}/v1/sys/seal-status`, { agent: new https.Agent(agentOptions) }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on("error", reject);
  });
}

describe("defaultTrustContext", () => {
  it("is undefined when nothing was deferred (Node's own store is right)", () => {
    expect(defaultTrustContext()).toBeUndefined();
  });
  it("trusts the deferred file's CA on top of the bundled roots, one shared context", async () => {
    defer(tlsFiles.caCertPath);
    const ctx = defaultTrustContext();
    expect(ctx).toBeDefined();
    expect(defaultTrustContext()).toBe(ctx);
    await expect(get({ secureContext: ctx })).resolves.toBe(200);
  });
  it("without it the same server is refused (the test can fail)", async () => {
    await expect(get({})).rejects.toThrow(/self-signed|unable to verify|local issuer/i);
  });
  it("an unreadable file warns once and leaves the default trust", () => {
    defer(join(tlsFiles.dir, "missing.pem"));
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((c: string) => writes.push(String(c)) > 0) as typeof process.stderr.write;
    try {
      expect(defaultTrustContext()).toBeUndefined();
      expect(defaultTrustContext()).toBeUndefined();
    } finally {
      process.stderr.write = orig;
    }
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(
      /Ignoring extra certs from `.*missing\.pem` \(NODE_EXTRA_CA_CERTS\), load failed: ENOENT/,
    );
  });
});

const settings = (): ConnectionSettings => ({
  address: url,
  token: undefined,
  namespace: undefined,
  timeoutMs: 10_000,
  tls: {
    caCert: undefined,
    caPath: undefined,
    clientCert: undefined,
    clientKey: undefined,
    serverName: undefined,
    skipVerify: false,
  },
});

describe("every TLS caller uses it", () => {
  it("the Vault client (no --ca-cert)", async () => {
    defer(tlsFiles.caCertPath);
    const c = new VaultClient(settings());
    await expect(c.sealStatus()).resolves.toMatchObject({ sealed: true, t: 3 });
  });
  it("the Vault client without the deferral refuses the same server", async () => {
    const c = new VaultClient(settings());
    await expect(c.sealStatus()).rejects.toThrow(/not trusted/);
  });
  it("the Kubernetes calls of a kubeconfig without a CA", async () => {
    defer(tlsFiles.caCertPath);
    const r = await kubeRequest({ context: "t", server: url, credentials: { token: "x" } }, "GET", "/version");
    expect(r.status).toBe(200);
  });
  it("a kubeconfig's own CA replaces it (another CA refuses the server)", async () => {
    defer(tlsFiles.caCertPath);
    const other = makeTlsMaterial(mkdtempSync(join(tmpdir(), "sk-trust-other-")));
    const ca = readFileSync(other.caCertPath, "utf8");
    await expect(kubeRequest({ context: "t", server: url, ca, credentials: {} }, "GET", "/version")).rejects.toThrow(
      /cannot reach/,
    );
  });
});

/**
 * The deferral is only as good as its coverage: a TLS caller that makes its own connections without
 * defaultTrustContext would silently stop trusting the user's NODE_EXTRA_CA_CERTS under the launcher. Every source
 * file that loads node:https / node:tls (other than type-only) or builds a KMS client must use it.
 */
describe("no TLS caller in src/ bypasses the deferred trust", () => {
  it("each file that opens TLS connections uses defaultTrustContext", () => {
    const root = join(import.meta.dirname, "..", "..", "src");
    const files = (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    const callers = files.filter((f) => {
      const text = readFileSync(join(root, f), "utf8").replace(/^import type .*$/gm, "");
      return /["']node:(https|tls)["']|KMSClient\(/.test(text);
    });
    const exempt = new Set(["util/lazy-builtin.ts", "util/tls-trust.ts"]);
    const found = callers.filter((f) => !exempt.has(f)).sort();
    expect(found).toEqual([
      "autounseal/validate.ts",
      "bootstrap/kube-check.ts",
      "bootstrap/kubeconfig.ts",
      "vault/client.ts",
    ]);
    for (const f of found)
      expect(readFileSync(join(root, f), "utf8"), f).toMatch(/\b(defaultTrustContext|trustOptions)\(/);
  });
});
