/** Issue 26.8: a public key given where the identity (private key) belongs is named for what it is. */
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { describe, expect, it } from "vitest";
import { openSealedShare } from "../../../src/ciphers/registry.js";

const SEALED_AGE =
  "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCg==\n-----END AGE ENCRYPTED FILE-----\n";

describe("a public key as --identity", () => {
  it("pgp public key, armored or binary: 'is a pgp PUBLIC key'", async () => {
    const { publicKey } = await openpgp.generateKey({ userIDs: [{ name: "a" }], format: "object" });
    for (const identity of [publicKey.armor(), publicKey.write()]) {
      const err = await openSealedShare(SEALED_AGE, identity).catch((e) => e);
      expect(err.message).toBe("the identity is a pgp PUBLIC key: opening a share needs the private key");
      expect(err.hint).toMatch(/gpg --export-secret-keys/);
    }
  });

  it("an age recipient: 'is an age recipient (age1..., the public key)'", async () => {
    const recipient = await identityToRecipient(await generateX25519Identity());
    const err = await openSealedShare(SEALED_AGE, `${recipient}\n`).catch((e) => e);
    expect(err.message).toMatch(/^the identity is an age recipient \(age1\.\.\., the public key\)/);
  });
});
