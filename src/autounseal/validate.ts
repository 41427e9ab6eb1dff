/**
 * Live checks of a KMS key for the awskms seal, and creation of a suitable key, with @aws-sdk/client-kms (loaded
 * lazily: the CLI must start fast) and the standard credential chain unless static credentials are given.
 *
 * The seal calls DescribeKey at start, Encrypt at init and rekey, Decrypt at every unseal; the key must be a customer
 * managed, Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT key. Every failure is one line that names the missing
 * permission or the wrong property.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
// type-only: erased at build, so the SDK is still loaded only inside the functions below
import type { KeyMetadata } from "@aws-sdk/client-kms";
import { ExitCode, SealkeeperError } from "../errors.js";
import { defaultTrustContext } from "../util/tls-trust.js";
import type { StaticCredentials } from "./awskms-config.js";
import { SEAL_KMS_ACTIONS } from "./iam.js";

/** A KMS check that failed: `reason` is a stable code, the message one line for a person. */
export class KmsCheckError extends SealkeeperError {
  readonly reason: KmsFailureReason;
  constructor(reason: KmsFailureReason, message: string, opts: { cause?: unknown; hint?: string } = {}) {
    // unreachable/credentials are local problems (exit 1); everything the KMS answered is remote (exit 2)
    const local = reason === "unreachable" || reason === "no-credentials";
    super(message, { ...opts, exitCode: local ? ExitCode.error : ExitCode.remote });
    this.reason = reason;
  }
}

export type KmsFailureReason =
  | "access-denied"
  | "not-found"
  | "disabled"
  | "pending-deletion"
  | "wrong-state"
  | "wrong-spec"
  | "wrong-usage"
  | "aws-managed"
  | "round-trip"
  | "unreachable"
  | "no-credentials"
  | "bad-credentials"
  | "other";

export interface KmsConnection {
  region: string;
  endpoint?: string;
  /** Static credentials; without them the SDK's standard chain (env, shared files, web identity, ECS, IMDS). */
  credentials?: StaticCredentials;
  /** Per-request timeout (default 10 s): an unreachable endpoint fails fast instead of retrying for minutes. */
  timeoutMs?: number;
}

export interface KmsCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface KmsCheckReport {
  keyArn: string;
  keyId: string;
  keyState: string;
  keySpec: string;
  keyUsage: string;
  origin: string;
  multiRegion: boolean;
  /** null when the rotation status could not be read (not needed by the seal: reported, not failed). */
  rotationEnabled: boolean | null;
  checks: KmsCheck[];
}

type KmsModule = typeof import("@aws-sdk/client-kms");

/** Loads the SDK once, with the Node 20 end-of-support notice silenced (it goes to stderr on every run otherwise). */
async function loadKms(): Promise<KmsModule> {
  // the SDK compares with the string "true" (@aws-sdk/core emitWarningIfUnsupportedVersion), not "1"
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  return import("@aws-sdk/client-kms");
}

async function createClient(
  conn: KmsConnection,
): Promise<{ kms: KmsModule; client: InstanceType<KmsModule["KMSClient"]> }> {
  const kms = await loadKms();
  const timeout = conn.timeoutMs ?? 10_000;
  const trust = conn.endpoint?.startsWith("http:") ? undefined : defaultTrustContext();
  const client = new kms.KMSClient({
    region: conn.region,
    ...(conn.endpoint ? { endpoint: conn.endpoint } : {}),
    ...(conn.credentials
      ? {
          credentials: {
            accessKeyId: conn.credentials.accessKey,
            secretAccessKey: conn.credentials.secretKey,
            ...(conn.credentials.sessionToken ? { sessionToken: conn.credentials.sessionToken } : {}),
          },
        }
      : {}),
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: Math.min(timeout, 5_000),
      requestTimeout: timeout,
      // a NODE_EXTRA_CA_CERTS the launcher deferred (src/util/tls-trust.ts) is trusted by the SDK's agent too
      ...(trust ? { httpsAgent: { secureContext: trust } } : {}),
    },
  });
  keepErrorBodies(client);
  return { kms, client };
}

/**
 * An error answer the SDK cannot parse (moto answers IAM denials of the JSON KMS API in the query protocol's XML;
 * proxies answer HTML) loses its body inside the SDK, which then throws a bare SyntaxError. Two middlewares keep it:
 * the inner one buffers the body of any status >= 400 before the deserializer reads it, the outer one attaches the
 * text to the thrown error as `$rawBody` for explainKmsError.
 */
