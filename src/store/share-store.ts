/**
 * ShareStore: the ceremony output directory. Crash-safe and never overwriting:
 * every file is written to a temp file (0600) in the same directory, fsynced, then hard-linked to its final name
 * (link() fails with EEXIST instead of replacing, unlike rename()), the temp name is removed and the directory fsynced.
 * A crash leaves either no file or the complete file under its final name (plus, at worst, a `.sealkeeper-tmp-*` file).
 */
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import * as nodeFs from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileExtensionFor, recipientTypes } from "../ciphers/registry.js";
import { errnoCode, StoreError } from "./errors.js";
import { MANIFEST_FILE, type Manifest, validateManifest } from "./manifest.js";
import { sha256Hex } from "./share-text.js";

/** The file-system calls the store makes; tests inject failures through it. */
export type StoreFs = Pick<
  typeof nodeFs,
  "mkdir" | "stat" | "lstat" | "readdir" | "open" | "link" | "unlink" | "chmod"
>;

export interface ShareStoreOptions {
  /** Default: node:fs/promises. */
  fs?: StoreFs;
}

/** Temp files carry this prefix; a leftover one means an earlier run crashed mid-write. */
export const TEMP_PREFIX = ".sealkeeper-tmp-";
/** link() errors meaning "this file system has no hard links", where the store falls back to an exclusive create. */
const LINK_UNSUPPORTED = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
/**
 * Every file the store creates: exclusively (O_EXCL: an existing name, a planted symlink included, is EEXIST, never
 * followed or replaced), and O_NOFOLLOW said explicitly as well.
 */
export const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

export interface CheckWritableResult {
  /** The directory did not exist and was created 0700. */
  created: boolean;
  /** The directory existed, empty and ours, with group/other permissions, and was tightened to 0700. */
  tightened: boolean;
  /**
   * The directory existed, is not empty, and group or others may list it (never write it: that is refused): left
   * alone (changing the mode of a directory that holds other things could break them); the files are still 0600.
   */
  looseMode: boolean;
  /** The directory's permission bits after the check (e.g. 0o700), to print as they are. */
  mode: number;
}

export interface WrittenFile {
  name: string;
  path: string;
  /** Hex SHA-256 of the bytes written, for the manifest. */
  sha256: string;
}

export class ShareStore {
  /** Absolute path of the ceremony output directory. */
  readonly dir: string;
  /** Files written so far, in order. */
  readonly written: WrittenFile[] = [];
  private readonly fs: StoreFs;

  constructor(dir: string, opts: ShareStoreOptions = {}) {
    this.dir = resolve(dir);
    this.fs = opts.fs ?? nodeFs;
  }

