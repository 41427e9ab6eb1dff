/**
 * Regression tests for the bugs the fuzz tests found, one case each, so they stay found even with another seed.
 */
import { describe, expect, it } from "vitest";
import { RecipientError } from "../../../src/ciphers/errors.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import { redactSecrets } from "../../../src/util/redact.js";
import { freshSecrets } from "./fuzz-kit.js";

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RecipientError);
    return (err as Error).message;
  }
  throw new Error("expected a RecipientError");
}

describe("recipient specs never repeat a secret pasted into them", () => {
  const s = freshSecrets();
  it("a token before the colon (the 'type' part) is cut", () => {
    const msg = messageOf(() => parseRecipientSpec(`${s.token}:x`));
    expect(msg).toMatch(/^unknown recipient type "hvs\.\.\.\." in "hvs\.\.\.\.:x"/);
    expect(msg.toLowerCase()).not.toContain(s.token.toLowerCase());
  });
  it("an age secret key as an operator name is cut", () => {
    const msg = messageOf(() => parseOperatorSpec(`${s.ageSecret}=age:age1qq`));
    expect(msg).toMatch(/^bad operator name "AGE-SECRET-KEY-1\.\.\."/);
    expect(msg).not.toContain(s.ageSecret.slice(16));
  });
  it("a share (hex or base64) as a type or name is cut", () => {
    for (const secret of [s.shareHex, s.shareB64]) {
      expect(messageOf(() => parseRecipientSpec(`${secret}:x`))).not.toContain(secret);
      expect(messageOf(() => parseOperatorSpec(`${secret}=pgp:a.asc`))).not.toContain(secret);
    }
  });
});

describe("redactSecrets", () => {
  it("keeps ordinary values (paths, names, URLs) as they are", () => {
    for (const v of ["keys/alice.asc", "gpg", "https://127.0.0.1:8200", "alice", "/home/ops/ceremony-2026-11-29"]) {
      expect(redactSecrets(v)).toBe(v);
    }
  });
  it("cuts tokens, age secret keys, hex and base64 key material", () => {
    const s = freshSecrets();
    expect(redactSecrets(`a ${s.token} b`)).toBe("a hvs.... b");
    expect(redactSecrets(s.ageSecret)).toBe("AGE-SECRET-KEY-1...");
    expect(redactSecrets(s.shareHex)).toBe(`${s.shareHex.slice(0, 4)}...`);
    expect(redactSecrets(`x${s.shareB64}`)).not.toContain(s.shareB64.slice(4));
  });
});