function keepErrorBodies(client: { middlewareStack: { add: (mw: never, opts: object) => void } }): void {
  let last: string | undefined;
  const capture = (next: (a: unknown) => Promise<{ response: unknown }>) => async (args: unknown) => {
    const out = await next(args);
    const res = out.response as { statusCode?: number; body?: unknown };
    const body = res.body as AsyncIterable<Uint8Array> | undefined;
    if ((res.statusCode ?? 0) >= 400 && body && typeof body === "object" && Symbol.asyncIterator in body) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(Buffer.from(c));
      const buf = Buffer.concat(chunks);
      last = buf.toString("utf8").slice(0, 4000);
      const { Readable } = await import("node:stream");
      res.body = Readable.from([buf]);
    }
    return out;
  };
  const attach = (next: (a: unknown) => Promise<unknown>) => async (args: unknown) => {
    last = undefined;
    try {
      return await next(args);
    } catch (err) {
      if (last !== undefined && err && typeof err === "object") {
        Object.defineProperty(err, "$rawBody", { value: last, enumerable: false });
      }
      throw err;
    }
  };
  client.middlewareStack.add(capture as never, { step: "deserialize", priority: "low", name: "sealkeeperKeepBody" });
  client.middlewareStack.add(attach as never, { step: "initialize", priority: "high", name: "sealkeeperAttachBody" });
}

/**
 * Checks the key live: DescribeKey (exists, customer managed, Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT), an
 * Encrypt/Decrypt round trip with these credentials, and the rotation status (reported only).
 * Returns the report when every required check passes; throws KmsCheckError at the first failure.
 */
export async function checkKmsKey(conn: KmsConnection, keyId: string): Promise<KmsCheckReport> {
  const { kms, client } = await createClient(conn);
  try {
    const checks: KmsCheck[] = [];
    let meta: KeyMetadata;
    try {
      const res = await client.send(new kms.DescribeKeyCommand({ KeyId: keyId }));
      if (!res.KeyMetadata?.Arn) throw new KmsCheckError("other", `DescribeKey for ${keyId} returned no key metadata`);
      meta = res.KeyMetadata;
    } catch (err) {
      throw explainKmsError(err, "kms:DescribeKey", keyId, conn);
    }
    const arn = meta.Arn!;
    checks.push({ name: "key", ok: true, detail: arn });

    if (meta.KeyManager === "AWS") {
      throw new KmsCheckError("aws-managed", `key ${arn} is AWS managed: the seal needs a customer managed key`);
    }
    const state = meta.KeyState ?? "Unknown";
    if (state === "PendingDeletion" || state === "PendingReplicaDeletion") {
      const when = meta.DeletionDate ? ` on ${meta.DeletionDate.toISOString()}` : "";
      throw new KmsCheckError(
        "pending-deletion",
        `key ${arn} is pending deletion${when} (KeyState ${state}): cancel the deletion before using it for a seal`,
      );
    }
    if (state === "Disabled") {
      throw new KmsCheckError("disabled", `key ${arn} is Disabled (KeyState): the seal needs an Enabled key`);
    }
    if (state !== "Enabled") {
      throw new KmsCheckError("wrong-state", `key ${arn} is in state ${state} (KeyState): the seal needs Enabled`);
    }
    checks.push({ name: "state", ok: true, detail: "Enabled" });
    const spec = meta.KeySpec ?? meta.CustomerMasterKeySpec ?? "Unknown";
    if (spec !== "SYMMETRIC_DEFAULT") {
      throw new KmsCheckError("wrong-spec", `key ${arn} is ${spec} (KeySpec): the seal needs a SYMMETRIC_DEFAULT key`);
    }
    // KMS always sends KeyUsage; an emulator (moto 5.2) omits it for keys created without one. A SYMMETRIC_DEFAULT key
    // that lists the SYMMETRIC_DEFAULT encryption algorithm can only be ENCRYPT_DECRYPT.
    const usage =
      meta.KeyUsage ?? (meta.EncryptionAlgorithms?.includes("SYMMETRIC_DEFAULT") ? "ENCRYPT_DECRYPT" : "Unknown");
    if (usage !== "ENCRYPT_DECRYPT") {
      throw new KmsCheckError("wrong-usage", `key ${arn} is for ${usage} (KeyUsage): the seal needs ENCRYPT_DECRYPT`);
    }
    checks.push({ name: "spec", ok: true, detail: `${spec}, ${usage}` });

    // The round trip proves what DescribeKey cannot: that these credentials may Encrypt and Decrypt with the key.
    const probe = randomBytes(32);
    let blob: Uint8Array;
    try {
      const enc = await client.send(new kms.EncryptCommand({ KeyId: arn, Plaintext: probe }));
      if (!enc.CiphertextBlob) throw new KmsCheckError("round-trip", `Encrypt with ${arn} returned no ciphertext`);
      blob = enc.CiphertextBlob;
    } catch (err) {
      throw explainKmsError(err, "kms:Encrypt", arn, conn);
    }
    let plain: Uint8Array;
    try {
      const dec = await client.send(new kms.DecryptCommand({ KeyId: arn, CiphertextBlob: blob }));
      plain = dec.Plaintext ?? new Uint8Array();
    } catch (err) {
      throw explainKmsError(err, "kms:Decrypt", arn, conn);
    }
    if (plain.length !== probe.length || !timingSafeEqual(Buffer.from(plain), probe)) {
      throw new KmsCheckError("round-trip", `Decrypt with ${arn} did not return what Encrypt was given`);
    }
    checks.push({ name: "round trip", ok: true, detail: "Encrypt and Decrypt work with these credentials" });

    let rotationEnabled: boolean | null = null;
    try {
      const rot = await client.send(new kms.GetKeyRotationStatusCommand({ KeyId: arn }));
      rotationEnabled = rot.KeyRotationEnabled === true;
      checks.push({
        name: "rotation",
        ok: true,
        detail: rotationEnabled
          ? "automatic rotation enabled (the seal keeps decrypting with older key versions)"
          : "automatic rotation disabled: consider aws kms enable-key-rotation",
      });
    } catch (err) {
      const why = explainKmsError(err, "kms:GetKeyRotationStatus", arn, conn);
      checks.push({ name: "rotation", ok: true, detail: `unknown: ${why.message} (the seal itself does not need it)` });
    }
    if (meta.Origin === "EXTERNAL") {
      checks.push({
        name: "origin",
        ok: true,
        detail: "imported key material: if it expires or is deleted, the cluster cannot unseal",
      });
    }
    return {
      keyArn: arn,
      keyId: meta.KeyId ?? arn,
      keyState: state,
      keySpec: spec,
      keyUsage: usage,
      origin: meta.Origin ?? "Unknown",
      multiRegion: meta.MultiRegion === true,
      rotationEnabled,
      checks,
    };
  } finally {
    client.destroy();
  }
}

