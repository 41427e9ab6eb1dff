import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { wipe } from "../../util/wipe.js";
import { ExitWith } from "../exit.js";
import type { CliIO } from "../io.js";
import { addFormatOption } from "../options.js";
import { paint, resolveFormat, useColor, writeJson } from "../output.js";

/** The outcome of `shares check`, the machine form (--format json); the table form is one line of it. */
export interface ShareCheckResult {
  ok: boolean;
  file: string;
  /** "share" or "root-token" (from the manifest), "share" without a manifest. */
  kind: "share" | "root-token";
  operator: string | null;
  shareIndex: number | null;
  manifest: string | null;
  /** Each check that ran, in order, and its verdict. Never contains share material. */
  checks: { name: string; ok: boolean; detail?: string }[];
  problem?: string;
}

export function registerShares(program: Command, io: CliIO): void {
  const shares = program.command("shares").description("work with sealed share files offline");
  const check = shares
    .command("check")
    .description(
      "decrypt your sealed share file with your own identity, offline, and check it is a well-formed share matching " +
        "the ceremony's manifest (prints OK with your name and share index, never the share; exit 0 ok, 1 not)",
    )
    .requiredOption("--file <file>", "your sealed share file (e.g. alice.asc or bob.age)")
    .requiredOption("--identity <file>", "your private key: an exported PGP secret key, or an age identity file")
    .option("--passphrase-file <file>", "file holding the identity's passphrase (first line)")
    .option("--manifest <file>", "the ceremony's manifest.json (default: manifest.json next to --file, when present)");
  addFormatOption(check);
  check.action(
    async (opts: { file: string; identity: string; passphraseFile?: string; manifest?: string; format?: string }) => {
      const format = resolveFormat(opts.format, io);
      const result = await checkShareFile(opts, io);
      if (format === "json") writeJson(io, result);
      else printResult(result, io);
      if (!result.ok) throw new ExitWith(1);
    },
  );
}

async function readInput(path: string, what: string): Promise<Buffer> {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}

/** The passphrase is the file's first line: a trailing newline from `echo` is not part of it. */
async function readPassphrase(path: string): Promise<string> {
  const bytes = await readInput(path, "passphrase file");
  const text = bytes.toString("utf8");
  wipe(bytes);
  return text.split(/\r?\n/)[0] ?? "";
}

async function exists(path: string): Promise<boolean> {
  return existsSync(path);
}

/**
 * Runs every check on one share file. Returns a failed result (ok: false, problem) for a check that fails; throws
 * UsageError/OpenShareError/StoreError for inputs that cannot be read at all (exit 1 either way).
 */
