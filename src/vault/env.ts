import { readFileSync } from "node:fs";
import { UsageError } from "../errors.js";
import { redactSecrets } from "../util/redact.js";

/** Where a VaultClient connects and how. Resolved once at the CLI's edge; the client never reads the environment. */
export interface ConnectionSettings {
  address: string;
  token: string | undefined;
  /**
   * Where the token came from, for messages and JSON: "flag", "BAO_TOKEN", "VAULT_TOKEN", "~/.vault-token", or
   * "VAULT_TOKEN (empty)" when the variable is set but empty (an unset CI secret: never a reason to fall back to
   * ~/.vault-token). Undefined: no token anywhere.
   */
  tokenSource?: string;
  namespace: string | undefined;
  tls: TlsSettings;
  /** Per-request timeout (connect + headers + body), milliseconds. */
  timeoutMs: number;
  /**
   * The user's explicit opt-in (`--allow-insecure-http`) to send tokens and key material over plain HTTP to a host
   * that is not loopback. Without it the client refuses every such request (VaultClient.request).
   */
  allowInsecureHttp?: boolean;
  /** The user's explicit opt-in (`--allow-unverified-tls`) to send key material over TLS that is not verified. */
  allowUnverifiedTls?: boolean;
}

export interface TlsSettings {
  caCert: string | undefined;
  caPath: string | undefined;
  clientCert: string | undefined;
  clientKey: string | undefined;
  serverName: string | undefined;
  skipVerify: boolean;
}

/** Flags given on the command line; every field optional, each wins over the environment. */
export interface ConnectionFlags {
  address?: string;
  token?: string;
  namespace?: string;
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  tlsServerName?: string;
  tlsSkipVerify?: boolean;
  timeout?: string;
  allowInsecureHttp?: boolean;
  allowUnverifiedTls?: boolean;
}

export type Env = Record<string, string | undefined>;

export const DEFAULT_ADDRESS = "https://127.0.0.1:8200";
export const DEFAULT_TIMEOUT_MS = 60_000;
/** The longest timeout a Node timer takes (2^31-1 ms, rounded down to whole seconds). */
export const MAX_TIMEOUT_MS = 2_147_483_000;

/**
 * Reads NAME the way OpenBao's CLI does: BAO_NAME when it is present (even if empty), else VAULT_NAME.
 * Returns undefined when neither is set or the value is empty.
 */
export function readEnv(env: Env, name: string): string | undefined {
  const bao = env[`BAO_${name}`];
  const value = bao !== undefined ? bao : env[`VAULT_${name}`];
  return value === undefined || value === "" ? undefined : value;
}

/** Which variable readEnv took the value from, for messages. */
export function envSourceName(env: Env, name: string): string {
  return env[`BAO_${name}`] !== undefined ? `BAO_${name}` : `VAULT_${name}`;
}

/**
 * Parses a boolean strictly, as Go's strconv.ParseBool does (the rule Vault applies to VAULT_SKIP_VERIFY):
 * 1 t T TRUE true True / 0 f F FALSE false False. Anything else is an error, never a silent default.
 */
export function parseBoolStrict(value: string, what: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new UsageError(`${what} must be a boolean (true/false/1/0), got "${redactSecrets(value)}"`);
}

/**
 * Parses a duration as Vault's CLI accepts it for VAULT_CLIENT_TIMEOUT: a number of seconds, or a Go-style duration
 * such as 500ms, 30s, 2m, 1h, 1m30s. Returns milliseconds.
 */
export function parseDurationMs(value: string, what: string): number {
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(trimmed); m !== null; m = re.exec(trimmed)) {
    const n = Number(m[1]);
    total += n * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const)[m[2] as "ms" | "s" | "m" | "h"];
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length) {
    throw new UsageError(`${what} must be a duration such as 30s, 2m or 1m30s, got "${redactSecrets(value)}"`);
  }
  return Math.round(total);
}