  /**
   * Pre-flight, to call BEFORE any irreversible server call (init, rekey): creates the directory 0700 when absent
   * (parents too), tightens an existing EMPTY directory to 0700, refuses one that already holds a ceremony
   * (manifest.json, a share file `*.asc`/`*.age`, or a leftover temp file), and proves it writable by creating,
   * fsyncing and removing a probe file. `existingFiles: "keep"` accepts a directory that already holds sealed files
   * (they are never overwritten: writeSecretFile refuses an existing name). The directory must be the user's own: a symbolic link (which would send the
   * files wherever it points), a directory owned by another user, or a non-empty one writable by group or others
   * (who could delete or replace the only copies of the sealed shares and the manifest) is refused, naming the reason.
   * @throws StoreError naming the directory and the reason (not a directory, a symlink, not ours, writable by
   *   others, holds a ceremony, errno code).
   */
  async checkWritable(opts: { existingFiles?: "refuse" | "keep" } = {}): Promise<CheckWritableResult> {
    let created = false;
    let tightened = false;
    let looseMode = false;
    let mode: number;
    try {
      let st = await this.fs.lstat(this.dir).catch((err: unknown) => {
        if (errnoCode(err) === "ENOENT") return null;
        throw err;
      });
      if (st === null) {
        await this.fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
        // mkdir's mode is filtered by the umask; make sure
        await this.fs.chmod(this.dir, 0o700);
        created = true;
        // what is there now is checked like an existing directory: someone may have raced us to the name
        st = await this.fs.lstat(this.dir);
      }
      this.refuseForeign(st);
      const entries = created ? [] : await this.fs.readdir(this.dir);
      // "keep": a directory of delivered secrets (e.g. secret_ids) that a rerun adds to under new names
      const existing = opts.existingFiles === "keep" ? [] : this.findCeremonyFiles(entries);
      if (existing.length > 0) {
        const shown = existing.slice(0, 3).join(", ") + (existing.length > 3 ? ", ..." : "");
        throw new StoreError(
          `output directory ${this.dir} already holds a ceremony (${shown}): refusing to overwrite`,
          {
            hint: "choose a new, empty output directory",
          },
        );
      }
      mode = st.mode & 0o777;
      if (!created && (mode & 0o077) !== 0) {
        if (entries.length === 0) {
          await this.fs.chmod(this.dir, 0o700);
          mode = 0o700;
          tightened = true;
        } else if ((mode & 0o022) !== 0) {
          throw new StoreError(
            `output directory ${this.dir} is writable by ${(mode & 0o020) !== 0 ? "its group" : "others"} ` +
              `(mode ${octal(mode)}): they could delete or replace the sealed files and the manifest`,
            { hint: `choose a new, empty output directory, or remove their write permission (chmod go-w ${this.dir})` },
          );
        } else {
          looseMode = true;
        }
      }
      const probe = join(this.dir, `${TEMP_PREFIX}probe-${randomBytes(6).toString("hex")}`);
      const fh = await this.fs.open(probe, CREATE_NEW, 0o600);
      try {
        await fh.writeFile("probe");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.fs.unlink(probe);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`output directory ${this.dir} is not writable: ${errnoCode(err)}`, { cause: err });
    }
    return { created, tightened, looseMode, mode };
  }

  /** A symlink, a non-directory or another user's directory is refused, naming which. */
  private refuseForeign(st: { isSymbolicLink(): boolean; isDirectory(): boolean; uid: number }): void {
    if (st.isSymbolicLink()) {
      throw new StoreError(`output directory ${this.dir} is a symbolic link: refusing to follow it`, {
        hint: "give the real directory's path, or a new directory",
      });
    }
    if (!st.isDirectory()) throw new StoreError(`output directory ${this.dir} is not a directory`);
    const me = process.getuid?.();
    if (me !== undefined && st.uid !== me) {
      throw new StoreError(
        `output directory ${this.dir} belongs to another user (uid ${st.uid}, you are ${me}): ` +
          "they could delete or replace the sealed files and the manifest",
        { hint: "choose a new directory of your own" },
      );
    }
  }

  /** The directory's permission bits now, as an octal string ("0700"), for messages. */
  async modeText(): Promise<string> {
    return octal((await this.fs.lstat(this.dir)).mode & 0o777);
  }