export async function checkShareFile(
  opts: { file: string; identity: string; passphraseFile?: string; manifest?: string },
  io: CliIO,
): Promise<ShareCheckResult> {
  const [{ openSealedShare, detectSealedType }, { OpenShareError }, manifestMod, shareText] = await Promise.all([
    import("../../ciphers/registry.js"),
    import("../../ciphers/errors.js"),
    import("../../store/manifest.js"),
    import("../../store/share-text.js"),
  ]);
  const filePath = resolve(io.cwd, opts.file);
  const sealed = await readInput(filePath, "share file");
  const identity = await readInput(resolve(io.cwd, opts.identity), "identity file");
  let passphrase = opts.passphraseFile ? await readPassphrase(resolve(io.cwd, opts.passphraseFile)) : undefined;

  const result: ShareCheckResult = {
    ok: false,
    file: opts.file,
    kind: "share",
    operator: null,
    shareIndex: null,
    manifest: null,
    checks: [],
  };
  const fail = (name: string, problem: string): ShareCheckResult => {
    result.checks.push({ name, ok: false, detail: problem });
    result.problem = problem;
    return result;
  };
  const pass = (name: string, detail?: string) => result.checks.push({ name, ok: true, ...(detail ? { detail } : {}) });

  // the manifest: given, or next to the file; without one, only decryption and form are checked
  const manifestPath = opts.manifest
    ? resolve(io.cwd, opts.manifest)
    : join(dirname(filePath), manifestMod.MANIFEST_FILE);
  const manifest = opts.manifest || (await exists(manifestPath)) ? await manifestMod.readManifest(manifestPath) : null;
  const fileSha256 = shareText.sha256Hex(sealed);
  let operator: ReturnType<typeof manifestMod.findManifestOperator> = null;
  if (manifest) {
    result.manifest = opts.manifest ?? manifestPath;
    const name = basename(filePath);
    operator = manifestMod.findManifestOperator(manifest, name, fileSha256);
    if (operator) {
      result.operator = operator.name;
      if (operator.fileSha256 !== fileSha256) {
        // another ceremony's file (same operator name), or a changed one: the manifest beside the file can tell
        const beside = join(dirname(filePath), manifestMod.MANIFEST_FILE);
        const own =
          opts.manifest && resolve(beside) !== manifestPath && (await exists(beside))
            ? await manifestMod.readManifest(beside).catch(() => null)
            : null;
        const ceremony = `the ceremony of ${manifest.node} made ${manifest.created}`;
        if (own && manifestMod.findManifestOperator(own, name, fileSha256)?.fileSha256 === fileSha256) {
          return fail(
            "file hash",
            `${opts.file} is from another ceremony (${own.node}, made ${own.created}: the manifest beside it lists it) than ${result.manifest} (${ceremony}); nothing suggests it was changed: check it against its own manifest`,
          );
        }
        return fail(
          "file hash",
          `${opts.file} is not the file ${result.manifest} records for ${operator.name} (${ceremony}; SHA-256 differs): it is from another ceremony, or it was changed since it was written`,
        );
      }
      pass("file hash");
    } else if (
      manifest.rootToken &&
      (manifest.rootToken.file === name || manifest.rootToken.fileSha256 === fileSha256)
    ) {
      result.kind = "root-token";
      if (manifest.rootToken.fileSha256 !== fileSha256) {
        return fail("file hash", `${opts.file} differs from the root token file the ceremony wrote`);
      }
      pass("file hash");
    } else {
      return fail("listed", `${opts.file} is not listed in the manifest ${result.manifest}`);
    }
  }

  if (detectSealedType(sealed) === null) {
    return fail("sealed", `${opts.file} is not a sealed share (neither an OpenPGP message nor an age file)`);
  }
  let plaintext: Uint8Array | null;
  try {
    try {
      plaintext = await openSealedShare(sealed, identity, passphrase);
    } catch (err) {
      if (!(err instanceof OpenShareError) || err.reason !== "passphrase-required" || !io.stdinIsTTY) throw err;
      // a person at a terminal: ask, masked, rather than make them rerun with a file
      const { PromptInterrupted, ttyPrompter } = await import("../../prompt/prompter.js");
      try {
        passphrase = await ttyPrompter({ input: io.stdin, output: io.stderr }).secret("Passphrase for your identity");
      } catch (stop) {
        if (!(stop instanceof PromptInterrupted)) throw stop;
        // an offline check: nothing anywhere changed; say so, then exit with the interrupt's code
        io.stderr.write(
          `stopped by ${stop.said} at the passphrase prompt: ${opts.file} was not opened, and nothing changed anywhere (this check is offline); run it again to check the file\n`,
        );
        throw new ExitWith(stop.exitCode);
      }
      plaintext = await openSealedShare(sealed, identity, passphrase);
    }
  } finally {
    // the identity file's bytes are ours: zeroed once used (src/util/wipe.ts)
    wipe(identity);
  }
  if (plaintext === null) {
    return fail("decrypt", `${opts.file} is not addressed to this identity (${opts.identity})`);
  }
  pass("decrypt");

  if (result.kind === "root-token") {
    if (new TextDecoder().decode(plaintext).trim() === "")
      return fail("form", "the root token file decrypts to nothing");
    pass("form");
    result.ok = true;
    return result;
  }

  let share: Uint8Array;
  try {
    share = shareText.decodeShareText(plaintext, manifest?.shares);
  } catch (err) {
    return fail("form", (err as Error).message);
  } finally {
    plaintext.fill(0);
  }
  result.shareIndex = shareText.shareIndexOf(share);
  pass("form", share.length === shareText.SHARE_BYTES ? "33-byte share" : "32-byte root key (single share)");

  if (manifest && operator) {
    if (operator.shareDigest !== null) {
      const ok = shareText.computeShareDigest(manifest.shareDigestSalt, share) === operator.shareDigest;
      share.fill(0);
      if (!ok)
        return fail("digest", `the share in ${opts.file} does not match the manifest's digest for ${operator.name}`);
      pass("digest");
    } else {
      pass("digest", "not recorded: the server sealed this share, sealkeeper never saw it");
    }
    if (operator.shareIndex !== null && operator.shareIndex !== result.shareIndex) {
      return fail("index", `the share index ${result.shareIndex} differs from the manifest's ${operator.shareIndex}`);
    }
  }
  share.fill(0);
  result.ok = true;
  return result;
}

function printResult(r: ShareCheckResult, io: CliIO): void {
  if (!r.ok) {
    const p = paint(useColor(io, "stderr"));
    io.stderr.write(`${p.red("FAIL")} ${r.problem}\n`);
    return;
  }
  const p = paint(useColor(io));
  const who = r.operator ? `${r.operator}'s ` : "";
  if (r.kind === "root-token") {
    io.stdout.write(`${p.green("OK")} ${r.file}: the root token opens with your identity and matches ${r.manifest}\n`);
    return;
  }
  const index = r.shareIndex === null ? "single-share root key" : `index ${r.shareIndex}`;
  const against = r.manifest ? `matches ${r.manifest}` : "no manifest found: only decryption and form were checked";
  io.stdout.write(`${p.green("OK")} ${r.file}: ${who}share (${index}) opens with your identity; ${against}\n`);
}