/** Resolves connection settings: flags first, then BAO_*, then VAULT_*, then Vault's defaults. */
export function resolveConnection(flags: ConnectionFlags, env: Env): ConnectionSettings {
  const skipRaw = readEnv(env, "SKIP_VERIFY");
  const skipVerify =
    flags.tlsSkipVerify ??
    (skipRaw === undefined ? false : parseBoolStrict(skipRaw, envSourceName(env, "SKIP_VERIFY")));
  const timeoutRaw = flags.timeout ?? readEnv(env, "CLIENT_TIMEOUT");
  const timeoutMs =
    timeoutRaw === undefined
      ? DEFAULT_TIMEOUT_MS
      : parseDurationMs(timeoutRaw, flags.timeout !== undefined ? "--timeout" : envSourceName(env, "CLIENT_TIMEOUT"));
  if (timeoutMs <= 0) throw new UsageError("timeout must be greater than zero");
  // Node timers take at most 2^31-1 ms (a longer setTimeout fires after 1 ms) and AbortSignal.timeout throws a
  // RangeError above 2^32-1: refuse here, with the variable's value, rather than fail oddly at the first request
  if (!(timeoutMs <= MAX_TIMEOUT_MS)) {
    throw new UsageError(
      `timeout must be at most ${MAX_TIMEOUT_MS / 1000}s (about 24 days), got "${redactSecrets(String(timeoutRaw))}"`,
    );
  }
  const { token, source: tokenSource } = resolveToken(flags, env);
  return {
    address: normaliseAddress(flags.address ?? readEnv(env, "ADDR") ?? DEFAULT_ADDRESS),
    token,
    tokenSource,
    namespace: flags.namespace ?? readEnv(env, "NAMESPACE"),
    timeoutMs,
    allowInsecureHttp: flags.allowInsecureHttp === true,
    allowUnverifiedTls: flags.allowUnverifiedTls === true,
    tls: {
      caCert: flags.caCert ?? readEnv(env, "CACERT"),
      caPath: flags.caPath ?? readEnv(env, "CAPATH"),
      clientCert: flags.clientCert ?? readEnv(env, "CLIENT_CERT"),
      clientKey: flags.clientKey ?? readEnv(env, "CLIENT_KEY"),
      serverName: flags.tlsServerName ?? readEnv(env, "TLS_SERVER_NAME"),
      skipVerify,
    },
  };
}

/**
 * The token and where it came from: the flag, then BAO_TOKEN, then VAULT_TOKEN, then ~/.vault-token (the vault/bao
 * CLIs' token helper file). A variable that is SET but empty is "no token": in a pipeline it is an unset secret, and
 * quietly using whatever token a login left in ~/.vault-token would act with someone else's rights.
 */
export function resolveToken(
  flags: Pick<ConnectionFlags, "token">,
  env: Env,
): { token: string | undefined; source: string | undefined } {
  if (flags.token !== undefined && flags.token !== "") return { token: flags.token, source: "flag" };
  const name = envSourceName(env, "TOKEN");
  const raw = env[name];
  if (raw !== undefined)
    return raw.trim() === "" ? { token: undefined, source: `${name} (empty)` } : { token: raw, source: name };
  const file = readTokenHelperFile(env);
  return file === undefined ? { token: undefined, source: undefined } : { token: file, source: "~/.vault-token" };
}

/** The "no token" message, true to what was found (an empty variable is named as such). */
export function missingTokenMessage(source: string | undefined): string {
  if (source?.endsWith("(empty)")) {
    const name = source.replace(/ \(empty\)$/, "");
    return `no token: ${name} is set but empty (an unset CI secret?); set it to a token, or unset it to use ~/.vault-token`;
  }
  return "no token: set VAULT_TOKEN or BAO_TOKEN (or log in so that ~/.vault-token exists)";
}

/** The vault/bao CLIs keep the last login token in ~/.vault-token; use it when no token is given, as they do. */
function readTokenHelperFile(env: Env): string | undefined {
  const home = env.HOME;
  if (!home) return undefined;
  try {
    const token = readFileSync(`${home}/.vault-token`, "utf8").trim();
    return token === "" ? undefined : token;
  } catch {
    return undefined;
  }
}

/**
 * Validates an address, strips trailing slashes and any userinfo (`https://user:pass@vault:8200`): Vault and OpenBao
 * take no credentials in the address, and the address is copied into the manifest, the transcript, pending records and
 * messages, where a password must not go.
 */
export function normaliseAddress(address: string): string {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new UsageError(`address "${redactSecrets(address)}" is not a URL (expected e.g. https://127.0.0.1:8200)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(`address "${redactSecrets(address)}" must start with http:// or https://`);
  }
  return stripUserinfo(address).replace(/\/+$/, "");
}

/** `scheme://user:pass@host...` -> `scheme://host...` (the authority ends at the first "/", "?" or "#"). */
function stripUserinfo(address: string): string {
  const start = address.indexOf("//") + 2;
  const rest = address.slice(start);
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const at = authority.lastIndexOf("@");
  return at === -1 ? address : address.slice(0, start) + rest.slice(at + 1);
}

/** True when the address names a loopback host (127.0.0.0/8, ::1, localhost). */
export function isLoopbackAddress(address: string): boolean {
  const host = new URL(address).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
