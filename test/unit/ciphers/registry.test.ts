import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { armor, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { beforeAll, describe, expect, it } from "vitest";
import {
  detectIdentityType,
  detectSealedType,
  fileExtensionFor,
  loadBackend,
  openSealedShare,
  recipientTypes,
} from "../../../src/ciphers/registry.js";

const SHARE_HEX = "3c".repeat(33);
let pgpArmored: string;
let pgpBinary: Uint8Array;
let pgpPrivate: string;
let ageArmored: string;
let ageBinary: Uint8Array;
let ageId: string;

beforeAll(async () => {
  const { privateKey, publicKey } = await openpgp.generateKey({ userIDs: [{ name: "r" }], format: "object" });
  pgpPrivate = privateKey.armor();
  pgpArmored = (await openpgp.encrypt({
    message: await openpgp.createMessage({ text: SHARE_HEX }),
    encryptionKeys: publicKey,
  })) as string;
  pgpBinary = (await openpgp.unarmor(pgpArmored)).data as Uint8Array;
  ageId = await generateX25519Identity();
  const e = new Encrypter();
  e.addRecipient(await identityToRecipient(ageId));
  ageBinary = await e.encrypt(SHARE_HEX);
  ageArmored = armor.encode(ageBinary);
});

describe("registry", () => {
  it("lists every type once with its file extension", () => {
    expect(recipientTypes).toEqual(["pgp", "age"]);
    expect(recipientTypes.map(fileExtensionFor)).toEqual([".asc", ".age"]);
    expect(() => fileExtensionFor("x")).toThrow(/unknown recipient type "x"/);
  });

  it("refuses an unknown type", async () => {
    await expect(loadBackend("kms")).rejects.toThrow(/unknown recipient type "kms": expected one of pgp, age/);
  });

  it("detects every sealed form, and never a plaintext share", () => {
    expect(detectSealedType(pgpArmored)).toBe("pgp");
    expect(detectSealedType(pgpBinary)).toBe("pgp");
    expect(detectSealedType(Buffer.from(pgpBinary).toString("base64"))).toBe("pgp");
    expect(detectSealedType(Buffer.from(pgpBinary).toString("hex"))).toBe("pgp");
    expect(detectSealedType(ageArmored)).toBe("age");
    expect(detectSealedType(ageBinary)).toBe("age");
    // plaintext shares in every form /sys/unseal accepts, whatever their first byte
    for (const first of ["c1", "84", "85", "c3"]) {
      const share = Buffer.from(first + "00".repeat(32), "hex");
      expect(detectSealedType(share.toString("hex"))).toBeNull();
      expect(detectSealedType(share.toString("base64"))).toBeNull();
      expect(detectSealedType(`${share.toString("hex")}\n`)).toBeNull();
    }
    expect(detectSealedType("")).toBeNull();
    expect(detectSealedType("hello")).toBeNull();
  });

  it("detects identities", () => {
    expect(detectIdentityType(pgpPrivate)).toBe("pgp");
    expect(detectIdentityType(`# public key: age1...\n${ageId}\n`)).toBe("age");
    expect(detectIdentityType("-----BEGIN PGP PUBLIC KEY BLOCK-----\n")).toBeNull();
    expect(detectIdentityType("nothing")).toBeNull();
  });

  it("opens any type with the matching identity, and returns null across types", async () => {
    const dec = (b: Uint8Array | null) => (b === null ? null : new TextDecoder().decode(b));
    expect(dec(await openSealedShare(pgpArmored, pgpPrivate))).toBe(SHARE_HEX);
    expect(dec(await openSealedShare(ageArmored, ageId))).toBe(SHARE_HEX);
    expect(await openSealedShare(pgpArmored, ageId)).toBeNull();
    expect(await openSealedShare(ageArmored, pgpPrivate)).toBeNull();
  });

  it("throws for an unknown identity or an input that is not sealed", async () => {
    await expect(openSealedShare(pgpArmored, "hello")).rejects.toMatchObject({ reason: "bad-identity" });
    await expect(openSealedShare(SHARE_HEX, ageId)).rejects.toMatchObject({ reason: "corrupt" });
  });
});

describe("lazy loading", () => {
  // The CLI imports the registry, descriptors, spec parser, store and `shares` command at start-up: none of them may
  // import a crypto library at module level (DESIGN.md: the CLI must start fast).
  const eager = [
    "src/ciphers/registry.ts",
    "src/ciphers/recipient-spec.ts",
    "src/ciphers/sniff.ts",
    "src/ciphers/types.ts",
    "src/ciphers/errors.ts",
    "src/ciphers/pgp/pgp-descriptor.ts",
    "src/ciphers/age/age-descriptor.ts",
    "src/store/share-store.ts",
    "src/store/manifest.ts",
    "src/store/rescue-bundle.ts",
    "src/store/share-text.ts",
    "src/cli/commands/shares.ts",
  ];
  it.each(eager)("%s has no static import of openpgp, age-encryption or a backend", async (file) => {
    const text = await readFile(join(import.meta.dirname, "../../..", file), "utf8");
    const statics = [...text.matchAll(/^import\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]);
    for (const spec of statics) {
      expect(spec).not.toMatch(/^(openpgp|age-encryption)$|-cipher\.js$/);
    }
  });
});
