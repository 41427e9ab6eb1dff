import { describe, expect, it } from "vitest";
import { RecipientError } from "../../../src/ciphers/errors.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";

const AGE1 = "age1yyrpwdxa0q6dczmzvfgtqlkucdzkncsjertraj0zq2tfhrl249hqwz800q";

describe("parseRecipientSpec", () => {
  it("parses a pgp key file", () => {
    expect(parseRecipientSpec("pgp:/keys/alice.asc")).toEqual({
      type: "pgp",
      value: "/keys/alice.asc",
      source: "file",
      raw: "pgp:/keys/alice.asc",
    });
  });
  it("parses an age recipient as a literal and anything else as a recipients file", () => {
    expect(parseRecipientSpec(`age:${AGE1}`)).toMatchObject({ type: "age", value: AGE1, source: "literal" });
    expect(parseRecipientSpec("age:./team/recipients.txt")).toMatchObject({ source: "file" });
  });
  it("accepts an upper-case type and surrounding blanks", () => {
    expect(parseRecipientSpec("PGP: a.asc")).toMatchObject({ type: "pgp", value: "a.asc" });
  });
  it.each([
    ["alice.asc", /bad recipient "alice.asc": expected TYPE:VALUE, one of pgp:FILE, age:RECIPIENT, age:FILE/],
    [":a.asc", /bad recipient ":a.asc"/],
    ["gpg:a.asc", /unknown recipient type "gpg" in "gpg:a.asc"/],
    ["pgp:", /pgp recipient needs a public key file/],
    ["pgp:keybase:alice", /keybase lookups are not supported/],
    ["age:", /age recipient needs an age1/],
    ["age:AGE-SECRET-KEY-1QQQQ", /that is an age identity \(a secret key\), not a recipient/],
    ["age:age1NOTVALID", /"age1NOTVALID" is not a valid age recipient/],
    ["age:ssh-ed25519 AAAA", /ssh recipients are not supported/],
  ])("refuses %s", (raw, message) => {
    expect(() => parseRecipientSpec(raw)).toThrow(RecipientError);
    expect(() => parseRecipientSpec(raw)).toThrow(message);
  });
  it("never echoes an age secret key given by mistake", () => {
    const secret = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
    expect(() => parseRecipientSpec(`age:${secret}`)).toThrow(/secret key/);
    for (const attempt of [
      () => parseRecipientSpec(`age:${secret}`),
      () => parseRecipientSpec(secret),
      () => parseOperatorSpec(secret),
      () => parseOperatorSpec(`bob=${secret}`),
    ]) {
      expect(attempt).toThrow(RecipientError);
      try {
        attempt();
      } catch (err) {
        expect((err as Error).message).not.toContain("GFPYYSJZ");
      }
    }
  });
});

describe("parseOperatorSpec", () => {
  it("parses NAME=TYPE:VALUE", () => {
    expect(parseOperatorSpec(`bob=age:${AGE1}`)).toMatchObject({
      name: "bob",
      recipient: { type: "age", value: AGE1 },
    });
    expect(parseOperatorSpec("alice.ops-1=pgp:k=1.asc")).toMatchObject({
      name: "alice.ops-1",
      recipient: { value: "k=1.asc" },
    });
  });
  it.each([
    ["pgp:alice.asc", /bad operator "pgp:alice.asc": expected NAME=TYPE:VALUE/],
    ["=pgp:alice.asc", /bad operator/],
    ["../x=pgp:a.asc", /bad operator name "..\/x"/],
    [".hidden=pgp:a.asc", /bad operator name ".hidden"/],
    ["-x=pgp:a.asc", /bad operator name "-x"/],
    ["a b=pgp:a.asc", /bad operator name "a b"/],
    [`${"n".repeat(65)}=pgp:a.asc`, /bad operator name/],
    ["alice=gpg:a.asc", /unknown recipient type "gpg"/],
    ["alice=a.asc", /bad recipient "a.asc"/],
  ])("refuses %s", (raw, message) => {
    expect(() => parseOperatorSpec(raw)).toThrow(RecipientError);
    expect(() => parseOperatorSpec(raw)).toThrow(message);
  });
});
