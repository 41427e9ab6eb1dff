/**
 * The nothing-lost fallback. After the server has answered an init (or rekey), its response is the only copy of the
 * shares: if writing the normal ceremony files fails, the already-SEALED shares are written as one JSON bundle
 * somewhere else, and if that fails too the caller gets the bundle's text to print (it holds only sealed data, so
 * printing it to stderr leaks nothing).
 */
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { detectSealedType } from "../ciphers/registry.js";
import { VERSION } from "../version.js";
import { errnoCode } from "./errors.js";

export const RESCUE_FORMAT = "sealkeeper-rescue-bundle";

/** One file the ceremony meant to write: its name and its exact content, which must be sealed (armored pgp or age). */
export interface RescueFile {
  name: string;
  content: string;
}

export interface RescueBundleInput {
  /** Address of the node whose response this is. */
  node: string;
  /** Where the files should have gone. */
  intendedDir: string;
  /** Why the normal write failed, one line (an error message: never a secret). */
  reason: string;
  /** Every sealed file of the ceremony, written or not: the bundle alone must be enough to recover. */
  files: RescueFile[];
  /** The manifest if one was built (public data), else null. */
  manifest: unknown;
}

export interface RescueBundleOptions {
  /** Directories tried in order. Default: the home directory, then the OS temp directory. */
  dirs?: string[];
  /** Default: now. */
  now?: Date;
  /** Default: node:fs/promises. Tests inject failures through it. */
  fs?: Pick<typeof nodeFs, "open" | "unlink">;
}

export type RescueResult =
  /** The bundle was written, 0600, to `path`. */
  | { written: true; path: string; text: string }
  /** No directory accepted it: `errors` says why per directory; the caller MUST print `text` (to stderr). */
  | { written: false; text: string; errors: string[] };

/**
 * Writes the rescue bundle: `sealkeeper-rescue-<UTC time>-<random>.json`, mode 0600, created exclusively ('wx', never
 * replacing) and fsynced, in the first directory of `opts.dirs` (default: $HOME, then os.tmpdir()) that accepts it.
 * The JSON holds {format, version, toolVersion, created, node, intendedDir, reason, files: [{name, content}], manifest};
 * to recover, write each `content` to a file called `name`.
 *
 * Never throws for I/O: when every directory fails, it returns `{ written: false, text, errors }` and the caller prints
 * `text`.
 * @throws TypeError before writing anything when a file's content is not sealed (pgp or age): plaintext must never
 *   reach a rescue bundle; this is a bug in the caller, not a run-time condition.
 */
export async function writeRescueBundle(
  input: RescueBundleInput,
  opts: RescueBundleOptions = {},
): Promise<RescueResult> {
  for (const file of input.files) {
    if (detectSealedType(file.content) === null) {
      throw new TypeError(`rescue bundle refused: ${file.name} is not sealed`);
    }
  }
  const now = opts.now ?? new Date();
  const bundle = {
    format: RESCUE_FORMAT,
    version: 1,
    toolVersion: VERSION,
    created: now.toISOString(),
    node: input.node,
    intendedDir: input.intendedDir,
    reason: input.reason,
    note: "every file below is sealed to its recipient; to recover, write each content to a file named name",
    files: input.files,
    manifest: input.manifest ?? null,
  };
  const text = `${JSON.stringify(bundle, null, 2)}\n`;
  const fs = opts.fs ?? nodeFs;
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const dirs = [...new Set((opts.dirs ?? defaultRescueDirs()).filter((d) => d !== "").map((d) => resolve(d)))];
  const errors: string[] = [];
  for (const dir of dirs) {
    const path = join(dir, `sealkeeper-rescue-${stamp}-${randomBytes(3).toString("hex")}.json`);
    let created = false;
    try {
      const fh = await fs.open(path, "wx", 0o600);
      created = true;
      try {
        await fh.chmod(0o600);
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return { written: true, path, text };
    } catch (err) {
      errors.push(`${dir}: ${errnoCode(err)}`);
      // a partial bundle would be mistaken for a good one
      if (created) await fs.unlink(path).catch(() => undefined);
    }
  }
  return { written: false, text, errors };
}

function defaultRescueDirs(): string[] {
  let home = "";
  try {
    home = homedir();
  } catch {
    // no home directory (some containers): the temp directory still works
  }
  return [home, tmpdir()];
}