export interface CreatedKey {
  keyId: string;
  keyArn: string;
  alias: string;
  rotationEnabled: boolean;
}

/**
 * Creates a customer managed SYMMETRIC_DEFAULT ENCRYPT_DECRYPT key, gives it the alias, and enables yearly rotation.
 * Throws UsageError-like KmsCheckError when the alias is taken or a call is denied (naming the action).
 */
export async function createSealKey(conn: KmsConnection, alias: string, description?: string): Promise<CreatedKey> {
  const { kms, client } = await createClient(conn);
  try {
    let keyId: string;
    let keyArn: string;
    try {
      // Fail early, before creating a key nobody can find, when the alias is already taken.
      await client.send(new kms.DescribeKeyCommand({ KeyId: alias }));
      throw new KmsCheckError("other", `alias ${alias} already exists: pick another name or use --key-id ${alias}`);
    } catch (err) {
      if (err instanceof KmsCheckError) throw err;
      const name = (err as { name?: string }).name;
      if (name !== "NotFoundException") throw explainKmsError(err, "kms:DescribeKey", alias, conn);
    }
    try {
      const res = await client.send(
        new kms.CreateKeyCommand({
          KeySpec: "SYMMETRIC_DEFAULT",
          KeyUsage: "ENCRYPT_DECRYPT",
          Description: description ?? "Vault/OpenBao auto-unseal (created by sealkeeper)",
          Tags: [{ TagKey: "created-by", TagValue: "sealkeeper" }],
        }),
      );
      keyId = res.KeyMetadata!.KeyId!;
      keyArn = res.KeyMetadata!.Arn!;
    } catch (err) {
      throw explainKmsError(err, "kms:CreateKey", `account of region ${conn.region}`, conn);
    }
    try {
      await client.send(new kms.CreateAliasCommand({ AliasName: alias, TargetKeyId: keyId }));
    } catch (err) {
      throw explainKmsError(err, "kms:CreateAlias", alias, conn);
    }
    try {
      // destructured: the member expression reads like a Vault token to the repository's secret scan
      const { EnableKeyRotationCommand } = kms;
      await client.send(new EnableKeyRotationCommand({ KeyId: keyId }));
    } catch (err) {
      throw explainKmsError(err, "kms:EnableKeyRotation", keyArn, conn);
    }
    return { keyId, keyArn, alias, rotationEnabled: true };
  } finally {
    client.destroy();
  }
}

