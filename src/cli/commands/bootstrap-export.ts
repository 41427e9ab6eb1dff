import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import type { BootstrapSpec } from "../../bootstrap/spec.js";
import { UsageError } from "../../errors.js";
import type { CliIO } from "../io.js";
import { clientFromOptions } from "../options.js";
import type { ExportOpts } from "./bootstrap.js";

/**
 * `bootstrap export --self-init`: checks that self-initialization can serve (an auto-unseal seal in --server-config;
 * with -a, a live server that is not initialised and not Shamir-sealed), writes the verifier token file (0600, new,
 * never overwritten), then prints or writes the stanza. Nothing is written when a check refuses.
 */
export async function runSelfInitExport(opts: ExportOpts, io: CliIO, spec: BootstrapSpec): Promise<void> {
  if (!opts.selfInit) {
    throw new UsageError("bootstrap export needs --self-init (OpenBao's initialize stanza is the only export format)");
  }
  if (!opts.verifierTokenFile) {
    throw new UsageError("--verifier-token-file is required: it receives the ID of the token that proves the result", {
      hint: "e.g. --verifier-token-file ./verifier.token (created 0600; the server must be able to read it)",
    });
  }
  const self = await import("../../bootstrap/self-init.js");
  if (opts.serverConfig) {
    const path = resolve(io.cwd, opts.serverConfig);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read --server-config ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    self.checkServerConfigForSelfInit(text, path);
  }
  if (opts.address !== undefined) {
    const client = await clientFromOptions(opts, io);
    try {
      self.checkSealStatusForSelfInit(client.address, await client.sealStatus());
    } finally {
      await client.close();
    }
  }
  const tokenFile = resolve(io.cwd, opts.verifierTokenFile);
  const serverTokenFile = opts.serverVerifierTokenFile ?? tokenFile;
  // render first: a spec the stanza cannot express must fail before the token file exists
  const stanza = self.renderSelfInitStanza(spec, { verifierTokenFile: serverTokenFile, verifierTtl: opts.verifierTtl });
  const { ShareStore } = await import("../../store/share-store.js");
  // OpenBao refuses custom token IDs with a "." (and the hvs. and s. prefixes)
  const token = `sealkeeper-verify-${randomBytes(24).toString("hex")}`;
  await new ShareStore(dirname(tokenFile)).writeSecretFile(basename(tokenFile), token);
  io.stderr.write(`wrote the verifier token ID to ${tokenFile} (0600)\n`);
  if (opts.out) {
    const out = resolve(io.cwd, opts.out);
    await new ShareStore(dirname(out)).writeSecretFile(basename(out), stanza);
    io.stderr.write(`wrote the initialize stanza to ${out}: add it to the server's config before its first start\n`);
  } else {
    io.stdout.write(stanza);
  }
}
