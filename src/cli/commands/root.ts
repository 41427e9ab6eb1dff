import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { wipe } from "../../util/wipe.js";
import { ExitWith } from "../exit.js";
import type { CliIO } from "../io.js";
import { addConnectionOptions, clientFromOptions, type RawConnectionOpts } from "../options.js";
import { resolveFormat, writeJson } from "../output.js";

/**
 * The `root` command group, created once: `root revoke` lives here, and `root generate` (break-glass) joins it from
 * its own file by calling this too.
 */
export function rootCommandGroup(program: Command): Command {
  return (
    program.commands.find((c) => c.name() === "root") ??
    program.command("root").description("root token lifecycle: revoke it after bootstrap, regenerate it by quorum")
  );
}

interface RevokeOpts extends RawConnectionOpts {
  rootTokenFile?: string;
  identity?: string;
  passphraseFile?: string;
  yes?: boolean;
  format?: string;
}

export function registerRoot(program: Command, io: CliIO): void {
  const revoke = rootCommandGroup(program)
    .command("revoke")
    .description("revoke the root token (from BAO_TOKEN/VAULT_TOKEN or a sealed root-token file) and prove it is gone");
  addConnectionOptions(revoke);
  revoke
    .option("--root-token-file <file>", "the sealed root-token file written by init (pgp or age)")
    .option("--identity <file>", "private key or age identity that opens --root-token-file")
    .option("--passphrase-file <file>", "file holding the identity's passphrase (first line)")
    .option("--yes", "revoke without asking: required, as nothing undoes this")
    .option("--format <format>", "output format: table or json (VAULT_FORMAT)")
    .action(async (opts: RevokeOpts) => {
      const format = resolveFormat(opts.format, io);
      const client = await clientFromOptions(opts, io);
      try {
        // the root token is key material: refused over plain HTTP or unverified TLS before it is even decrypted
        client.assertSafeForSecrets();
        if (opts.rootTokenFile || opts.identity) {
          if (!opts.rootTokenFile || !opts.identity) {
            throw new UsageError("--root-token-file and --identity go together");
          }
          client.setToken(await openRootTokenFile(opts, io));
        }
        if (!client.hasToken()) {
          throw new UsageError("no token: set VAULT_TOKEN/BAO_TOKEN, or give --root-token-file with --identity");
        }
        const { assessRootRevoke, revokeRootToken } = await import("../../bootstrap/revoke-root.js");
        const { info, warnings } = await assessRootRevoke(client);
        for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
        if (!opts.yes) {
          io.stderr.write(`root token (accessor ${info.accessor}) would be revoked; run again with --yes to do it\n`);
          throw new ExitWith(1);
        }
        const result = await revokeRootToken(client);
        if (format === "json") writeJson(io, { revoked: true, ...result });
        else {
          io.stdout.write(
            `root token revoked (accessor ${result.accessor}); lookup-self now answers ${result.lookupStatusAfter}: it is gone\n`,
          );
        }
      } finally {
        await client.close();
      }
    });
}

async function openRootTokenFile(opts: RevokeOpts, io: CliIO): Promise<string> {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(resolve(io.cwd, path));
    } catch (err) {
      throw new UsageError(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
  };
  const sealed = read(opts.rootTokenFile!, "root-token file");
  const identity = read(opts.identity!, "identity file");
  const passphraseBytes = opts.passphraseFile ? read(opts.passphraseFile, "passphrase file") : undefined;
  const passphrase = passphraseBytes?.toString("utf8").split(/\r?\n/)[0];
  wipe(passphraseBytes);
  const { openSealedShare } = await import("../../ciphers/registry.js");
  let plain: Uint8Array | null;
  try {
    plain = await openSealedShare(sealed, identity, passphrase);
  } finally {
    wipe(identity);
  }
  if (plain === null) throw new UsageError(`${opts.rootTokenFile} is not addressed to the identity ${opts.identity}`);
  const token = Buffer.from(plain).toString("utf8").trim();
  wipe(plain);
  if (token === "") throw new UsageError(`${opts.rootTokenFile} holds an empty token`);
  return token;
}