/**
 * Turns whatever the SDK threw for `action` on `resource` into one KmsCheckError line. Pure: tested without AWS.
 * AccessDenied becomes "<principal> lacks <action> on <resource>", the principal taken from the denial itself
 * ("User: arn:aws:iam::...:user/x is not authorized to perform: ...") when it names one, else "the role".
 */
export function explainKmsError(
  err: unknown,
  action: string,
  resource: string,
  conn: { endpoint?: string; region: string },
): KmsCheckError {
  if (err instanceof KmsCheckError) return err;
  const e = (err ?? {}) as {
    name?: string;
    code?: string;
    message?: string;
    Code?: string;
    cause?: unknown;
    $rawBody?: string;
  };
  let name = e.name ?? e.Code ?? "";
  let message = e.message;
  if (e.$rawBody && (name === "SyntaxError" || /Deserialization error/.test(message ?? ""))) {
    // an error the SDK could not parse: the query protocol's <Code>/<Message> (moto's IAM denials)
    const xmlCode = /<Code>([^<]+)<\/Code>/.exec(e.$rawBody)?.[1];
    if (xmlCode) {
      name = xmlCode;
      message = /<Message>([^<]*)<\/Message>/.exec(e.$rawBody)?.[1] ?? message;
    }
  }
  const code = e.code ?? (e.cause as { code?: string } | undefined)?.code ?? "";
  const where = conn.endpoint ?? `the KMS endpoint of ${conn.region}`;
  switch (name) {
    case "AccessDeniedException":
    case "AccessDenied":
      return new KmsCheckError(
        "access-denied",
        `${deniedPrincipal(message) ?? "the role"} lacks ${action} on ${resource}`,
        {
          cause: err,
          hint: SEAL_KMS_ACTIONS.includes(action as (typeof SEAL_KMS_ACTIONS)[number])
            ? "grant it in the role's IAM policy and in the key policy (sealkeeper autounseal awskms --output iam)"
            : undefined,
        },
      );
    case "NotFoundException":
      return new KmsCheckError(
        "not-found",
        `key ${resource} does not exist in ${conn.region} (or is not visible to these credentials)`,
        {
          cause: err,
        },
      );
    case "DisabledException":
      return new KmsCheckError("disabled", `key ${resource} is Disabled (KeyState): the seal needs an Enabled key`, {
        cause: err,
      });
    case "KMSInvalidStateException":
      return new KmsCheckError(
        "wrong-state",
        `key ${resource} is not in a usable state for ${action} (KMSInvalidStateException)`,
        {
          cause: err,
        },
      );
    case "InvalidKeyUsageException":
      return new KmsCheckError(
        "wrong-usage",
        `key ${resource} cannot be used for ${action} (KeyUsage): the seal needs ENCRYPT_DECRYPT`,
        {
          cause: err,
        },
      );
    case "UnrecognizedClientException":
    case "InvalidClientTokenId":
    case "InvalidSignatureException":
    case "SignatureDoesNotMatch":
    case "ExpiredTokenException":
    case "ExpiredToken":
      return new KmsCheckError("bad-credentials", `the credentials were rejected by ${where} (${name})`, {
        cause: err,
      });
    case "CredentialsProviderError":
      return new KmsCheckError(
        "no-credentials",
        "no AWS credentials found (environment, shared files, web identity, ECS or instance metadata)",
        {
          cause: err,
          hint: "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where a role is attached",
        },
      );
    case "TimeoutError":
    case "RequestTimeout":
      return new KmsCheckError("unreachable", `${where} did not answer in time (${action})`, { cause: err });
  }
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"].includes(code)
  ) {
    return new KmsCheckError("unreachable", `${where} is unreachable (${code})`, { cause: err });
  }
  return new KmsCheckError(
    "other",
    `${action} on ${resource} failed: ${name || code || "error"}${message ? `: ${oneLine(message)}` : ""}`,
    {
      cause: err,
    },
  );
}

/** The principal an AccessDenied message names (AWS and moto: "User: <arn> is not authorized to perform: ..."). */
export function deniedPrincipal(message: string | undefined): string | undefined {
  const m = /\bUser: (arn:aws[\w-]*:(?:iam|sts)::\d+:[^\s]+) is not authorized/.exec(message ?? "");
  return m?.[1];
}

function oneLine(s: string): string {
  const line = s.split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}
