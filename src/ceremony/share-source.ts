/**
 * Where a quorum ceremony (unseal, generate-root, rekey, migrate) gets its shares from: files (plaintext, or sealed
 * to an operator and opened here with their identity), stdin lines, or a person at the prompts. Every source yields
 * KeyShare objects; the ceremonies never know which source they read.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { OpenShareError } from "../ciphers/errors.js";
import { OPERATOR_NAME } from "../ciphers/recipient-spec.js";
import { fileExtensionFor, recipientTypes } from "../ciphers/registry.js";
import { UsageError } from "../errors.js";
import type { Prompter } from "../prompt/prompter.js";
import { computeShareDigest, SHARE_BYTES } from "../store/share-text.js";
import { escapeControl } from "../util/redact.js";
import { wipe } from "../util/wipe.js";
import { type KeyShare, parseKeyShare } from "./unseal-key.js";

export interface ShareSource {
  /** The next share, or null when there is none left. `context` is shown by interactive sources. */
  next(context: SourceContext): Promise<KeyShare | null>;
}

export interface SourceContext {
  /** A line describing the state, e.g. "node-1 2/3, node-2 2/3". */
  progressLine: string;
  /** How many more shares are needed at most. */
  remaining: number;
}

export interface Identity {
  path: string;
  content: Uint8Array;
}

