import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { missingTokenMessage, resolveToken } from "../../../src/vault/env.js";
import { serverKindFromHealth } from "../../../src/vault/server-kind.js";

describe("where the token comes from (issue 35)", () => {
  const home = mkdtempSync(join(tmpdir(), "sk-token-home-"));
  writeFileSync(join(home, ".vault-token"), "from-file\n");
  it("flag, then BAO_TOKEN, then VAULT_TOKEN, then ~/.vault-token, each named", () => {
    expect(resolveToken({ token: "f" }, { VAULT_TOKEN: "v", HOME: home })).toEqual({ token: "f", source: "flag" });
    expect(resolveToken({}, { BAO_TOKEN: "b", VAULT_TOKEN: "v" })).toEqual({ token: "b", source: "BAO_TOKEN" });
    expect(resolveToken({}, { VAULT_TOKEN: "v", HOME: home })).toEqual({ token: "v", source: "VAULT_TOKEN" });
    expect(resolveToken({}, { HOME: home })).toEqual({ token: "from-file", source: "~/.vault-token" });
    expect(resolveToken({}, { HOME: "/nonexistent" })).toEqual({ token: undefined, source: undefined });
  });
  it("a variable set but empty (or blank) is no token, never the file's", () => {
    expect(resolveToken({}, { VAULT_TOKEN: "", HOME: home })).toEqual({
      token: undefined,
      source: "VAULT_TOKEN (empty)",
    });
    expect(resolveToken({}, { BAO_TOKEN: " ", VAULT_TOKEN: "v" })).toEqual({
      token: undefined,
      source: "BAO_TOKEN (empty)",
    });
    expect(missingTokenMessage("VAULT_TOKEN (empty)")).toMatch(/VAULT_TOKEN is set but empty/);
    expect(missingTokenMessage(undefined)).toMatch(/set VAULT_TOKEN or BAO_TOKEN/);
  });
});

describe("server kind from sys/health", () => {
  it("Vault reports enterprise; OpenBao does not and is 2.x", () => {
    expect(serverKindFromHealth({ version: "1.21.0", enterprise: false })).toBe("vault");
    expect(serverKindFromHealth({ version: "2.6.2" })).toBe("openbao");
    expect(serverKindFromHealth({ version: "1.21.0" })).toBe("vault");
  });
});
