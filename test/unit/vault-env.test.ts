import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.js";
import {
  isLoopbackAddress,
  normaliseAddress,
  parseBoolStrict,
  parseDurationMs,
  readEnv,
  resolveConnection,
} from "../../src/vault/env.js";

describe("readEnv", () => {
  it("prefers BAO_ over VAULT_ when present, as OpenBao's CLI does", () => {
    expect(readEnv({ BAO_ADDR: "http://b", VAULT_ADDR: "http://v" }, "ADDR")).toBe("http://b");
    expect(readEnv({ VAULT_ADDR: "http://v" }, "ADDR")).toBe("http://v");
    // a present but empty BAO_ variable still wins (and reads as unset), it does not fall back
    expect(readEnv({ BAO_TOKEN: "", VAULT_TOKEN: "x" }, "TOKEN")).toBeUndefined();
  });
});

describe("parseBoolStrict", () => {
  it("accepts Go's ParseBool spellings", () => {
    for (const t of ["1", "t", "T", "TRUE", "true", "True"]) expect(parseBoolStrict(t, "x")).toBe(true);
    for (const f of ["0", "f", "F", "FALSE", "false", "False"]) expect(parseBoolStrict(f, "x")).toBe(false);
  });
  it("rejects anything else with the variable's name", () => {
    expect(() => parseBoolStrict("yes", "VAULT_SKIP_VERIFY")).toThrow(
      'VAULT_SKIP_VERIFY must be a boolean (true/false/1/0), got "yes"',
    );
  });
});

describe("resolveConnection", () => {
  it("VAULT_SKIP_VERIFY=false means verify (the node-vault bug this avoids)", () => {
    expect(resolveConnection({}, { VAULT_SKIP_VERIFY: "false" }).tls.skipVerify).toBe(false);
    expect(resolveConnection({}, { VAULT_SKIP_VERIFY: "true" }).tls.skipVerify).toBe(true);
  });
  it("rejects a non-boolean VAULT_SKIP_VERIFY", () => {
    expect(() => resolveConnection({}, { VAULT_SKIP_VERIFY: "maybe" })).toThrow(UsageError);
  });
  it("flags win over BAO_ which wins over VAULT_", () => {
    const env = { BAO_ADDR: "http://127.0.0.1:1", VAULT_ADDR: "http://127.0.0.1:2", VAULT_NAMESPACE: "ns1" };
    expect(resolveConnection({}, env).address).toBe("http://127.0.0.1:1");
    expect(resolveConnection({ address: "http://127.0.0.1:3/" }, env).address).toBe("http://127.0.0.1:3");
    expect(resolveConnection({}, env).namespace).toBe("ns1");
  });
  it("defaults to Vault's address and a 60 s timeout", () => {
    const s = resolveConnection({}, {});
    expect(s.address).toBe("https://127.0.0.1:8200");
    expect(s.timeoutMs).toBe(60_000);
  });
  it("parses VAULT_CLIENT_TIMEOUT as seconds or a duration", () => {
    expect(resolveConnection({}, { VAULT_CLIENT_TIMEOUT: "5" }).timeoutMs).toBe(5000);
    expect(resolveConnection({}, { VAULT_CLIENT_TIMEOUT: "1m30s" }).timeoutMs).toBe(90_000);
    expect(() => resolveConnection({}, { VAULT_CLIENT_TIMEOUT: "soon" })).toThrow(/VAULT_CLIENT_TIMEOUT/);
  });
});

describe("addresses", () => {
  it("rejects non-URLs and other schemes", () => {
    expect(() => normaliseAddress("127.0.0.1:8200")).toThrow(/must start with http|not a URL/);
    expect(() => normaliseAddress("ftp://x")).toThrow(/must start with http/);
  });
  it("knows loopback", () => {
    expect(isLoopbackAddress("http://127.0.0.1:8200")).toBe(true);
    expect(isLoopbackAddress("http://127.3.2.1:8200")).toBe(true);
    expect(isLoopbackAddress("http://localhost:8200")).toBe(true);
    expect(isLoopbackAddress("http://[::1]:8200")).toBe(true);
    expect(isLoopbackAddress("http://10.0.0.1:8200")).toBe(false);
    expect(isLoopbackAddress("http://vault.example.com")).toBe(false);
  });
  it("parses durations", () => {
    expect(parseDurationMs("500ms", "x")).toBe(500);
    expect(parseDurationMs("2h", "x")).toBe(7_200_000);
    expect(() => parseDurationMs("2 h", "x")).toThrow();
  });
});

describe("userinfo in an address (issue 34)", () => {
  it.each([
    ["https://admin:s3cret-pass@vault.example:8200/", "https://vault.example:8200"],
    ["http://admin@127.0.0.1:8200", "http://127.0.0.1:8200"],
    ["https://a:b@c@vault.example:8200/v1?x=@y", "https://vault.example:8200/v1?x=@y"],
    ["https://vault.example:8200/path@x", "https://vault.example:8200/path@x"],
  ])("%s is normalised to %s", (given, expected) => {
    expect(normaliseAddress(given)).toBe(expected);
    expect(resolveConnection({}, { VAULT_ADDR: given }).address).toBe(expected);
  });

  // (init: its messages, pending record and transcript, test/unit/bounded-answers.test.ts)
  it("never reaches the output of a command", async () => {
    const { runSealkeeper } = await import("../harness/run-cli.js");
    const r = await runSealkeeper(["status", "--format", "json", "--timeout", "1s"], {
      env: { VAULT_ADDR: "http://admin:s3cret-pass@127.0.0.1:1" },
    });
    expect(`${r.stdout}${r.stderr}`).not.toContain("s3cret-pass");
    expect(JSON.parse(r.stdout)[0].address).toBe("http://127.0.0.1:1");
  });
});
