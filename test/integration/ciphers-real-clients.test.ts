/**
 * The share ciphers against the REAL clients operators use: keys made by GnuPG (`gpg --batch --quick-gen-key`) and
 * `age-keygen`; shares sealed by sealkeeper and opened by `gpg -d` and `age -d -i` themselves; messages made by gpg and
 * age opened by sealkeeper; `gpg --list-packets` proves the message form is Vault's (v3 PKESK + SEIPD v1, no AEAD).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OpenShareError, RecipientError } from "../../src/ciphers/errors.js";
import { parseRecipientSpec } from "../../src/ciphers/recipient-spec.js";
import { loadRecipient, openSealedShare, sealShare } from "../../src/ciphers/registry.js";
import { runSealkeeper } from "../harness/run-cli.js";

const run = promisify(execFile);
const SHARE = "5e".repeat(32) + "03";
const PASS = "operator passphrase";
let home: string;
let gnupg: string;

async function gpg(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  const child = run("gpg", ["--batch", "--no-tty", "--quiet", ...args], {
    env: { ...process.env, GNUPGHOME: gnupg },
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  // gpg may exit before reading stdin (EPIPE): that is its business, not a test failure
  child.child.stdin?.on("error", () => undefined);
  if (input === undefined) child.child.stdin?.end();
  else child.child.stdin?.end(input);
  return child;
}

async function gpgBinary(args: string[]): Promise<Buffer> {
  const { stdout } = await run("gpg", ["--batch", "--no-tty", ...args], {
    env: { ...process.env, GNUPGHOME: gnupg },
    encoding: "buffer",
    maxBuffer: 1 << 20,
  });
  return stdout;
}

async function fingerprintOf(uid: string): Promise<string> {
  const { stdout } = await gpg(["--with-colons", "--list-keys", uid]);
  const line = stdout.split("\n").find((l) => l.startsWith("fpr:"));
  return line!.split(":")[9]!;
}

/** Exports a public key armored (`.asc`) and binary (`.gpg`) into the home dir. */
async function exportKey(uid: string, name: string): Promise<void> {
  await writeFile(join(home, `${name}.asc`), (await gpg(["--armor", "--export", uid])).stdout);
  await writeFile(join(home, `${name}.gpg`), await gpgBinary(["--export", uid]));
}

const fpr: Record<string, string> = {};
let ageRecipient: string;
let otherAgeRecipient: string;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "sk-real-"));
  gnupg = join(home, "gnupg");
  await run("mkdir", ["-m", "700", gnupg]);
  const quick = (uid: string, ...rest: string[]) =>
    gpg(["--pinentry-mode", "loopback", "--passphrase", PASS, "--quick-gen-key", uid, ...rest]);
  // RSA: a certify/sign primary plus an RSA encryption subkey, passphrase-protected, like a careful operator's key
  await quick("RSA Operator <rsa@example.org>", "rsa3072", "sign,cert", "never");
  fpr.rsa = await fingerprintOf("rsa@example.org");
  await gpg([
    "--pinentry-mode",
    "loopback",
    "--passphrase",
    PASS,
    "--quick-add-key",
    fpr.rsa,
    "rsa3072",
    "encr",
    "never",
  ]);
  // cv25519: GnuPG's default ECC key (ed25519 primary, cv25519 encryption subkey), no passphrase
  await gpg([
    "--passphrase",
    "",
    "--quick-gen-key",
    "ECC Operator <ecc@example.org>",
    "future-default",
    "default",
    "never",
  ]);
  fpr.ecc = await fingerprintOf("ecc@example.org");
  // expired: made in 2020, valid for one day
  await gpg([
    "--passphrase",
    "",
    "--faked-system-time",
    "20200101T000000",
    "--quick-gen-key",
    "Expired Operator <expired@example.org>",
    "future-default",
    "default",
    "1d",
  ]);
  fpr.expired = await fingerprintOf("expired@example.org");
  // sign-only: a primary key with no encryption subkey
  await gpg(["--passphrase", "", "--quick-gen-key", "Signer <signer@example.org>", "ed25519", "sign", "never"]);
  fpr.signer = await fingerprintOf("signer@example.org");
  // revoked: GnuPG's own revocation certificate, imported
  await gpg([
    "--passphrase",
    "",
    "--quick-gen-key",
    "Revoked <revoked@example.org>",
    "future-default",
    "default",
    "never",
  ]);
  fpr.revoked = await fingerprintOf("revoked@example.org");
  const rev = await readFile(join(gnupg, "openpgp-revocs.d", `${fpr.revoked}.rev`), "utf8");
  await writeFile(join(home, "revoked.rev"), rev.replace(/^:-----BEGIN/m, "-----BEGIN"));
  await gpg(["--import", join(home, "revoked.rev")]);

  for (const [uid, name] of [
    ["rsa@example.org", "rsa"],
    ["ecc@example.org", "ecc"],
    ["expired@example.org", "expired"],
    ["signer@example.org", "signer"],
    ["revoked@example.org", "revoked"],
  ] as const) {
    await exportKey(uid, name);
  }
  await writeFile(
    join(home, "rsa.secret.asc"),
    (await gpg(["--pinentry-mode", "loopback", "--passphrase", PASS, "--armor", "--export-secret-keys", fpr.rsa!]))
      .stdout,
  );
  await writeFile(
    join(home, "ecc.secret.gpg"),
    await gpgBinary(["--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", fpr.ecc!]),
  );

  await run("age-keygen", ["-o", join(home, "age-id.txt")]);
  await run("age-keygen", ["-o", join(home, "other-age-id.txt")]);
  ageRecipient = (await run("age-keygen", ["-y", join(home, "age-id.txt")], { encoding: "utf8" })).stdout.trim();
  otherAgeRecipient = (
    await run("age-keygen", ["-y", join(home, "other-age-id.txt")], { encoding: "utf8" })
  ).stdout.trim();
}, 120_000);

