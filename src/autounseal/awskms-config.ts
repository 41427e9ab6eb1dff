/**
 * The `seal "awskms"` stanza: the options it takes, their validation, and its HCL rendering.
 *
 * Keys follow what the server parses (Vault 1.21 internalshared/configutil + go-kms-wrapping awskms v2.0.11, and
 * OpenBao 2.6's copy of the same wrapper): region, kms_key_id, endpoint, access_key, secret_key, session_token,
 * role_arn, role_session_name, web_identity_token_file, shared_creds_filename, shared_creds_profile.
 * Pure functions: no I/O, no AWS SDK.
 */
import { UsageError } from "../errors.js";

/** Which server the artifacts are for. They differ for OpenBao 2.7+, where awskms is an external KMS plugin. */
export type SealTarget = "vault" | "openbao";

/** Static credentials: only when the user explicitly asks for them (they end up in a config file). */
export interface StaticCredentials {
  accessKey: string;
  secretKey: string;
  sessionToken?: string;
}

export interface AwsKmsSealOptions {
  region: string;
  /** Key id (UUID or mrk-...), key ARN, alias name (alias/...), or alias ARN. */
  keyId: string;
  /** Custom KMS endpoint (VPC endpoint, FIPS endpoint, or an emulator). */
  endpoint?: string;
  /** Role to assume (IRSA sets AWS_ROLE_ARN itself; this is for an explicit role in the stanza). */
  roleArn?: string;
  /** Put `role_arn` into the stanza (not needed for IRSA, where the pod's env carries it). */
  roleArnInStanza?: boolean;
  credentials?: StaticCredentials;
  target: SealTarget;
  /**
   * OpenBao 2.7+ only: the external KMS plugin to register (`plugin "kms" "awskms"`). Without it an OpenBao stanza
   * carries a comment telling that 2.7+ needs the block.
   */
  openbaoPlugin?: { command: string; sha256: string };
}

/** What kind of identifier --key-id is; IAM and validation treat them differently. */
export type KeyIdKind = "key-id" | "key-arn" | "alias-name" | "alias-arn";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MRK = /^mrk-[0-9a-f]{32}$/i;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$/;
const ARN = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):kms:([a-z0-9-]+):(\d{12}):(key|alias)\/(.+)$/;
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/** Classifies a key identifier, or returns null when it is none of the four forms KMS accepts. */
export function classifyKeyId(keyId: string): KeyIdKind | null {
  if (UUID.test(keyId) || MRK.test(keyId)) return "key-id";
  const arn = ARN.exec(keyId);
  if (arn) {
    const [, , , , kind, rest] = arn;
    if (kind === "key") return UUID.test(rest!) || MRK.test(rest!) ? "key-arn" : null;
    return ALIAS_NAME.test(`alias/${rest}`) ? "alias-arn" : null;
  }
  if (ALIAS_NAME.test(keyId)) return keyId.startsWith("alias/aws/") ? null : "alias-name";
  return null;
}

/** Parts of a KMS ARN, or null when the string is not one. */
export function parseKmsArn(
  arn: string,
): { partition: string; region: string; account: string; kind: "key" | "alias"; name: string } | null {
  const m = ARN.exec(arn);
  if (!m) return null;
  return { partition: m[1]!, region: m[2]!, account: m[3]!, kind: m[4] as "key" | "alias", name: m[5]! };
}

/**
 * Checks the options and throws UsageError naming the first bad value. Returns nothing: the options are used as given.
 */
export function checkAwsKmsOptions(opts: AwsKmsSealOptions): void {
  if (!REGION.test(opts.region)) {
    throw new UsageError(`region ${JSON.stringify(opts.region)} is not an AWS region name (e.g. eu-west-1)`);
  }
  const kind = classifyKeyId(opts.keyId);
  if (kind === null) {
    const hint = opts.keyId.startsWith("alias/aws/")
      ? " (AWS managed keys cannot be used by a seal: create a customer managed key)"
      : " (expected a key id, key ARN, alias/NAME or alias ARN)";
    throw new UsageError(`key id ${JSON.stringify(opts.keyId)} is not a KMS key identifier${hint}`);
  }
  if (kind === "key-arn" || kind === "alias-arn") {
    const arnRegion = parseKmsArn(opts.keyId)!.region;
    if (arnRegion !== opts.region) {
      throw new UsageError(`key ARN is in region ${arnRegion} but --region is ${opts.region}`);
    }
  }
  if (opts.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(opts.endpoint);
    } catch {
      throw new UsageError(
        `endpoint ${JSON.stringify(opts.endpoint)} is not a URL (e.g. https://kms.eu-west-1.amazonaws.com)`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new UsageError(`endpoint ${JSON.stringify(opts.endpoint)} must be http:// or https://`);
    }
  }
  if (opts.roleArn !== undefined && !ROLE_ARN.test(opts.roleArn)) {
    throw new UsageError(
      `role ARN ${JSON.stringify(opts.roleArn)} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)`,
    );
  }
  if (opts.openbaoPlugin && opts.target !== "openbao") {
    throw new UsageError("the external KMS plugin block is for --target openbao only");
  }
  if (opts.openbaoPlugin && !/^[0-9a-f]{64}$/i.test(opts.openbaoPlugin.sha256)) {
    throw new UsageError("plugin sha256 must be 64 hex digits (sha256sum of the plugin binary)");
  }
}

