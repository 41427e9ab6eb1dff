/**
 * OTP decoding of a generated root token, against a vector made by Vault's own sdk/helper/roottoken (Go), and the
 * endpoint detection against a stub that answers like a server with the unauthenticated endpoints turned off.
 * (The real-server behaviour is in test/integration/generate-root.test.ts.)
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fc, test } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { decodeOtpToken, encodeOtpToken, readGenerateRootStatus } from "../../../src/ceremony/generate-root.js";
import { EndpointUnavailableError } from "../../../src/ceremony/quorum-endpoint.js";
import { VaultClient } from "../../../src/vault/client.js";
import { resolveConnection } from "../../../src/vault/env.js";

// Made with github.com/hashicorp/vault/sdk v0.23.0 roottoken.EncodeToken(token, otp), with go run.
const GO_VECTOR = {
  token: "hvs.CAESIJ0123456789abcdefghijklmnop",
  otp: "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
  encoded: "KTQwagYHAhsAAHt9f317ZWdla200NDQ8PDxXWVtZX1lbWVdJ",
};

describe("decodeOtpToken", () => {
  it("decodes Vault's own encoding (Go vector)", () => {
    expect(decodeOtpToken(GO_VECTOR.encoded, GO_VECTOR.otp)).toBe(GO_VECTOR.token);
  });

  it("encodes exactly as Vault does (RawStd: no padding)", () => {
    expect(encodeOtpToken(GO_VECTOR.token, GO_VECTOR.otp)).toBe(GO_VECTOR.encoded);
  });

  it("tolerates padding on the encoded token", () => {
    const enc = encodeOtpToken("s.abcdefghijklmnopqrstuvwx", "0123456789abcdefghijklmnop");
    expect(enc.length % 4).not.toBe(0);
    const padded = enc + "=".repeat((4 - (enc.length % 4)) % 4);
    expect(decodeOtpToken(padded, "0123456789abcdefghijklmnop")).toBe("s.abcdefghijklmnopqrstuvwx");
  });

  test.prop([fc.stringMatching(/^[A-Za-z0-9.]{1,120}$/)])("round-trips any token", (token) => {
    const otp = Array.from({ length: token.length }, (_, i) => "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 26]).join("");
    expect(decodeOtpToken(encodeOtpToken(token, otp), otp)).toBe(token);
  });

  it("refuses an OTP of another length, without showing either", () => {
    let message = "";
    try {
      decodeOtpToken(GO_VECTOR.encoded, `${GO_VECTOR.otp}X`);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toBe("the encoded token is 36 bytes but the one-time password is 37: they do not belong together");
    expect(message).not.toContain(GO_VECTOR.otp);
  });

  it("refuses a token that is not base64", () => {
    expect(() => decodeOtpToken("not base64!", "abc")).toThrow("the server's encoded token is not base64");
    expect(() => decodeOtpToken("", "abc")).toThrow("the server's encoded token is not base64");
  });

  it("refuses an empty OTP", () => {
    expect(() => decodeOtpToken("QUJD", "")).toThrow("no one-time password to decode the token with");
  });
});

/** A stub server: seal-status unsealed; the rest answered from `routes` ("METHOD path" -> [status, body]). */
function stub(routes: Record<string, [number, unknown]>): Promise<{ server: Server; address: string; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const key = `${req.method} ${req.url}`;
    seen.push(`${key} token=${req.headers["x-vault-token"] ? "yes" : "no"}`);
    const [status, body] =
      req.url === "/v1/sys/seal-status"
        ? [200, { type: "shamir", initialized: true, sealed: false, t: 3, n: 5, progress: 0, nonce: "", version: "x" }]
        : (routes[key] ?? [404, { errors: [] }]);
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({ server, address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }),
    ),
  );
}

const client = (address: string, token?: string) =>
  new VaultClient({ ...resolveConnection({ address }, {}), token, timeoutMs: 5_000 });

const idle = { nonce: "", started: false, progress: 0, required: 3, complete: false, otp_length: 28 };

describe("endpoint detection (stubbed: OpenBao >= 2.5.3 answers 405 on the disabled unauthenticated path)", () => {
  const servers: Server[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

  it("uses the unauthenticated path when it answers", async () => {
    const s = await stub({ "GET /v1/sys/generate-root/attempt": [200, idle] });
    servers.push(s.server);
    const r = await readGenerateRootStatus(client(s.address));
    expect(r.endpoint).toEqual({ kind: "unauthenticated", base: "sys/generate-root" });
    expect(s.seen).toContain("GET /v1/sys/generate-root/attempt token=no");
  });

  it("falls back to the authenticated path with a token", async () => {
    const s = await stub({
      "GET /v1/sys/generate-root/attempt": [405, { errors: ["unsupported operation"] }],
      "GET /v1/sys/generate-root-token/attempt": [200, idle],
    });
    servers.push(s.server);
    const r = await readGenerateRootStatus(client(s.address, "t0ken"));
    expect(r.endpoint).toEqual({ kind: "authenticated", base: "sys/generate-root-token" });
    expect(s.seen).toContain("GET /v1/sys/generate-root-token/attempt token=yes");
  });

  it("says exactly what to do when neither is usable (no token)", async () => {
    const s = await stub({ "GET /v1/sys/generate-root/attempt": [405, { errors: ["unsupported operation"] }] });
    servers.push(s.server);
    const err = await readGenerateRootStatus(client(s.address)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointUnavailableError);
    const e = err as EndpointUnavailableError;
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain("/v1/sys/generate-root/attempt: 405 (unsupported operation)");
    expect(e.message).toContain("not tried: no token (set BAO_TOKEN or VAULT_TOKEN)");
    expect(e.hint).toContain("disable_unauthed_generate_root_endpoints = false");
    expect(e.hint).toContain("/v1/sys/generate-root-token/*");
  });

  it("names a token that may not use the authenticated path", async () => {
    const s = await stub({
      "GET /v1/sys/generate-root/attempt": [405, { errors: ["unsupported operation"] }],
      "GET /v1/sys/generate-root-token/attempt": [403, { errors: ["permission denied"] }],
    });
    servers.push(s.server);
    const err = (await readGenerateRootStatus(client(s.address, "t0ken")).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(EndpointUnavailableError);
    expect(err.message).toContain("403: the token may not use it");
  });

  it("does not hide other server errors (a 500 is not 'absent')", async () => {
    const s = await stub({ "GET /v1/sys/generate-root/attempt": [500, { errors: ["internal error"] }] });
    servers.push(s.server);
    const err = (await readGenerateRootStatus(client(s.address)).catch((e: unknown) => e)) as Error;
    expect(err).not.toBeInstanceOf(EndpointUnavailableError);
    expect(err.message).toContain("500 internal error");
  });
});
