import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import * as openpgp from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import { loadRecipient, sealShare } from "../../../src/ciphers/registry.js";
import { buildManifest, type ManifestOperatorInput } from "../../../src/store/manifest.js";
import { ShareStore } from "../../../src/store/share-store.js";
import { runSealkeeper } from "../../harness/run-cli.js";

const enc = (s: string) => new TextEncoder().encode(s);
const shareBytes = (x: number) => Uint8Array.from([...new Uint8Array(32).fill(0x40 + x), x]);
const shareHex = (x: number) => Buffer.from(shareBytes(x)).toString("hex");

let base: string;
let dir: string;
const ids: Record<string, string> = {};

/** A ceremony directory made with the real store and ciphers: alice (pgp, passphrase), bob and carol (age). */
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "sk-check-"));
  dir = join(base, "ceremony");
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name: "alice" }],
    passphrase: "pw alice",
    format: "object",
  });
  await writeFile(join(base, "alice.pub.asc"), publicKey.armor());
  await writeFile(join(base, "alice.key.asc"), privateKey.armor());
  await writeFile(join(base, "alice.pass"), "pw alice\n");
  for (const n of ["bob", "carol", "mallory"]) {
    ids[n] = await generateX25519Identity();
    await writeFile(join(base, `${n}.txt`), `${ids[n]}\n`);
  }
  const specs = {
    alice: "pgp:alice.pub.asc",
    bob: `age:${await identityToRecipient(ids.bob!)}`,
    carol: `age:${await identityToRecipient(ids.carol!)}`,
  };
  const store = new ShareStore(dir);
  await store.checkWritable();
  const operators: ManifestOperatorInput[] = [];
  let x = 1;
  for (const [name, spec] of Object.entries(specs)) {
    const recipient = await loadRecipient(parseRecipientSpec(spec), { cwd: base });
    const ext = recipient.type === "pgp" ? "asc" : "age";
    const w = await store.writeSecretFile(`${name}.${ext}`, await sealShare(recipient, enc(shareHex(x))));
    operators.push({ name, recipient, file: w.name, fileSha256: w.sha256, sealedBy: "client", share: shareBytes(x) });
    x++;
  }
  const tokenRecipient = await loadRecipient(parseRecipientSpec(specs.bob), { cwd: base });
  const token = await store.writeSecretFile("root-token.age", await sealShare(tokenRecipient, enc("hvs.ROOTTOKEN")));
  await store.writeManifest(
    buildManifest({
      node: "http://127.0.0.1:8200",
      kind: "unseal",
      threshold: 2,
      shares: 3,
      operators,
      rootToken: { file: token.name, fileSha256: token.sha256, recipient: tokenRecipient, sealedBy: "client" },
    }),
  );
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const check = (...args: string[]) => runSealkeeper(["shares", "check", ...args], { cwd: base });

function expectNoSecrets(out: string): void {
  for (const x of [1, 2, 3]) expect(out).not.toContain(shareHex(x));
  expect(out).not.toContain("ROOTTOKEN");
  expect(out).not.toContain("pw alice");
}