/**
 * Quotes a string as an HCL string literal (the escapes HCL1 and HCL2 both read). Throws UsageError for `${` and
 * `%{`: HCL1 and HCL2 disagree on how to escape them, and no valid seal value contains them.
 */
export function quoteHcl(value: string): string {
  if (/[$%]\{/.test(value)) throw new UsageError("a seal value must not contain ${ or %{ (template syntax in HCL)");
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new UsageError("a seal value must not contain control characters");
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** True when the stanza would hold secret values (static credentials): write it 0600 and say so. */
export function stanzaHoldsSecrets(opts: AwsKmsSealOptions): boolean {
  return opts.credentials !== undefined;
}

/**
 * Renders the `seal "awskms"` stanza (and, for OpenBao 2.7+, the `plugin "kms" "awskms"` block before it).
 * Contains no secret unless static credentials were given.
 */
export function renderSealStanza(opts: AwsKmsSealOptions, indent = ""): string {
  checkAwsKmsOptions(opts);
  const lines: string[] = [];
  const attrs: [string, string][] = [
    ["region", opts.region],
    ["kms_key_id", opts.keyId],
  ];
  if (opts.endpoint) attrs.push(["endpoint", opts.endpoint]);
  if (opts.roleArn && opts.roleArnInStanza) attrs.push(["role_arn", opts.roleArn]);
  if (opts.credentials) {
    attrs.push(["access_key", opts.credentials.accessKey], ["secret_key", opts.credentials.secretKey]);
    if (opts.credentials.sessionToken) attrs.push(["session_token", opts.credentials.sessionToken]);
  }
  if (opts.target === "openbao") {
    if (opts.openbaoPlugin) {
      lines.push(
        `# OpenBao 2.7+: awskms is an external KMS plugin; its binary must be in plugin_directory`,
        `plugin "kms" "awskms" {`,
        `  command   = ${quoteHcl(opts.openbaoPlugin.command)}`,
        `  sha256sum = ${quoteHcl(opts.openbaoPlugin.sha256.toLowerCase())}`,
        `}`,
        ``,
      );
    } else {
      lines.push(
        `# OpenBao 2.6 has awskms built in. OpenBao 2.7+ moved it to an external KMS plugin: also declare`,
        `#   plugin "kms" "awskms" { command = "openbao-plugin-kms-aws"  sha256sum = "<sha256 of the binary>" }`,
        `# (sealkeeper autounseal awskms --target openbao --plugin-sha256 HEX writes it for you)`,
      );
    }
  }
  lines.push(
    `# Environment variables on the server override these values (see docs/auto-unseal.md):`,
    opts.target === "vault"
      ? `# AWSKMS_WRAPPER_KEY_ID, VAULT_AWSKMS_SEAL_KEY_ID, AWS_KMS_ENDPOINT, AWS_REGION, AWS_DEFAULT_REGION, VAULT_SEAL_TYPE`
      : `# AWSKMS_WRAPPER_KEY_ID, VAULT_AWSKMS_SEAL_KEY_ID, AWSKMS_ENDPOINT, AWS_KMS_ENDPOINT, BAO_SEAL_TYPE, VAULT_SEAL_TYPE`,
  );
  lines.push(`seal "awskms" {`);
  const width = Math.max(...attrs.map(([k]) => k.length));
  for (const [k, v] of attrs) lines.push(`  ${k.padEnd(width)} = ${quoteHcl(v)}`);
  lines.push(`}`);
  return `${lines.map((l) => (l === "" ? l : indent + l)).join("\n")}\n`;
}

/** The environment variables that override the file's seal settings on the server, and what each overrides. */
export const SEAL_OVERRIDE_ENV: ReadonlyArray<{ name: string; overrides: string; servers: string }> = [
  { name: "AWSKMS_WRAPPER_KEY_ID", overrides: "kms_key_id", servers: "vault, openbao" },
  { name: "VAULT_AWSKMS_SEAL_KEY_ID", overrides: "kms_key_id", servers: "vault, openbao" },
  { name: "AWSKMS_ENDPOINT", overrides: "endpoint", servers: "openbao" },
  { name: "AWS_KMS_ENDPOINT", overrides: "endpoint", servers: "vault, openbao" },
  { name: "VAULT_SEAL_TYPE", overrides: "the seal type", servers: "vault, openbao" },
  { name: "BAO_SEAL_TYPE", overrides: "the seal type", servers: "openbao" },
];

/**
 * The set override variables in `env`, one warning line each (empty when none is set). Values are not printed: a key
 * id is not secret, but the line should be safe to paste anywhere.
 */
export function findSealOverrides(env: Record<string, string | undefined>, region?: string): string[] {
  const warnings = SEAL_OVERRIDE_ENV.filter((v) => (env[v.name] ?? "") !== "").map(
    (v) =>
      `${v.name} is set: on the server (${v.servers}) it overrides ${v.overrides} from the config file; ` +
      "unset it there or make it agree",
  );
  // Vault 1.21 also merges AWS_REGION / AWS_DEFAULT_REGION over the stanza's region (configutil.AWSKMSEnvVars):
  // harmless when they agree, a silent wrong-region key lookup when they do not.
  for (const name of ["AWS_REGION", "AWS_DEFAULT_REGION"]) {
    const value = env[name];
    if (region !== undefined && value && value !== region) {
      warnings.push(`${name}=${value} differs from --region ${region}: on Vault it overrides the stanza's region`);
    }
  }
  return warnings;
}
