import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpenShareError, RecipientError } from "../../../src/ciphers/errors.js";
import { pgpBackend } from "../../../src/ciphers/pgp/pgp-cipher.js";
import { parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";

const SHARE = new TextEncoder().encode("0f".repeat(33));
const PAST = new Date("2020-01-01T00:00:00Z");
/** RFC 9580 features flag 0x08: "supports SEIPD v2" (openpgp's enums.features.seipdv2, missing from its typings). */
const SEIPDV2_FEATURE = 0x08;
let dir: string;

interface Pair {
  publicKey: openpgp.PublicKey;
  privateKey: openpgp.PrivateKey;
  armoredPublic: string;
  armoredPrivate: string;
}

async function makeKey(opts: Omit<openpgp.KeyOptions, "userIDs" | "format"> & { name: string }): Promise<Pair> {
  const { name, ...rest } = opts;
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name, email: `${name}@example.org` }],
    ...rest,
    format: "object",
  });
  return { publicKey, privateKey, armoredPublic: publicKey.armor(), armoredPrivate: privateKey.armor() };
}

async function keyFile(name: string, content: string | Uint8Array): Promise<string> {
  await writeFile(join(dir, name), content);
  return name;
}

async function load(file: string, now?: Date) {
  return pgpBackend.loadRecipient(parseRecipientSpec(`pgp:${file}`), { cwd: dir, ...(now ? { now } : {}) });
}