describe("sealkeeper shares check", () => {
  it("OKs each operator's own file with their name and share index, never the share", async () => {
    const alice = await check(
      "--file",
      "ceremony/alice.asc",
      "--identity",
      "alice.key.asc",
      "--passphrase-file",
      "alice.pass",
    );
    expect(alice.code).toBe(0);
    expect(alice.stdout).toMatch(
      /^OK ceremony\/alice.asc: alice's share \(index 1\) opens with your identity; matches .*manifest.json\n$/,
    );
    const bob = await check("--file", "ceremony/bob.age", "--identity", "bob.txt");
    expect(bob).toMatchObject({ code: 0, stderr: "" });
    expect(bob.stdout).toContain("bob's share (index 2)");
    expectNoSecrets(alice.stdout + alice.stderr + bob.stdout + bob.stderr);
  });

  it("gives the machine form with --format json", async () => {
    const r = await check("--file", "ceremony/carol.age", "--identity", "carol.txt", "--format", "json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ ok: true, kind: "share", operator: "carol", shareIndex: 3 });
    expect(out.checks.map((c: { name: string }) => c.name)).toEqual(["file hash", "decrypt", "form", "digest"]);
    expectNoSecrets(r.stdout);
  });

  it("checks the root token file without printing it", async () => {
    const r = await check("--file", "ceremony/root-token.age", "--identity", "bob.txt");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("the root token opens with your identity");
    expectNoSecrets(r.stdout + r.stderr);
  });

  it("fails (exit 1) for a file addressed to someone else", async () => {
    const r = await check("--file", "ceremony/bob.age", "--identity", "mallory.txt");
    expect(r).toMatchObject({ code: 1, stdout: "" });
    expect(r.stderr).toBe("FAIL ceremony/bob.age is not addressed to this identity (mallory.txt)\n");
  });

  it("fails for a pgp file opened with an age identity", async () => {
    const r = await check("--file", "ceremony/alice.asc", "--identity", "bob.txt");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not addressed to this identity");
  });

  it("fails for a wrong passphrase, and asks for one when missing (no terminal)", async () => {
    await writeFile(join(base, "wrong.pass"), "nope\n");
    const wrong = await check(
      "--file",
      "ceremony/alice.asc",
      "--identity",
      "alice.key.asc",
      "--passphrase-file",
      "wrong.pass",
    );
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^error: wrong passphrase for pgp key [0-9A-F]{40}\n$/);
    const missing = await check("--file", "ceremony/alice.asc", "--identity", "alice.key.asc");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/is protected by a passphrase\nhint: give the passphrase/);
  });

  it("fails for a file changed since the ceremony wrote it", async () => {
    const text = await readFile(join(dir, "carol.age"), "utf8");
    await writeFile(join(base, "carol.age"), text.replace("\n", "\n\n"));
    await writeFile(join(base, "carol-copy-manifest.json"), await readFile(join(dir, "manifest.json")));
    const r = await check("--file", "carol.age", "--identity", "carol.txt", "--manifest", "carol-copy-manifest.json");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "FAIL carol.age is not the file carol-copy-manifest.json records for carol (the ceremony of http://127.0.0.1:8200 made",
    );
    expect(r.stderr).toContain("it is from another ceremony, or it was changed since it was written");
  });

  it("says 'another ceremony' for a file checked against another ceremony's manifest (issue 26.8)", async () => {
    // a second ceremony for the same operator names: carol's file there is listed by its own manifest
    const other = join(base, "ceremony-2");
    const store = new ShareStore(other);
    await store.checkWritable();
    const recipient = await loadRecipient(parseRecipientSpec(`age:${await identityToRecipient(ids.carol!)}`));
    const w = await store.writeSecretFile("carol.age", await sealShare(recipient, enc(shareHex(9))));
    await store.writeManifest(
      buildManifest({
        node: "http://127.0.0.1:8300",
        kind: "unseal",
        threshold: 1,
        shares: 1,
        operators: [
          { name: "carol", recipient, file: w.name, fileSha256: w.sha256, sealedBy: "client", share: shareBytes(9) },
        ],
        rootToken: { file: "root-token.age", fileSha256: "0".repeat(64), recipient, sealedBy: "client" },
      }),
    );
    const r = await check(
      "--file",
      "ceremony-2/carol.age",
      "--identity",
      "carol.txt",
      "--manifest",
      "ceremony/manifest.json",
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /FAIL ceremony-2\/carol\.age is from another ceremony \(http:\/\/127\.0\.0\.1:8300, made \S+: the manifest beside it lists it\) than ceremony\/manifest\.json/,
    );
    expect(r.stderr).not.toContain("or it was changed");
  });

  it("fails for a file the manifest does not list", async () => {
    await writeFile(join(base, "stray.age"), "x");
    const r = await check("--file", "stray.age", "--identity", "carol.txt", "--manifest", "ceremony/manifest.json");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("FAIL stray.age is not listed in the manifest");
  });

  it("fails for a share that does not match the manifest's digest, and for a malformed share", async () => {
    const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8"));
    const bob = await loadRecipient(
      parseRecipientSpec(manifest.operators[1].recipientFingerprint.replace(/^/, "age:")),
    );
    const swapped = await sealShare(bob, enc(shareHex(7)));
    const malformed = await sealShare(bob, enc("not a share"));
    const { sha256Hex } = await import("../../../src/store/share-text.js");
    for (const [name, content] of [
      ["swapped.age", swapped],
      ["malformed.age", malformed],
    ] as const) {
      await writeFile(join(base, name), content);
      manifest.operators[1].file = name;
      manifest.operators[1].fileSha256 = sha256Hex(content);
      await writeFile(join(base, `${name}.manifest.json`), JSON.stringify(manifest));
    }
    const s = await check("--file", "swapped.age", "--identity", "bob.txt", "--manifest", "swapped.age.manifest.json");
    expect(s.code).toBe(1);
    expect(s.stderr).toContain("FAIL the share in swapped.age does not match the manifest's digest for bob");
    const m = await check(
      "--file",
      "malformed.age",
      "--identity",
      "bob.txt",
      "--manifest",
      "malformed.age.manifest.json",
    );
    expect(m.code).toBe(1);
    expect(m.stderr).toContain("FAIL not a well-formed share");
    expectNoSecrets(s.stderr + m.stderr);
  });

  it("works without a manifest, saying what it could not check", async () => {
    const copy = join(base, "lonely");
    await rm(copy, { recursive: true, force: true });
    await (await import("node:fs/promises")).mkdir(copy);
    await writeFile(join(copy, "bob.age"), await readFile(join(dir, "bob.age")));
    const r = await runSealkeeper(["shares", "check", "--file", "bob.age", "--identity", "../bob.txt"], { cwd: copy });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("no manifest found: only decryption and form were checked");
  });

  it("says clearly when an input cannot be read", async () => {
    const r = await check("--file", "nope.age", "--identity", "bob.txt");
    expect(r).toMatchObject({ code: 1 });
    expect(r.stderr).toMatch(/^error: cannot read share file .*nope.age: ENOENT\n$/);
    const i = await check("--file", "ceremony/bob.age", "--identity", "nope.txt");
    expect(i.stderr).toMatch(/^error: cannot read identity file .*nope.txt: ENOENT\n$/);
  });
});
