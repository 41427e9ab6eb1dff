import { describe, expect, it } from "vitest";
import { looksSecret } from "../../src/util/redact.js";

describe("looksSecret (plain prompts refuse these)", () => {
  const share = "a".repeat(2) + "0123456789abcdef".repeat(4);
  it.each([
    ["a hex share", share],
    ["half a pasted share", share.slice(0, 20)],
    ["a base64 share", Buffer.from(share, "hex").toString("base64")],
    ["a Vault token", "hvs.CAESIJ0123456789abcdefghijklmnopq"],
    ["an OpenBao/legacy service token", "s.Abcdefghij0123456789KLMN"],
    ["an age secret key", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ"],
    ["a pgp private key line", "-----BEGIN PGP PRIVATE KEY BLOCK-----"],
    ["a share in a sentence", `my share is ${share}`],
  ])("%s", (_what, v) => expect(looksSecret(v)).toBe(true));
  it.each([
    ["a name", "alice"],
    ["a full name", "Carol van der Berg"],
    ["an empty answer", ""],
    ["a path", "/home/alice/keys/alice.age"],
    ["a fingerprint-named key file", "keys/carol-0123456789ABCDEF0123456789ABCDEF01234567.asc"],
    ["a long path without dots", "/home/alice/Keys/sealkeeper_operator_share_file_2026"],
    ["an e-mail", "alice@example.test"],
  ])("not %s", (_what, v) => expect(looksSecret(v)).toBe(false));
});