/** Reads identity files (PGP private keys or age identity files). @throws UsageError naming the unreadable file. */
export function readIdentities(paths: string[], cwd: string): Identity[] {
  return paths.map((p) => {
    const path = resolve(cwd, p);
    try {
      // the file's own buffer, not a copy: wipeIdentities zeroes it once the shares are open
      return { path, content: readFileSync(path) };
    } catch (err) {
      throw new UsageError(`cannot read identity file ${p}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
  });
}

/** Zeroes the identity files' bytes (src/util/wipe.ts). */
export function wipeIdentities(identities: Identity[]): void {
  wipe(...identities.map((i) => i.content));
}

/** Reads a passphrase file: its first line, without the newline. The file's bytes are zeroed once decoded. */
export function readPassphraseFile(path: string, cwd: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(resolve(cwd, path));
  } catch (err) {
    throw new UsageError(`cannot read passphrase file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  try {
    return bytes.toString("utf8").split(/\r?\n/)[0] ?? "";
  } finally {
    wipe(bytes);
  }
}

/**
 * Opens one share file: a plaintext share (hex/base64), or a share sealed to an operator (pgp/age), opened with the
 * first identity it is addressed to. The operator's name comes from a manifest.json beside the file when it lists
 * the file, else from the file name.
 * @throws UsageError: unreadable file, sealed without an identity, addressed to none of the identities, wrong
 *   passphrase, not a share.
 */
export async function openShareFile(
  path: string,
  identities: Identity[],
  passphrase: string | undefined,
): Promise<KeyShare> {
  let content: Buffer;
  try {
    content = readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read share file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  // the file's name is outside input too: shown escaped (a name may hold anything but "/" and NUL)
  const operator = operatorFromManifest(path) ?? escapeControl(operatorFromFileName(basename(path)));
  const origin = `file ${basename(path)}`;
  const { detectSealedType, openSealedShare } = await import("../ciphers/registry.js");
  const sealedType = detectSealedType(new Uint8Array(content));
  if (sealedType === null) return checkedByManifest(path, parseKeyShare(content.toString("utf8"), origin, operator));
  if (identities.length === 0) {
    throw new UsageError(`share file ${path} is sealed (${sealedType}); give the operator's key with --identity`);
  }
  for (const identity of identities) {
    let plain: Uint8Array | null;
    try {
      plain = await openSealedShare(new Uint8Array(content), identity.content, passphrase);
    } catch (err) {
      const message = `cannot open share file ${path} with ${identity.path}: ${(err as Error).message}`;
      // the cipher's typed reason travels on (a passphrase to ask for, a wrong one, a corrupt file)
      if (err instanceof OpenShareError) throw new OpenShareError(err.reason, message, { cause: err, hint: err.hint });
      throw new UsageError(message, { cause: err });
    }
    if (plain !== null)
      return checkedByManifest(path, parseKeyShare(Buffer.from(plain).toString("utf8"), origin, operator));
  }
  throw new UsageError(
    `share file ${path} is not addressed to ${identities.length === 1 ? "the identity" : "any identity"} given (${identities.map((i) => basename(i.path)).join(", ")})`,
  );
}

/** The parts of a manifest.json beside a share file that a ceremony uses (no validation: a hint, never trusted). */
interface ManifestBeside {
  shares?: number;
  shareDigestSalt?: string;
  operators?: { name?: string; file?: string; shareDigest?: string | null }[];
}

function manifestBeside(path: string): ManifestBeside | undefined {
  try {
    return JSON.parse(readFileSync(join(dirname(path), "manifest.json"), "utf8")) as ManifestBeside;
  } catch {
    return undefined;
  }
}

/**
 * The operator's name from the manifest beside the file, when it lists the file under a name the manifest schema
 * allows (the operator-spec rule: no control character reaches the terminal or the transcript from it). Else the
 * file name names the operator.
 */
function operatorFromManifest(path: string): string | undefined {
  const name = manifestBeside(path)?.operators?.find((o) => o.file === basename(path))?.name;
  return typeof name === "string" && OPERATOR_NAME.test(name) ? name : undefined;
}

/**
 * Refuses, before anything is sent, a share that the manifest beside its file says is not one of that ceremony's:
 * its salted digest differs from the one listed for the file, or (a file the manifest does not list) from every one
 * listed; or its length is not a Shamir share's when the ceremony handed out several.
 * @throws UsageError naming the file and what differs, never the share.
 */
function checkedByManifest(path: string, share: KeyShare): KeyShare {
  const m = manifestBeside(path);
  const salt = m?.shareDigestSalt;
  if (!m || typeof salt !== "string" || !/^[0-9a-f]{64}$/.test(salt)) return share;
  const refuse = (why: string) => {
    share.bytes.fill(0);
    return new UsageError(`the share in ${path} ${why}: nothing was sent`);
  };
  if ((m.shares ?? 0) > 1 && share.bytes.length !== SHARE_BYTES) {
    throw refuse(`is ${share.bytes.length} bytes, while the ${m.shares} shares of manifest.json beside it are 33`);
  }
  const digest = computeShareDigest(salt, share.bytes);
  const listed = (m.operators ?? []).filter((o) => typeof o.shareDigest === "string");
  const entry = m.operators?.find((o) => o.file === basename(path));
  if (entry && typeof entry.shareDigest === "string" && entry.shareDigest !== digest) {
    throw refuse(
      `is not the share manifest.json beside it lists for ${entry.name ?? "this file"} (from another ceremony, or the file was replaced)`,
    );
  }
  if (
    !entry &&
    listed.length > 0 &&
    listed.length === m.operators?.length &&
    !listed.some((o) => o.shareDigest === digest)
  ) {
    throw refuse("is none of the shares manifest.json beside it lists (from another ceremony?)");
  }
  return share;
}

/**
 * A scripted source: share files first (in the order given), then non-blank stdin lines.
 * Fails on the first bad input with a message naming it; never prompts.
 */
export function scriptedShareSource(opts: {
  files: string[];
  stdinText?: string;
  identities: Identity[];
  passphrase?: string;
  cwd: string;
}): ShareSource {
  const items: (() => Promise<KeyShare>)[] = [];
  for (const f of opts.files) {
    const path = resolve(opts.cwd, f);
    items.push(() => openShareFile(path, opts.identities, opts.passphrase));
  }
  const lines = (opts.stdinText ?? "").split(/\r?\n/);
  lines.forEach((line, i) => {
    if (line.trim() !== "") items.push(async () => parseKeyShare(line, `stdin line ${i + 1}`));
  });
  let index = 0;
  return {
    async next() {
      const item = items[index++];
      // the identities' bytes are zeroed once no more files are to be opened, or when the source fails
      if (!item) {
        wipeIdentities(opts.identities);
        return null;
      }
      try {
        const share = await item();
        // the files come first: after the last one the identities are no longer needed
        if (index >= opts.files.length) wipeIdentities(opts.identities);
        return share;
      } catch (err) {
        wipeIdentities(opts.identities);
        throw err;
      }
    },
  };
}

/**
 * The interactive source: for each share, the operator chooses to type/paste it (masked) or to open their sealed
 * share file with their key (passphrase masked). A typo is explained and asked again; it never ends the ceremony.
 */
export function interactiveShareSource(prompter: Prompter, opts: { cwd: string; home?: string }): ShareSource {
  const path = (answer: string) => resolve(opts.cwd, expandHome(answer.trim(), opts.home ?? homedir()));
  return {
    async next(context) {
      prompter.say(`progress: ${context.progressLine}`);
      for (;;) {
        const how = await prompter.select<"paste" | "file" | "stop">("Next operator: how will you give your share?", [
          { name: "Type or paste my share (hidden)", value: "paste" },
          { name: "Open my sealed share file with my key", value: "file" },
          { name: "Stop here (no more shares now)", value: "stop" },
        ]);
        if (how === "stop") return null;
        // The name is asked AFTER the share: the share goes to the hidden prompt that comes right after the choice
        // (pasting it one prompt early used to put it on the echoed name line); a plain prompt refuses anything
        // share-shaped anyway (Prompter.input).
        const askName = async () =>
          (await prompter.input("Your name (for the transcript, optional):")).trim() || undefined;
        try {
          if (how === "paste") {
            const text = await prompter.secret("Share:");
            const share = parseKeyShare(text, "prompt");
            return { ...share, operator: await askName() };
          }
          const file = path(await prompter.input("Sealed share file:"));
          const identityPath = path(await prompter.input("Your private key / age identity file:"));
          const identities = readIdentities([identityPath], opts.cwd);
          let share: KeyShare;
          try {
            share = await openShareFile(file, identities, undefined);
          } catch (err) {
            if (!(err instanceof OpenShareError && err.reason === "passphrase-required")) throw err;
            const passphrase = await prompter.secret("Passphrase for your key:");
            share = await openShareFile(file, identities, passphrase);
          } finally {
            wipeIdentities(identities);
          }
          return { ...share, operator: (await askName()) ?? share.operator };
        } catch (err) {
          if (!(err instanceof UsageError)) throw err;
          prompter.say(`✗ ${err.message}. Try again.`);
        }
      }
    },
  };
}

/** `~` and `~/...` as a shell expands them at a path prompt (the answer never went through a shell). */
export function expandHome(path: string, home: string): string {
  return path === "~" ? home : path.startsWith("~/") ? join(home, path.slice(2)) : path;
}

/**
 * Sealed share files carry the extension of their type (from the cipher registry); these are the other endings an
 * operator's file name may have: plaintext shares, and what people name a binary OpenPGP file.
 */
const PLAINTEXT_EXTENSIONS = [".txt", ".share", ".gpg", ".pgp"];

/** "alice.asc" -> "alice": the registered sealed-share extensions and the plaintext ones are stripped. */
function operatorFromFileName(name: string): string {
  const known = [...recipientTypes.map(fileExtensionFor), ...PLAINTEXT_EXTENSIONS];
  const ext = known.find((x) => name.toLowerCase().endsWith(x));
  return ext ? name.slice(0, -ext.length) : name;
}