afterAll(async () => {
  // stop the gpg-agent this test's GNUPGHOME started, then remove everything
  await run("gpgconf", ["--kill", "gpg-agent"], { env: { ...process.env, GNUPGHOME: gnupg } }).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
});

const load = (spec: string) => loadRecipient(parseRecipientSpec(spec), { cwd: home });

/** The packet tags of a message as gpg lists them, and gpg's full listing. */
async function listPackets(file: string): Promise<{ tags: number[]; text: string }> {
  // decrypting (not --list-only) so that the packets inside the SEIPD are listed too
  const { stdout } = await gpg(["--pinentry-mode", "loopback", "--passphrase", PASS, "--list-packets", file]);
  const tags = [...stdout.matchAll(/^# off=\d+ ctb=[0-9a-f]+ tag=(\d+)/gm)].map((m) => Number(m[1]));
  return { tags, text: stdout };
}

describe("gpg keys: pre-flight", () => {
  it.each(["rsa", "ecc"])("accepts the %s key, armored and binary, in Vault's pgp_keys form", async (name) => {
    const armored = await load(`pgp:${name}.asc`);
    const binary = await load(`pgp:${name}.gpg`);
    expect(armored.fingerprint).toBe(fpr[name]);
    expect(binary.fingerprint).toBe(fpr[name]);
    // exactly what `gpg --export KEYID | base64 -w0` prints: what Vault's API takes
    const exported = (await gpgBinary(["--export", fpr[name]!])).toString("base64");
    expect(armored.serverPgpKeyB64).toBe(exported);
    expect(binary.serverPgpKeyB64).toBe(exported);
  });

  it.each([
    ["expired", /expired on 2020-01-02/],
    ["signer", /has no encryption subkey \(a sign-only key\)/],
    ["revoked", /is revoked/],
  ])("refuses the %s key, naming its fingerprint and user id", async (name, why) => {
    const err = await load(`pgp:${name}.asc`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecipientError);
    expect((err as Error).message).toContain(`pgp key ${fpr[name]} "`);
    expect((err as Error).message).toContain(`@example.org>" (${name}.asc)`);
    expect((err as Error).message).toMatch(why);
  });
});

describe("sealed by sealkeeper, opened by the real clients", () => {
  it.each(["rsa", "ecc"])("gpg -d opens a share sealed to the %s key; the packets are Vault's form", async (name) => {
    const sealed = await sealShare(await load(`pgp:${name}.asc`), new TextEncoder().encode(SHARE));
    const file = join(home, `${name}-share.asc`);
    await writeFile(file, sealed);
    const { stdout } = await gpg(["--pinentry-mode", "loopback", "--passphrase", PASS, "--decrypt", file]);
    expect(stdout).toBe(SHARE);

    const { tags, text } = await listPackets(file);
    expect(tags).toEqual([1, 18, 11]); // PKESK, SEIPD, literal inside: no AEAD (20), no compression (8), no signature
    expect(text).toMatch(/:pubkey enc packet: version 3, algo \d+, keyid /);
    expect(text).toMatch(/:encrypted data packet:\n\s+length: \d+\n\s+mdc_method: 2/);
    expect(text).toMatch(/:literal data packet:\n\s+mode u \(75\), created 0, name="",/); // go-crypto's nil hints
    expect(text).not.toMatch(/aead|version 2|compressed/i);
  });

  it("age -d -i opens an armored share sealed by sealkeeper", async () => {
    const sealed = await sealShare(await load(`age:${ageRecipient}`), new TextEncoder().encode(SHARE));
    expect(sealed).toMatch(/^-----BEGIN AGE ENCRYPTED FILE-----/);
    const file = join(home, "share.age");
    await writeFile(file, sealed);
    const { stdout } = await run("age", ["-d", "-i", join(home, "age-id.txt"), file], { encoding: "utf8" });
    expect(stdout).toBe(SHARE);
    await expect(run("age", ["-d", "-i", join(home, "other-age-id.txt"), file])).rejects.toThrow(/no identity matched/);
  });

  it("age -d -i opens a share sealed to a recipients file by any of its recipients", async () => {
    await writeFile(join(home, "recipients.txt"), `# two keys\n${otherAgeRecipient}\n${ageRecipient}\n`);
    const sealed = await sealShare(await load("age:recipients.txt"), new TextEncoder().encode(SHARE));
    const file = join(home, "share2.age");
    await writeFile(file, sealed);
    for (const id of ["age-id.txt", "other-age-id.txt"]) {
      const { stdout } = await run("age", ["-d", "-i", join(home, id), file], { encoding: "utf8" });
      expect(stdout).toBe(SHARE);
    }
  });
});

describe("sealed by the real clients, opened by sealkeeper", () => {
  it("opens a gpg-encrypted message (compressed, gpg's defaults) with a gpg-exported secret key", async () => {
    const { stdout: armored } = await gpg(
      ["--armor", "--trust-model", "always", "--encrypt", "--recipient", fpr.rsa!],
      SHARE,
    );
    const identity = await readFile(join(home, "rsa.secret.asc"));
    const opened = await openSealedShare(armored, identity, PASS);
    expect(new TextDecoder().decode(opened!)).toBe(SHARE);
    // not addressed to the ecc key: null, not an error
    expect(await openSealedShare(armored, await readFile(join(home, "ecc.secret.gpg")))).toBeNull();
    // a wrong passphrase for a key it IS addressed to: an error
    const err = await openSealedShare(armored, identity, "wrong").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenShareError);
    expect(err).toMatchObject({ reason: "wrong-passphrase" });
  });

  it("opens a binary gpg message given as Vault returns it (base64), with a binary secret key", async () => {
    const binary = run("gpg", ["--batch", "--trust-model", "always", "--encrypt", "--recipient", fpr.ecc!], {
      env: { ...process.env, GNUPGHOME: gnupg },
      encoding: "buffer",
    });
    binary.child.stdin?.on("error", () => undefined);
    binary.child.stdin?.end(SHARE);
    const b64 = (await binary).stdout.toString("base64");
    const opened = await openSealedShare(b64, await readFile(join(home, "ecc.secret.gpg")));
    expect(new TextDecoder().decode(opened!)).toBe(SHARE);
  });

  it("opens age-CLI files, armored and binary, and returns null for another identity", async () => {
    for (const armor of [true, false]) {
      const out = join(home, `cli-${armor}.age`);
      await run("sh", ["-c", `printf %s "${SHARE}" | age ${armor ? "-a" : ""} -r ${ageRecipient} -o ${out}`]);
      const sealed = await readFile(out);
      expect(new TextDecoder().decode((await openSealedShare(sealed, await readFile(join(home, "age-id.txt"))))!)).toBe(
        SHARE,
      );
      expect(await openSealedShare(sealed, await readFile(join(home, "other-age-id.txt")))).toBeNull();
    }
  });

  it("shares check OKs a gpg-made share file with the operator's gpg-exported key", async () => {
    const { stdout } = await gpg(["--armor", "--trust-model", "always", "--encrypt", "--recipient", fpr.rsa!], SHARE);
    await writeFile(join(home, "gpg-made.asc"), stdout);
    await writeFile(join(home, "pass.txt"), `${PASS}\n`);
    const r = await runSealkeeper(
      ["shares", "check", "--file", "gpg-made.asc", "--identity", "rsa.secret.asc", "--passphrase-file", "pass.txt"],
      { cwd: home },
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("share (index 3) opens with your identity");
    expect(r.stdout + r.stderr).not.toContain(SHARE);
  });
});
