import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { looksSecretArgument } from "../util/redact.js";
import type { VaultClient } from "../vault/client.js";
import { type ConnectionFlags, type ConnectionSettings, readEnv, resolveConnection } from "../vault/env.js";
import type { CliIO } from "./io.js";

/** The connection flags every server-facing command takes. --address is repeatable where `multi` is set. */
export function addConnectionOptions(cmd: Command, opts: { multi?: boolean } = {}): Command {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  if (opts.multi) {
    cmd.option(
      "-a, --address <url>",
      "node address; repeat for every node of the cluster (default: BAO_ADDR/VAULT_ADDR)",
      collect,
    );
  } else {
    cmd.option("-a, --address <url>", "node address (default: BAO_ADDR/VAULT_ADDR, else https://127.0.0.1:8200)");
  }
  return cmd
    .option("--ca-cert <file>", "PEM CA certificate to verify the server (VAULT_CACERT)")
    .option("--ca-path <dir>", "directory of PEM CA certificates (VAULT_CAPATH)")
    .option("--client-cert <file>", "PEM client certificate for TLS authentication (VAULT_CLIENT_CERT)")
    .option("--client-key <file>", "PEM client key for TLS authentication (VAULT_CLIENT_KEY)")
    .option("--tls-server-name <name>", "name to expect in the server certificate (VAULT_TLS_SERVER_NAME)")
    .option("--tls-skip-verify", "do not verify the server certificate (insecure; VAULT_SKIP_VERIFY)")
    .option("--namespace <ns>", "namespace (VAULT_NAMESPACE)")
    .option("--timeout <duration>", "per-request timeout, e.g. 30s (VAULT_CLIENT_TIMEOUT; default 60s)")
    .option(
      "--allow-insecure-http",
      "allow tokens and key material over plain HTTP to a non-loopback host (anyone on the path reads them)",
    )
    .option(
      "--allow-unverified-tls",
      "with --tls-skip-verify: allow key material (shares, root tokens) to a non-loopback host anyway",
    );
}

export function addFormatOption(cmd: Command): Command {
  return cmd.option("--format <format>", "output format: table or json (VAULT_FORMAT)");
}

export interface RawConnectionOpts {
  address?: string | string[];
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  tlsServerName?: string;
  tlsSkipVerify?: boolean;
  namespace?: string;
  timeout?: string;
  allowInsecureHttp?: boolean;
  allowUnverifiedTls?: boolean;
}

/** One ConnectionSettings per --address (or the environment's single address). Token from the environment only. */
export function connectionsFromOptions(opts: RawConnectionOpts, io: CliIO): ConnectionSettings[] {
  const addresses =
    opts.address === undefined ? [undefined] : Array.isArray(opts.address) ? opts.address : [opts.address];
  const seen = new Set<string>();
  return addresses.map((address) => {
    const flags: ConnectionFlags = {
      address,
      caCert: opts.caCert,
      caPath: opts.caPath,
      clientCert: opts.clientCert,
      clientKey: opts.clientKey,
      tlsServerName: opts.tlsServerName,
      tlsSkipVerify: opts.tlsSkipVerify,
      namespace: opts.namespace,
      timeout: opts.timeout,
      allowInsecureHttp: opts.allowInsecureHttp,
      allowUnverifiedTls: opts.allowUnverifiedTls,
    };
    const settings = resolveConnection(flags, io.env);
    if (seen.has(settings.address)) throw new UsageError(`address ${settings.address} is given twice`);
    seen.add(settings.address);
    return settings;
  });
}

/**
 * One VaultClient per --address. Async because the HTTP client module is loaded only by commands that talk to a
 * server, so that `--help` and offline commands start fast.
 */
export async function clientsFromOptions(opts: RawConnectionOpts, io: CliIO): Promise<VaultClient[]> {
  const settings = connectionsFromOptions(opts, io);
  const unverified = settings.filter((s) => s.tls.skipVerify && s.address.startsWith("https:"));
  if (unverified.length > 0) {
    // every run, so that a VAULT_SKIP_VERIFY left in a shell profile does not go unnoticed
    io.stderr.write(
      `warning: TLS verification is off (--tls-skip-verify or VAULT_SKIP_VERIFY) for ${unverified.map((s) => s.address).join(", ")}: ` +
        "anyone on the network path can read and change what is sent, tokens included\n",
    );
  }
  const { VaultClient } = await import("../vault/client.js");
  return settings.map((s) => new VaultClient(s));
}

export async function clientFromOptions(opts: RawConnectionOpts, io: CliIO): Promise<VaultClient> {
  const [client] = await clientsFromOptions(opts, io);
  return client!;
}

/** Warns when a secret came in on the command line, where other users of the machine can read it (ps, /proc). */
export function warnSecretInArgv(io: CliIO, what: string): void {
  io.stderr.write(
    `warning: ${what} was given on the command line, where other users can read it (ps, /proc, shell history); ` +
      "prefer a file or stdin\n",
  );
}

/** A flag's or argument's placeholder that says it takes a path: <file>, <dir>, <path>. */
const PATH_PLACEHOLDER = /[<[](?:[a-z-]*-)?(?:file|dir|path)[\]>]/;

/**
 * Refuses, before the command runs, a path flag (or path argument) whose value looks like a share or a key (a share
 * pasted where its file was expected): the message names the flag, never the value, and warns that the value is now
 * in the shell history (issue 25). Such a value could never be read as a file anyway; repeating it in "cannot read
 * ... ENOENT" would print the secret.
 * @throws UsageError naming the flag.
 */
export function refuseSecretPaths(cmd: Command, io: CliIO): void {
  const opts = cmd.opts() as Record<string, unknown>;
  const given: [string, unknown][] = cmd.options
    .filter((o) => PATH_PLACEHOLDER.test(o.flags))
    .map((o) => [o.long ?? o.short ?? o.flags, opts[o.attributeName()]]);
  cmd.registeredArguments.forEach((a, i) => {
    if (/^(?:[a-z-]*-)?(?:file|dir|path)s?$/.test(a.name())) given.push([`<${a.name()}>`, cmd.processedArgs[i]]);
  });
  for (const [flag, value] of given) {
    const values = Array.isArray(value) ? value : [value];
    if (!values.some((v) => typeof v === "string" && looksSecretArgument(v))) continue;
    warnSecretInArgv(io, `a value that looks like a share or a key (given to ${flag})`);
    throw new UsageError(
      `${flag} takes a path, but was given what looks like a share or a key: it is not repeated here and was not used`,
      {
        hint:
          "it is now in your shell history: remove it (bash: history -d <n>, or edit ~/.bash_history; zsh: " +
          "~/.zsh_history); give the file's path instead (a share itself goes on stdin or at the prompt)",
      },
    );
  }
}

/** True when a token is available from the environment (BAO_TOKEN/VAULT_TOKEN). */
export function envHasToken(io: CliIO): boolean {
  return readEnv(io.env, "TOKEN") !== undefined;
}
