import * as nodeFs from "node:fs/promises";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StoreError } from "../../../src/store/errors.js";
import { buildManifest, readManifest } from "../../../src/store/manifest.js";
import { ShareStore } from "../../../src/store/share-store.js";
import { sha256Hex } from "../../../src/store/share-text.js";
import { createsNew, faultyFs } from "./fault-fs.js";

const SEALED = "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n";
let base: string;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "sk-store-"));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

const modeOf = async (p: string) => (await stat(p)).mode & 0o777;

describe("checkWritable", () => {
  it("creates the directory and its parents 0700, and leaves nothing behind", async () => {
    const dir = join(base, "a", "ceremony");
    const store = new ShareStore(dir);
    expect(await store.checkWritable()).toEqual({ created: true, tightened: false, looseMode: false, mode: 0o700 });
    expect(await modeOf(dir)).toBe(0o700);
    expect(await readdir(dir)).toEqual([]);
  });

  it("tightens an existing empty directory to 0700", async () => {
    const dir = join(base, "open");
    await mkdir(dir);
    await chmod(dir, 0o755);
    expect(await new ShareStore(dir).checkWritable()).toMatchObject({ created: false, tightened: true });
    expect(await modeOf(dir)).toBe(0o700);
  });

  it("leaves the mode of a non-empty directory alone and reports it", async () => {
    const dir = join(base, "shared");
    await mkdir(dir);
    await writeFile(join(dir, "README.txt"), "other things");
    await chmod(dir, 0o755);
    const store = new ShareStore(dir);
    expect(await store.checkWritable()).toMatchObject({ tightened: false, looseMode: true, mode: 0o755 });
    expect(await modeOf(dir)).toBe(0o755);
    expect(await store.modeText()).toBe("0755");
  });

  it("refuses a symlinked output directory, writing nothing where it points (issue 34)", async () => {
    const target = join(base, "elsewhere");
    await mkdir(target, { mode: 0o700 });
    const link = join(base, "out");
    await symlink(target, link);
    const err = await new ShareStore(link).checkWritable().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`output directory ${link} is a symbolic link: refusing to follow it`);
    expect(await readdir(target)).toEqual([]);
  });

  it("refuses a directory owned by another user (issue 34)", async () => {
    const dir = join(base, "theirs");
    await mkdir(dir, { mode: 0o700 });
    const me = process.getuid?.() ?? 0;
    // as root the directory really is given away; otherwise lstat reports another owner
    let fs = nodeFs;
    if (me === 0) await nodeFs.chown(dir, 4242, 4242);
    else
      fs = {
        ...nodeFs,
        lstat: (async (p: string) => Object.assign(await nodeFs.lstat(p), { uid: me + 1 })) as typeof nodeFs.lstat,
      };
    const err = await new ShareStore(dir, { fs }).checkWritable().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toMatch(
      new RegExp(`^output directory ${dir} belongs to another user \\(uid \\d+, you are ${me}\\)`),
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it.each([
    [0o775, "its group"],
    [0o757, "others"],
    [0o777, "its group"],
  ])("refuses a non-empty directory writable by group or others (mode %o), naming who (issue 34)", async (m, who) => {
    const dir = join(base, "shared");
    await mkdir(dir);
    await writeFile(join(dir, "README.txt"), "other things");
    await chmod(dir, m);
    const err = await new ShareStore(dir).checkWritable().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(
      `output directory ${dir} is writable by ${who} (mode 0${m.toString(8)}): they could delete or replace the sealed files and the manifest`,
    );
    expect(await readdir(dir)).toEqual(["README.txt"]);
    expect(await modeOf(dir)).toBe(m);
  });

  it.each([["manifest.json"], ["alice.asc"], ["bob.age"], [".sealkeeper-tmp-alice.asc-0a1b2c"]])(
    "refuses a directory that already holds a ceremony (%s)",
    async (name) => {
      const dir = join(base, "old");
      await mkdir(dir, { mode: 0o700 });
      await writeFile(join(dir, name), "x");
      const err = await new ShareStore(dir).checkWritable().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StoreError);
      expect((err as Error).message).toBe(
        `output directory ${dir} already holds a ceremony (${name}): refusing to overwrite`,
      );
      expect(await readFile(join(dir, name), "utf8")).toBe("x");
    },
  );

  it("refuses a path that is a file", async () => {
    const file = join(base, "f");
    await writeFile(file, "");
    await expect(new ShareStore(file).checkWritable()).rejects.toThrow(`output directory ${file} is not a directory`);
  });

  it("refuses an unwritable place, naming the errno", async () => {
    const file = join(base, "f");
    await writeFile(file, "");
    await expect(new ShareStore(join(file, "sub")).checkWritable()).rejects.toThrow(/is not writable: ENOTDIR$/);
    // /sys refuses new directories even to root
    await expect(new ShareStore("/sys/sealkeeper-test-dir").checkWritable()).rejects.toThrow(
      /is not writable: E(PERM|ACCES|ROFS)$/,
    );
  });

  it.skipIf(process.getuid?.() === 0)("refuses a read-only directory (non-root)", async () => {
    const dir = join(base, "ro");
    await mkdir(dir, { mode: 0o500 });
    await expect(new ShareStore(dir).checkWritable()).rejects.toThrow(/is not writable: EACCES$/);
  });

  it("refuses a directory where files cannot be created (injected EACCES, e.g. root-squashed NFS)", async () => {
    const fs = faultyFs({ open: (_p, flags) => (createsNew(flags) ? "EACCES" : undefined) });
    const dir = join(base, "nfs");
    await expect(new ShareStore(dir, { fs }).checkWritable()).rejects.toThrow(
      `output directory ${dir} is not writable: EACCES`,
    );
  });
});

describe("writeSecretFile", () => {
  it("never writes through a symlink planted at the final name (issue 34)", async () => {
    const dir = join(base, "c");
    const store = new ShareStore(dir);
    await store.checkWritable();
    const victim = join(base, "victim.txt");
    await writeFile(victim, "keep me");
    await symlink(victim, join(dir, "alice.asc"));
    await expect(store.writeSecretFile("alice.asc", SEALED)).rejects.toThrow(/refusing to overwrite existing file/);
    expect(await readFile(victim, "utf8")).toBe("keep me");
    expect((await readdir(dir)).filter((e) => e.startsWith(".sealkeeper-tmp-"))).toEqual([]);
  });

  let store: ShareStore;
  let dir: string;
  beforeEach(async () => {
    dir = join(base, "out");
    store = new ShareStore(dir);
    await store.checkWritable();
  });

  it("writes 0600 in the 0700 directory, returns its hash, leaves no temp file", async () => {
    const w = await store.writeSecretFile("alice.age", SEALED);
    expect(w).toEqual({ name: "alice.age", path: join(dir, "alice.age"), sha256: sha256Hex(SEALED) });
    expect(await readFile(w.path, "utf8")).toBe(SEALED);
    expect(await modeOf(w.path)).toBe(0o600);
    expect(await modeOf(dir)).toBe(0o700);
    expect(await readdir(dir)).toEqual(["alice.age"]);
    expect(store.written.map((f) => f.name)).toEqual(["alice.age"]);
  });

  it("is 0600 whatever the umask", async () => {
    const old = process.umask(0);
    try {
      const w = await store.writeSecretFile("u.asc", SEALED);
      expect(await modeOf(w.path)).toBe(0o600);
    } finally {
      process.umask(old);
    }
  });

  it("never overwrites an existing file", async () => {
    await writeFile(join(dir, "alice.age"), "original");
    const err = await store.writeSecretFile("alice.age", SEALED).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect((err as Error).message).toBe(`refusing to overwrite existing file ${join(dir, "alice.age")}`);
    expect(await readFile(join(dir, "alice.age"), "utf8")).toBe("original");
    expect(await readdir(dir)).toEqual(["alice.age"]);
  });

  it("never overwrites its own earlier file either", async () => {
    await store.writeSecretFile("bob.age", SEALED);
    await expect(store.writeSecretFile("bob.age", "other")).rejects.toThrow(/refusing to overwrite/);
    expect(await readFile(join(dir, "bob.age"), "utf8")).toBe(SEALED);
  });

  it.each([["../escape.asc"], [".hidden"], ["a/b.asc"], [""], ["-x.asc"]])("refuses the name %j", async (name) => {
    await expect(store.writeSecretFile(name, SEALED)).rejects.toThrow(/bad file name/);
    expect(await readdir(dir)).toEqual([]);
  });

  it("leaves neither the file nor a temp file when a write fails (disk full)", async () => {
    const faulty = new ShareStore(dir, { fs: faultyFs({ write: () => "ENOSPC" }) });
    await expect(faulty.writeSecretFile("carol.asc", SEALED)).rejects.toThrow(
      `cannot write ${join(dir, "carol.asc")}: ENOSPC`,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it("falls back to an exclusive create where hard links are not supported, still never overwriting", async () => {
    const noLinks = new ShareStore(dir, { fs: faultyFs({ link: () => "EPERM" }) });
    const w = await noLinks.writeSecretFile("dave.asc", SEALED);
    expect(await readFile(w.path, "utf8")).toBe(SEALED);
    expect(await modeOf(w.path)).toBe(0o600);
    expect(await readdir(dir)).toEqual(["dave.asc"]);
    await expect(noLinks.writeSecretFile("dave.asc", "other")).rejects.toThrow(/refusing to overwrite/);
    expect(await readFile(w.path, "utf8")).toBe(SEALED);
    expect(await readdir(dir)).toEqual(["dave.asc"]);
  });
});

describe("writeManifest", () => {
  it("writes a valid manifest 0600 that reads back, and never overwrites it", async () => {
    const dir = join(base, "m");
    const store = new ShareStore(dir);
    await store.checkWritable();
    const w = await store.writeSecretFile("alice.age", SEALED);
    const manifest = buildManifest({
      node: "http://127.0.0.1:8200",
      kind: "unseal",
      threshold: 1,
      shares: 1,
      operators: [
        {
          name: "alice",
          recipient: { type: "age", fingerprint: "age1xyz" },
          file: w.name,
          fileSha256: w.sha256,
          sealedBy: "client",
          share: new Uint8Array(32).fill(7),
        },
      ],
      rootToken: null,
    });
    const m = await store.writeManifest(manifest);
    expect(await modeOf(m.path)).toBe(0o600);
    expect(await readManifest(m.path)).toEqual(manifest);
    await expect(store.writeManifest(manifest)).rejects.toThrow(/refusing to overwrite/);
  });

  it("refuses an invalid manifest before writing anything", async () => {
    const dir = join(base, "bad");
    const store = new ShareStore(dir);
    await store.checkWritable();
    // biome-ignore lint/suspicious/noExplicitAny: deliberately invalid
    await expect(store.writeManifest({ format: "x" } as any)).rejects.toThrow(/not a valid sealkeeper manifest/);
    expect(await readdir(dir)).toEqual([]);
  });
});
