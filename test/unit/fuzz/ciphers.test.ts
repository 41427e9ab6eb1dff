/**
 * Fuzz: key files and sealed shares, everything an operator or a lead hands to sealkeeper as a file: OpenPGP public
 * keys (armored, binary, base64), OpenPGP private keys and messages, age recipients (literal and files), age identity
 * files (plain and passphrase-protected) and age messages; and the recipient/operator specs that name them.
 * Seeds are real keys and messages made here; each case mutates one of them (or is junk).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fc } from "@fast-check/vitest";
import { armor, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpenShareError, RecipientError } from "../../../src/ciphers/errors.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import {
  detectIdentityType,
  detectSealedType,
  loadRecipient,
  openSealedShare,
  recipientTypes,
} from "../../../src/ciphers/registry.js";
import {
  anySecretArb,
  attempt,
  embedded,
  expectWellBehaved,
  junkString,
  mutated,
  mutatedText,
  params,
  RUNS,
  reportCounts,
  secretArb,
  tick,
} from "./fuzz-kit.js";

const SHARE = "5a".repeat(33);
const enc = (s: string) => new Uint8Array(Buffer.from(s, "utf8"));
let dir: string;
let publicKeys: Uint8Array[];
let privateKeys: Uint8Array[];
let sealedPgp: Uint8Array[];
let sealedAge: Uint8Array[];
let ageIdentities: Uint8Array[];
let ageRecipient: string;
let fileNo = 0;

/** Keys, messages and identities: new ones every run (openpgp.js and typage cannot be seeded; see fuzz-kit.ts). */
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "sk-fuzz-ciphers-"));
  await makeSeeds();
});

async function makeSeeds(): Promise<void> {
  const plain = await openpgp.generateKey({ userIDs: [{ name: "fuzz" }], format: "object" });
  const locked = await openpgp.generateKey({
    userIDs: [{ name: "locked" }],
    passphrase: "pass",
    type: "rsa",
    rsaBits: 2048,
    format: "object",
  });
  const pubBin = plain.publicKey.write() as Uint8Array;
  publicKeys = [
    enc(plain.publicKey.armor()),
    pubBin,
    enc(Buffer.from(pubBin).toString("base64")),
    enc(locked.publicKey.armor()),
    enc(plain.privateKey.armor()), // a private key where a public one belongs
  ];
  privateKeys = [enc(plain.privateKey.armor()), plain.privateKey.write() as Uint8Array, enc(locked.privateKey.armor())];
  const msgs: Uint8Array[] = [];
  for (const key of [plain.publicKey, locked.publicKey]) {
    const bin = (await openpgp.encrypt({
      message: await openpgp.createMessage({ binary: enc(SHARE) }),
      encryptionKeys: key,
      format: "binary",
    })) as Uint8Array;
    msgs.push(bin, enc(openpgp.armor(openpgp.enums.armor.message, bin)), enc(Buffer.from(bin).toString("base64")));
  }
  msgs.push(enc(Buffer.from(msgs[0]!).toString("hex")));
  sealedPgp = msgs;
  const id = await generateX25519Identity();
  ageRecipient = await identityToRecipient(id);
  const e = new Encrypter();
  e.addRecipient(ageRecipient);
  const ageBin = await e.encrypt(SHARE);
  sealedAge = [ageBin, enc(armor.encode(ageBin))];
  const p = new Encrypter();
  p.setPassphrase("pass");
  p.setScryptWorkFactor(10); // keep each case fast: the parser, not scrypt, is under test
  const idFile = `# created: now\n# public key: ${ageRecipient}\n${id}\n`;
  ageIdentities = [enc(idFile), enc(armor.encode(await p.encrypt(idFile)))];
}

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  reportCounts({
    detect: RUNS.light,
    openSealedShare: RUNS.crypto,
    "loadRecipient pgp": RUNS.crypto,
    "loadRecipient age": RUNS.medium,
    recipientSpec: RUNS.light,
  });
});

const anyBytes = fc.oneof(
  fc.uint8Array({ maxLength: 600 }),
  junkString.map(enc),
  embedded(anySecretArb).map((e) => enc(e.input)),
  fc.constantFrom(
    enc("-----BEGIN PGP MESSAGE-----\n\n=AAAA\n-----END PGP MESSAGE-----\n"),
    enc("age-encryption.org/v1\n"),
  ),
);

