import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { armor, Encrypter, generateHybridIdentity, generateX25519Identity, identityToRecipient } from "age-encryption";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ageBackend } from "../../../src/ciphers/age/age-cipher.js";
import { OpenShareError, RecipientError } from "../../../src/ciphers/errors.js";
import { parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";

const SHARE = new TextEncoder().encode("a1".repeat(33));
let dir: string;
let aliceId: string;
let alice: string;
let bobId: string;
let bob: string;

async function file(name: string, content: string): Promise<string> {
  await writeFile(join(dir, name), content);
  return name;
}

function load(spec: string) {
  return ageBackend.loadRecipient(parseRecipientSpec(spec), { cwd: dir });
}

/** An identity file as age-keygen writes it. */
function identityFile(id: string, recipient: string): string {
  return `# created: 2026-01-01T00:00:00Z\n# public key: ${recipient}\n${id}\n`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "sk-age-"));
  aliceId = await generateX25519Identity();
  alice = await identityToRecipient(aliceId);
  bobId = await generateX25519Identity();
  bob = await identityToRecipient(bobId);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("age loadRecipient", () => {
  it("loads a literal recipient", async () => {
    const r = await load(`age:${alice}`);
    expect(r).toMatchObject({ type: "age", fingerprint: alice, describe: `age ${alice}` });
    expect(r.serverPgpKeyB64).toBeUndefined();
  });

  it("loads a recipients file with comments, blank lines and several recipients", async () => {
    const f = await file("team.txt", `# alice, two keys\n\n${alice}\n  ${bob}  \r\n`);
    const r = await load(`age:${f}`);
    expect(r.fingerprint).toBe(`${alice},${bob}`);
    expect(r.describe).toContain("2 recipients");
  });

  it("loads a post-quantum hybrid recipient", async () => {
    const pq = await identityToRecipient(await generateHybridIdentity());
    await expect(load(`age:${pq}`)).resolves.toMatchObject({ fingerprint: pq });
  });

  it("refuses a recipient with a bad checksum", async () => {
    const broken = `${alice.slice(0, -1)}${alice.endsWith("q") ? "p" : "q"}`;
    await expect(load(`age:${broken}`)).rejects.toThrow(new RegExp(`"${broken}" is not a valid age recipient`));
  });

  it("refuses plugin recipients by name", async () => {
    const plugin = "age1yubikey1qwt50d05nh5vutpdzmlg5wn80xq5negm4uj9ghv0snvdd3yysf5yw3rhl3t";
    await expect(load(`age:${plugin}`)).rejects.toThrow(
      /age plugin recipient \(age1yubikey\); plugins are not supported/,
    );
  });

  it("refuses an unreadable recipients file", async () => {
    await expect(load("age:nope.txt")).rejects.toThrow(/cannot read age recipients file nope.txt: ENOENT/);
  });

  it("refuses an empty recipients file and bad lines, naming the line", async () => {
    await expect(load(`age:${await file("empty.txt", "# nothing\n\n")}`)).rejects.toThrow(/lists no recipient/);
    await expect(load(`age:${await file("ssh.txt", `${alice}\nssh-ed25519 AAAAC3Nza\n`)}`)).rejects.toThrow(
      /ssh.txt line 2: "ssh-ed25519 AAAAC3Nza" is not an age recipient/,
    );
  });

  it("refuses a recipients file that holds a secret key, without repeating it", async () => {
    const err = await load(`age:${await file("oops.txt", identityFile(aliceId, alice))}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecipientError);
    expect((err as Error).message).toMatch(/oops.txt line 3 is a SECRET key/);
    expect((err as Error).message).not.toContain(aliceId.slice(16));
  });
});

describe("age seal and open", () => {
  let sealed: string;
  beforeAll(async () => {
    sealed = await ageBackend.seal(await load(`age:${alice}`), SHARE);
  });

  it("writes armored age", () => {
    expect(sealed).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----\n[\s\S]+-----END AGE ENCRYPTED FILE-----\n$/);
  });

  it("opens with the identity file, and with the binary form", async () => {
    expect(await ageBackend.open(sealed, identityFile(aliceId, alice))).toEqual(SHARE);
    expect(await ageBackend.open(armor.decode(sealed), aliceId)).toEqual(SHARE);
  });

  it("returns null for another identity", async () => {
    expect(await ageBackend.open(sealed, identityFile(bobId, bob))).toBeNull();
  });

  it("opens a share sealed to several recipients with any one of them", async () => {
    const both = await ageBackend.seal(await load(`age:${await file("two.txt", `${alice}\n${bob}\n`)}`), SHARE);
    expect(await ageBackend.open(both, bobId)).toEqual(SHARE);
    expect(await ageBackend.open(both, aliceId)).toEqual(SHARE);
  });

  it("throws corrupt for a damaged payload", async () => {
    const bytes = armor.decode(sealed);
    bytes[bytes.length - 3]! ^= 0x01;
    const err = await ageBackend.open(bytes, aliceId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenShareError);
    expect(err).toMatchObject({ reason: "corrupt" });
  });

  it("throws corrupt for damaged armor", async () => {
    const damaged = sealed.replace(/\n([A-Za-z0-9+/]{10})/, "\n!!!!!!!!!!");
    await expect(ageBackend.open(damaged, aliceId)).rejects.toMatchObject({ reason: "corrupt" });
  });

  it("throws bad-identity for an identity file without identities, without echoing its lines", async () => {
    await expect(ageBackend.open(sealed, "# just a comment\n")).rejects.toMatchObject({ reason: "bad-identity" });
    const err = await ageBackend.open(sealed, "AGE-SECRET-KEY-1NOTREALLYAKEY!!\n").catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: "bad-identity" });
    expect((err as Error).message).toBe("line 1 of the age identity file is not an identity");
  });

  it("says plugin identities are not supported", async () => {
    await expect(ageBackend.open(sealed, "AGE-PLUGIN-YUBIKEY-1QQQQQQ\n")).rejects.toThrow(/only plugin identities/);
  });

  describe("a passphrase-protected identity file (age -p)", () => {
    let protectedId: string;
    beforeAll(async () => {
      const e = new Encrypter();
      e.setPassphrase("correct horse");
      e.setScryptWorkFactor(10);
      protectedId = armor.encode(await e.encrypt(identityFile(aliceId, alice)));
    });
    it("needs the passphrase", async () => {
      await expect(ageBackend.open(sealed, protectedId)).rejects.toMatchObject({ reason: "passphrase-required" });
    });
    it("refuses a wrong passphrase", async () => {
      await expect(ageBackend.open(sealed, protectedId, "wrong")).rejects.toThrow(
        /^wrong passphrase for the age identity file$/,
      );
    });
    it("opens with the right one", async () => {
      expect(await ageBackend.open(sealed, protectedId, "correct horse")).toEqual(SHARE);
    });
  });
});
