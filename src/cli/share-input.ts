import type { Command } from "commander";
import { UsageError } from "../errors.js";
import type { CliIO } from "./io.js";

/** The flags by which every quorum ceremony (unseal, root generate, rekey, migrate) takes shares. */
export function addShareInputOptions(cmd: Command): Command {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  return cmd
    .option(
      "--share-file <file>",
      "a share file: plaintext (hex/base64) or sealed to an operator; repeatable; - reads shares from stdin too",
      collect,
    )
    .option("--identity <file>", "PGP private key or age identity that opens sealed share files; repeatable", collect)
    .option("--passphrase-file <file>", "passphrase of a protected identity (first line)")
    .option("--non-interactive", "never prompt; read shares only from --share-file and stdin");
}

export interface ShareInputOptions {
  shareFile?: string[];
  identity?: string[];
  passphraseFile?: string;
  nonInteractive?: boolean;
}

/**
 * Builds the share source: interactive prompts when stdin is a terminal and no share file is given (unless
 * --non-interactive), else the files then stdin's lines.
 */
export async function shareSourceFromOptions(opts: ShareInputOptions, io: CliIO, readStdin: () => Promise<Buffer>) {
  const { interactiveShareSource, readIdentities, readPassphraseFile, scriptedShareSource } = await import(
    "../ceremony/share-source.js"
  );
  const files = opts.shareFile ?? [];
  const interactive = io.stdinIsTTY && !opts.nonInteractive && files.length === 0;
  if (interactive) {
    const { ttyPrompter } = await import("../prompt/prompter.js");
    return interactiveShareSource(ttyPrompter({ input: io.stdin, output: io.stderr }), {
      cwd: io.cwd,
      ...(io.env.HOME ? { home: io.env.HOME } : {}),
    });
  }
  const identities = readIdentities(opts.identity ?? [], io.cwd);
  const passphrase = opts.passphraseFile ? readPassphraseFile(opts.passphraseFile, io.cwd) : undefined;
  // stdin is read only when no share file is given (or `--share-file -` asks for it): a stdin that never closes
  // (ssh without -n, some CI runners) must not hang a run whose shares are all in files
  const wantStdin = files.length === 0 || files.includes("-");
  const stdinText = io.stdinIsTTY || !wantStdin ? "" : (await readStdin()).toString("utf8");
  if (files.length === 0 && stdinText.trim() === "") {
    throw new UsageError(
      "no shares given: use --share-file, pipe shares on stdin (one per line), or run at a terminal",
    );
  }
  return scriptedShareSource({ files: files.filter((f) => f !== "-"), stdinText, identities, passphrase, cwd: io.cwd });
}