let alice: Pair;
let bob: Pair;
let locked: Pair;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sk-pgp-"));
  [alice, bob, locked] = await Promise.all([
    makeKey({ name: "alice" }),
    makeKey({ name: "bob" }),
    makeKey({ name: "locked", passphrase: "correct horse" }),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("pgp loadRecipient", () => {
  it("loads an armored key and gives Vault's form: base64 of the binary key", async () => {
    const r = await load(await keyFile("alice.asc", alice.armoredPublic));
    expect(r.type).toBe("pgp");
    expect(r.fingerprint).toBe(alice.publicKey.getFingerprint().toUpperCase());
    expect(r.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(r.describe).toContain('"alice <alice@example.org>"');
    expect(r.serverPgpKeyB64).toBe(Buffer.from(alice.publicKey.write()).toString("base64"));
    expect(r.serverPgpKeyB64).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
  });

  it("loads a binary key and a base64 key to the same recipient", async () => {
    const armored = await load(await keyFile("a.asc", alice.armoredPublic));
    const binary = await load(await keyFile("a.gpg", alice.publicKey.write()));
    const b64 = await load(await keyFile("a.b64", Buffer.from(alice.publicKey.write()).toString("base64")));
    expect(binary.fingerprint).toBe(armored.fingerprint);
    expect(b64.serverPgpKeyB64).toBe(armored.serverPgpKeyB64);
  });

  it("refuses an unreadable file, naming it and the errno", async () => {
    await expect(load("missing.asc")).rejects.toThrow(/cannot read pgp key file missing.asc: ENOENT/);
    await expect(load(".")).rejects.toThrow(/cannot read pgp key file .: EISDIR/);
  });

  it("refuses a file that is not a key", async () => {
    await expect(load(await keyFile("junk.asc", "hello\n"))).rejects.toThrow(
      /pgp key file junk.asc is not a usable OpenPGP key/,
    );
    await expect(load(await keyFile("empty.asc", ""))).rejects.toThrow(RecipientError);
  });

  it("refuses a private key rather than sending it anywhere", async () => {
    await expect(load(await keyFile("secret.asc", alice.armoredPrivate))).rejects.toThrow(
      /holds a PRIVATE key: give the public key/,
    );
  });

  it("refuses a file with several keys", async () => {
    const both = new Uint8Array([...alice.publicKey.write(), ...bob.publicKey.write()]);
    await expect(load(await keyFile("both.gpg", both))).rejects.toThrow(/holds 2 keys: give exactly one/);
  });

  it("refuses an expired key, naming its fingerprint, user id and date", async () => {
    const old = await makeKey({ name: "old", date: PAST, keyExpirationTime: 86400 });
    const fpr = old.publicKey.getFingerprint().toUpperCase();
    await expect(load(await keyFile("old.asc", old.armoredPublic))).rejects.toThrow(
      new RegExp(`pgp key ${fpr} "old <old@example.org>" \\(old.asc\\) expired on 2020-01-02`),
    );
  });

  it("refuses a key whose only encryption subkey expired", async () => {
    const k = await makeKey({ name: "subold", date: PAST, subkeys: [{ keyExpirationTime: 86400 }] });
    await expect(load(await keyFile("subold.asc", k.armoredPublic))).rejects.toThrow(
      /has an encryption subkey that expired on 2020-01-02/,
    );
  });

  it("accepts a key that is still valid at the check time but checks expiry at `now`", async () => {
    const soon = await makeKey({ name: "soon", keyExpirationTime: 3600 });
    const file = await keyFile("soon.asc", soon.armoredPublic);
    await expect(load(file)).resolves.toMatchObject({ type: "pgp" });
    await expect(load(file, new Date(Date.now() + 2 * 3600_000))).rejects.toThrow(/expired on/);
  });

  it("seals to a key that expired after the pre-flight accepted it (as of the pre-flight: no EMERGENCY path)", async () => {
    // valid for a day from 2020-01-01: the pre-flight ran at noon that day, the share is sealed now, years later
    const brief = await makeKey({ name: "brief", date: PAST, keyExpirationTime: 86400 });
    const r = await load(await keyFile("brief.asc", brief.armoredPublic), new Date("2020-01-01T12:00:00Z"));
    const sealed = await pgpBackend.seal(r, SHARE);
    expect(await pgpBackend.open(sealed, brief.armoredPrivate)).toEqual(SHARE);
  });

  it("refuses a sign-only key", async () => {
    const signer = await makeKey({ name: "signer", subkeys: [] });
    await expect(load(await keyFile("signer.asc", signer.armoredPublic))).rejects.toThrow(
      /"signer <signer@example.org>" \(signer.asc\) has no encryption subkey \(a sign-only key\)/,
    );
  });

  it("refuses a revoked key", async () => {
    const k = await makeKey({ name: "gone" });
    const { publicKey } = await openpgp.revokeKey({ key: k.privateKey, format: "armored" });
    await expect(load(await keyFile("gone.asc", publicKey))).rejects.toThrow(/"gone <gone@example.org>".* is revoked/);
  });

  it("refuses a v6 key, which Vault and GnuPG 2.2 cannot read", async () => {
    const v6 = await makeKey({ name: "v6", type: "curve25519", config: { v6Keys: true } });
    await expect(load(await keyFile("v6.asc", v6.armoredPublic))).rejects.toThrow(/is a v6 key; .* read only v4 keys/);
  });
});

async function dearmor(armored: string): Promise<Uint8Array> {
  const { data } = await openpgp.unarmor(armored);
  return data as Uint8Array;
}

/** The packets of an armored message: [tag, version] pairs. */
async function packetShape(armored: string): Promise<[number, number | undefined][]> {
  const message = await openpgp.readMessage({ armoredMessage: armored });
  return message.packets.map((p) => [
    (p.constructor as unknown as { tag: number }).tag,
    (p as unknown as { version?: number }).version,
  ]);
}

describe("pgp seal", () => {
  it("produces exactly Vault's form: v3 PKESK + SEIPD v1, armored", async () => {
    const sealed = await pgpBackend.seal(await load(await keyFile("alice2.asc", alice.armoredPublic)), SHARE);
    expect(sealed.startsWith("-----BEGIN PGP MESSAGE-----")).toBe(true);
    expect(await packetShape(sealed)).toEqual([
      [1, 3],
      [18, 1],
    ]);
  });

  it("still emits SEIPD v1 for a key that advertises SEIPDv2 (openpgp would pick AEAD for it by default)", async () => {
    const modern = await makeKey({ name: "modern", config: { aeadProtect: true } });
    const selfSig = (await modern.publicKey.getPrimaryUser()).selfCertification;
    expect((selfSig.features?.[0] ?? 0) & SEIPDV2_FEATURE).not.toBe(0);
    // the pitfall this guards against: openpgp's own default for this key is SEIPDv2
    const plain = await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: SHARE }),
      encryptionKeys: modern.publicKey,
    });
    expect((await packetShape(plain))[1]).toEqual([18, 2]);
    const sealed = await pgpBackend.seal(await load(await keyFile("modern.asc", modern.armoredPublic)), SHARE);
    expect(await packetShape(sealed)).toEqual([
      [1, 3],
      [18, 1],
    ]);
  });

  it("refuses a recipient of another type", async () => {
    const fake = {
      type: "age",
      fingerprint: "x",
      describe: "x",
      keys: [],
      spec: parseRecipientSpec("pgp:x"),
      handle: {},
    };
    await expect(pgpBackend.seal(fake, SHARE)).rejects.toThrow(/not a loaded pgp recipient/);
  });
});

