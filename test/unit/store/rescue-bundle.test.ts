import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { armor, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openSealedShare } from "../../../src/ciphers/registry.js";
import { writeRescueBundle } from "../../../src/store/rescue-bundle.js";
import { ShareStore } from "../../../src/store/share-store.js";
import { createsNew, faultyFs } from "./fault-fs.js";

const SHARES = ["11", "22", "33"].map((b) => b.repeat(33));
let identity: string;
let sealed: string[];
let base: string;

beforeAll(async () => {
  identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  sealed = await Promise.all(
    SHARES.map(async (s) => {
      const e = new Encrypter();
      e.addRecipient(recipient);
      return armor.encode(await e.encrypt(s));
    }),
  );
});
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "sk-rescue-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const files = () => sealed.map((content, i) => ({ name: `op${i}.age`, content }));
const NOW = new Date("2026-03-04T05:06:07.890Z");

describe("writeRescueBundle", () => {
  it("writes a 0600 JSON bundle to the first directory that accepts it", async () => {
    const home = join(base, "home");
    await mkdir(home);
    const r = await writeRescueBundle(
      {
        node: "http://n1:8200",
        intendedDir: "/out",
        reason: "cannot write /out/op1.age: ENOSPC",
        files: files(),
        manifest: null,
      },
      { dirs: [home, base], now: NOW },
    );
    expect(r.written).toBe(true);
    if (!r.written) return;
    expect(r.path).toMatch(new RegExp(`^${home}/sealkeeper-rescue-2026-03-04T05-06-07-890Z-[0-9a-f]{6}\\.json$`));
    expect((await stat(r.path)).mode & 0o777).toBe(0o600);
    const bundle = JSON.parse(await readFile(r.path, "utf8"));
    expect(bundle).toMatchObject({
      format: "sealkeeper-rescue-bundle",
      node: "http://n1:8200",
      intendedDir: "/out",
      reason: "cannot write /out/op1.age: ENOSPC",
    });
    expect(bundle.files).toEqual(files());
  });

  it("tries the next directory when one fails, then returns the text to print when all fail", async () => {
    const notDir = join(base, "file");
    await writeFile(notDir, "");
    const ok = await writeRescueBundle(
      { node: "n", intendedDir: "/out", reason: "r", files: files(), manifest: null },
      { dirs: [join(base, "missing"), notDir, base] },
    );
    expect(ok).toMatchObject({ written: true });

    const none = await writeRescueBundle(
      { node: "n", intendedDir: "/out", reason: "r", files: files(), manifest: null },
      { dirs: [join(base, "missing"), notDir] },
    );
    expect(none.written).toBe(false);
    if (none.written) return;
    expect(none.errors).toEqual([`${join(base, "missing")}: ENOENT`, `${notDir}: ENOTDIR`]);
    expect(JSON.parse(none.text).files).toEqual(files());
  });

  it("removes a partial bundle when writing it fails", async () => {
    const fs = faultyFs({ write: () => "ENOSPC" });
    const r = await writeRescueBundle(
      { node: "n", intendedDir: "/out", reason: "r", files: files(), manifest: null },
      { dirs: [base], fs },
    );
    expect(r).toMatchObject({ written: false, errors: [`${base}: ENOSPC`] });
    expect(await readdir(base)).toEqual([]);
  });

  it("refuses plaintext before writing anything", async () => {
    await expect(
      writeRescueBundle(
        {
          node: "n",
          intendedDir: "/out",
          reason: "r",
          files: [{ name: "x.age", content: SHARES[0]! }],
          manifest: null,
        },
        { dirs: [base] },
      ),
    ).rejects.toThrow(/x.age is not sealed/);
    expect(await readdir(base)).toEqual([]);
  });

  it("saves every share when the ceremony directory becomes unwritable after the server answered", async () => {
    const dir = join(base, "ceremony");
    let broken = false;
    const fs = faultyFs({ open: (p, flags) => (broken && createsNew(flags) && p.startsWith(dir) ? "EIO" : undefined) });
    const store = new ShareStore(dir, { fs });
    await store.checkWritable(); // pre-flight passes
    // ... the server answers; the disk goes away after the first file
    const all = files();
    await store.writeSecretFile(all[0]!.name, all[0]!.content);
    broken = true;
    const err = (await store.writeSecretFile(all[1]!.name, all[1]!.content).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(`cannot write ${join(dir, "op1.age")}: EIO`);

    const rescueDir = join(base, "home");
    await mkdir(rescueDir);
    const r = await writeRescueBundle(
      { node: "n", intendedDir: dir, reason: err.message, files: all, manifest: null },
      { dirs: [rescueDir] },
    );
    expect(r.written).toBe(true);
    const bundle = JSON.parse(await readFile((r as { path: string }).path, "utf8"));
    // nothing lost: every share comes back out of the bundle, and no plaintext went in
    const text = await readFile((r as { path: string }).path, "utf8");
    for (const s of SHARES) expect(text).not.toContain(s);
    const opened = await Promise.all(
      bundle.files.map(async (f: { content: string }) =>
        new TextDecoder().decode((await openSealedShare(f.content, identity))!),
      ),
    );
    expect(opened).toEqual(SHARES);
  });
});