  /**
   * Writes one secret file (a sealed share, a sealed root token) atomically, 0600, never replacing an existing file.
   * @param name a plain file name (no directory part, not hidden).
   * @returns the path and the SHA-256 of the bytes written.
   * @throws StoreError when the name is not plain, the file already exists (nothing is changed), or a write fails
   *   (the temp file is removed when possible; the final name is never left half-written).
   */
  async writeSecretFile(
    name: string,
    content: string | Uint8Array,
    opts: { mode?: number } = {},
  ): Promise<WrittenFile> {
    if (!SAFE_NAME.test(name)) throw new StoreError(`bad file name "${name}": expected a plain file name`);
    const mode = opts.mode ?? 0o600;
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    const path = join(this.dir, name);
    const temp = join(this.dir, `${TEMP_PREFIX}${name}-${randomBytes(6).toString("hex")}`);
    try {
      const fh = await this.fs.open(temp, CREATE_NEW, mode);
      try {
        await fh.chmod(mode); // in case the file system ignored the mode
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await this.fs.link(temp, path);
      } catch (err) {
        if (errnoCode(err) === "EEXIST") throw overwriteError(path, err);
        if (!LINK_UNSUPPORTED.has(errnoCode(err))) throw err;
        await this.writeExclusive(path, bytes, mode);
      }
    } catch (err) {
      await this.fs.unlink(temp).catch(() => undefined);
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot write ${path}: ${errnoCode(err)}`, { cause: err });
    }
    await this.fs.unlink(temp).catch(() => undefined);
    await this.syncDir();
    const written = { name, path, sha256: sha256Hex(bytes) };
    this.written.push(written);
    return written;
  }

  /**
   * Writes a set of files that belong together (e.g. the auto-unseal artefacts) with writeSecretFile's guarantees,
   * creating the directory (dirMode) when absent and refusing before writing anything when one of them exists.
   * `mode` 0600 for files holding secrets (the default), 0644 for public ones.
   * @throws StoreError naming the existing file, or the write that failed.
   */
  async writeNewFiles(
    files: { name: string; content: string }[],
    opts: { mode?: number; dirMode?: number } = {},
  ): Promise<WrittenFile[]> {
    try {
      await this.fs.mkdir(this.dir, { recursive: true, mode: opts.dirMode ?? 0o700 });
      if (!(await this.fs.stat(this.dir)).isDirectory()) throw new StoreError(`${this.dir} is not a directory`);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError(`cannot create ${this.dir}: ${errnoCode(err)}`, { cause: err });
    }
    for (const f of files) {
      const exists = await this.fs.stat(join(this.dir, f.name)).then(
        () => true,
        () => false,
      );
      if (exists) {
        throw new StoreError(`${join(this.dir, f.name)} already exists: refusing to overwrite`, { code: "EEXIST" });
      }
    }
    const written: WrittenFile[] = [];
    for (const f of files) written.push(await this.writeSecretFile(f.name, f.content, { mode: opts.mode }));
    return written;
  }

  /**
   * Validates and writes manifest.json (pretty JSON, 0600, atomic, never overwriting).
   * @throws StoreError when the manifest is invalid or the write fails (see writeSecretFile).
   */
  async writeManifest(manifest: Manifest): Promise<WrittenFile> {
    const valid = validateManifest(manifest, "the manifest to write");
    return this.writeSecretFile(MANIFEST_FILE, `${JSON.stringify(valid, null, 2)}\n`);
  }

  /**
   * For file systems without hard links (some FUSE, SMB, FAT mounts): create the final name exclusively ('wx', still
   * never replacing) and write it in place; on failure remove the partial file, which is ours since 'wx' created it.
   */
  private async writeExclusive(path: string, bytes: Uint8Array, mode: number): Promise<void> {
    let fh: nodeFs.FileHandle;
    try {
      fh = await this.fs.open(path, CREATE_NEW, mode);
    } catch (err) {
      if (errnoCode(err) === "EEXIST") throw overwriteError(path, err);
      throw err;
    }
    try {
      await fh.writeFile(bytes);
      await fh.sync();
      await fh.close();
    } catch (err) {
      await fh.close().catch(() => undefined);
      await this.fs.unlink(path).catch(() => undefined);
      throw err;
    }
  }

  /** Names in `entries` that mark a ceremony: the manifest, share files of any registered type, leftover temp files. */
  private findCeremonyFiles(entries: string[]): string[] {
    const extensions = recipientTypes.map(fileExtensionFor);
    return entries
      .filter((e) => e === MANIFEST_FILE || e.startsWith(TEMP_PREFIX) || extensions.some((x) => e.endsWith(x)))
      .sort();
  }

  /** fsync the directory so the new name survives a power cut. Some file systems refuse: the data is synced anyway. */
  private async syncDir(): Promise<void> {
    try {
      const dh = await this.fs.open(this.dir, "r");
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch {
      // EINVAL/EISDIR on file systems without directory fsync: nothing better to do
    }
  }
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}

function overwriteError(path: string, cause: unknown): StoreError {
  return new StoreError(`refusing to overwrite existing file ${path}`, { cause, code: "EEXIST" });
}