describe("pgp open", () => {
  let sealedToAlice: string;
  let sealedToLocked: string;
  beforeAll(async () => {
    sealedToAlice = await pgpBackend.seal(await load(await keyFile("alice3.asc", alice.armoredPublic)), SHARE);
    sealedToLocked = await pgpBackend.seal(await load(await keyFile("locked.asc", locked.armoredPublic)), SHARE);
  });

  it("opens with an armored or a binary private key", async () => {
    expect(await pgpBackend.open(sealedToAlice, alice.armoredPrivate)).toEqual(SHARE);
    expect(await pgpBackend.open(sealedToAlice, alice.privateKey.write())).toEqual(SHARE);
  });

  it("returns null when the share is addressed to someone else", async () => {
    expect(await pgpBackend.open(sealedToAlice, bob.armoredPrivate)).toBeNull();
  });

  it("finds the right key in an identity holding several keys", async () => {
    const ring = new Uint8Array([...bob.privateKey.write(), ...alice.privateKey.write()]);
    expect(await pgpBackend.open(sealedToAlice, ring)).toEqual(SHARE);
  });

  it("asks for a passphrase, refuses a wrong one, opens with the right one", async () => {
    await expect(pgpBackend.open(sealedToLocked, locked.armoredPrivate)).rejects.toMatchObject({
      reason: "passphrase-required",
    });
    const wrong = pgpBackend.open(sealedToLocked, locked.armoredPrivate, "wrong");
    await expect(wrong).rejects.toBeInstanceOf(OpenShareError);
    await expect(pgpBackend.open(sealedToLocked, locked.armoredPrivate, "wrong")).rejects.toThrow(
      /^wrong passphrase for pgp key [0-9A-F]{40}$/,
    );
    expect(await pgpBackend.open(sealedToLocked, locked.armoredPrivate, "correct horse")).toEqual(SHARE);
  });

  it("does not ask for a passphrase when the share is not addressed to the locked key", async () => {
    expect(await pgpBackend.open(sealedToAlice, locked.armoredPrivate)).toBeNull();
  });

  it("throws corrupt for a damaged message addressed to this identity", async () => {
    const damaged = Uint8Array.from(await dearmor(sealedToAlice));
    damaged[damaged.length - 5]! ^= 0xff; // inside the SEIPD body: the MDC check must catch it
    const err = await pgpBackend.open(damaged, alice.armoredPrivate).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenShareError);
    expect(err).toMatchObject({ reason: "corrupt" });
    expect((err as Error).message).toMatch(/the sealed share for pgp key [0-9A-F]{40} cannot be decrypted/);
  });

  it("throws corrupt for an unreadable message", async () => {
    await expect(
      pgpBackend.open("-----BEGIN PGP MESSAGE-----\n\nnot base64!\n-----END PGP MESSAGE-----\n", alice.armoredPrivate),
    ).rejects.toMatchObject({ reason: "corrupt" });
  });

  it("throws bad-identity for an identity that is not a private key", async () => {
    await expect(pgpBackend.open(sealedToAlice, alice.armoredPublic)).rejects.toMatchObject({ reason: "bad-identity" });
  });

  it("opens Vault's own forms: base64 (keys_base64) and hex (keys) of the binary message", async () => {
    const binary = await dearmor(sealedToAlice);
    expect(await pgpBackend.open(Buffer.from(binary).toString("base64"), alice.armoredPrivate)).toEqual(SHARE);
    expect(await pgpBackend.open(Buffer.from(binary).toString("hex"), alice.armoredPrivate)).toEqual(SHARE);
  });

  it("armors a server-sealed share so that gpg -d and our opener read it", async () => {
    const binary = await dearmor(sealedToAlice);
    const armored = await pgpBackend.armorServerSealed!(Buffer.from(binary).toString("base64"));
    expect(armored).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    expect(await pgpBackend.open(armored, alice.armoredPrivate)).toEqual(SHARE);
    await expect(pgpBackend.armorServerSealed!("aGVsbG8=")).rejects.toThrow(/not base64 of an OpenPGP message/);
  });

  // Regression: without the CRC-24 line GnuPG 2.2 misreads the armor of a 3n-byte message (Vault's server-sealed
  // shares hit this), "invalid radix64 character 2D" then "invalid packet". Every armor we write carries it.
  it("always writes the armor checksum line that GnuPG 2.2 needs", async () => {
    const checksum = /\n=[A-Za-z0-9+/]{4}\n-----END PGP MESSAGE-----\n?$/;
    const sealed = await pgpBackend.seal(await load(await keyFile("alice3.asc", alice.armoredPublic)), SHARE);
    expect(sealed).toMatch(checksum);
    const binary = await dearmor(sealedToAlice);
    expect(await pgpBackend.armorServerSealed!(Buffer.from(binary).toString("base64"))).toMatch(checksum);
  });
});