describe("sniffing", () => {
  it("detectSealedType / detectIdentityType: a known type or null, never an exception", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(anyBytes, mutated([...sealedPgp, ...sealedAge, ...privateKeys, ...ageIdentities])),
        async (b) => {
          tick("detect");
          for (const f of [detectSealedType, detectIdentityType]) {
            const out = await attempt(() => f(b));
            expectWellBehaved(out, { allowed: [] });
            if (out.ok) expect(out.value === null || recipientTypes.includes(out.value)).toBe(true);
          }
        },
      ),
      params("detect", RUNS.light),
    );
  });
});

describe("openSealedShare", () => {
  it("plaintext, null (not addressed to me) or OpenShareError; for damaged shares and damaged identities", async () => {
    const sealed = fc.oneof(mutated([...sealedPgp, ...sealedAge]), anyBytes);
    const identity = fc.oneof(mutated([...privateKeys, ...ageIdentities]), fc.constantFrom(...privateKeys), anyBytes);
    await fc.assert(
      fc.asyncProperty(sealed, identity, fc.option(fc.constantFrom("pass", "wrong", "")), async (s, id, pass) => {
        tick("openSealedShare");
        const out = await attempt(() => openSealedShare(s, id, pass ?? undefined));
        // the identity is a private key (a PGP private key block, an AGE-SECRET-KEY): never repeated in an error
        expectWellBehaved(out, { allowed: [OpenShareError], boundMs: 30_000, input: [s, id] });
        if (out.ok && out.value !== null) expect(out.value).toBeInstanceOf(Uint8Array);
      }),
      params("openSealedShare", RUNS.crypto),
    );
  });

  it("the seeds themselves open (the mutations start from working inputs)", async () => {
    expect(Buffer.from((await openSealedShare(sealedPgp[1]!, privateKeys[0]!))!).toString()).toBe(SHARE);
    expect(Buffer.from((await openSealedShare(sealedAge[1]!, ageIdentities[1]!, "pass"))!).toString()).toBe(SHARE);
  });
});

describe("loadRecipient", () => {
  it("pgp key files: a loaded recipient or a RecipientError naming the file", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(publicKeys), anyBytes), async (bytes) => {
        tick("loadRecipient pgp");
        const file = join(dir, `k${fileNo++ % 8}.asc`);
        writeFileSync(file, bytes);
        const out = await attempt(() => loadRecipient(parseRecipientSpec(`pgp:${file}`)));
        expectWellBehaved(out, { allowed: [RecipientError], boundMs: 30_000, input: bytes });
        if (!out.ok) expect((out.error as Error).message).toContain(file.slice(dir.length + 1));
      }),
      params("loadRecipient pgp", RUNS.crypto),
    );
  });

  it("age recipients, literal and in files: a loaded recipient or a RecipientError that never repeats a secret key", async () => {
    const line = fc.oneof(
      mutatedText([ageRecipient]),
      fc.constant(ageRecipient),
      junkString,
      secretArb,
      secretArb.map((k) => `# ${k}`),
      embedded(secretArb).map((e) => e.input),
      fc.constantFrom("# comment", "", "age1yubikey1qqqq", "ssh-ed25519 AAAA"),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 4 }), fc.boolean(), async (lines, asFile) => {
        tick("loadRecipient age");
        let spec: string;
        if (asFile) {
          const file = join(dir, `r${fileNo++ % 8}.txt`);
          writeFileSync(file, lines.join("\n"));
          spec = `age:${file}`;
        } else spec = `age:${lines[0]}`;
        const out = await attempt(async () => loadRecipient(parseRecipientSpec(spec)));
        expectWellBehaved(out, { allowed: [RecipientError], input: lines });
      }),
      params("loadRecipient age", RUNS.medium),
    );
  });
});

describe("recipient and operator specs", () => {
  const spec = fc.oneof(
    junkString,
    mutatedText(["pgp:keys/alice.asc", `age:${"age1".padEnd(62, "q")}`, "alice=pgp:a.asc", "bob=age:age1qq"]),
    fc
      .tuple(fc.constantFrom("", "alice=", "age:", "pgp:", "x:", "alice=age:"), embedded(secretArb))
      .map(([p, e]) => `${p}${e.input}`),
    embedded(secretArb).map((e) => `${e.input}=age:age1qq`),
    embedded(secretArb).map((e) => `${e.input}:x`),
    embedded(secretArb).map((e) => `pgp:${e.input}`),
  );
  it("a parsed spec or a RecipientError that never repeats a secret-looking part in full", async () => {
    await fc.assert(
      fc.asyncProperty(spec, async (raw) => {
        tick("recipientSpec");
        for (const f of [parseRecipientSpec, parseOperatorSpec]) {
          expectWellBehaved(await attempt(() => f(raw)), { allowed: [RecipientError], input: raw });
        }
      }),
      params("recipientSpec", RUNS.light),
    );
  });
});
