/**
 * Least-privilege IAM for the awskms seal: the server calls DescribeKey at start, Encrypt at init and rekey, and
 * Decrypt at every unseal, on one key, and nothing else. Pure functions: documents as objects.
 */
import { UsageError } from "../errors.js";
import { type AwsKmsSealOptions, classifyKeyId, parseKmsArn } from "./awskms-config.js";

/** The only actions the seal uses, in the order the server first needs them. */
export const SEAL_KMS_ACTIONS = ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"] as const;

export interface IamPolicyDocument {
  Version: "2012-10-17";
  Statement: Record<string, unknown>[];
}

/**
 * The identity policy for the role the server runs as.
 *
 * With a key ARN (or a key id plus `accountId`) the resource is that key's ARN alone. With an alias and no key ARN, a
 * policy cannot name the key, so it grants on `key/*` of the account under the condition kms:ResourceAliases = the
 * alias (AWS's documented way to scope by alias); pass the key ARN for the tightest form. Throws UsageError when the
 * account is unknown (alias name or key id without `accountId`).
 */
export function buildIamPolicy(seal: AwsKmsSealOptions, accountId?: string): IamPolicyDocument {
  const kind = classifyKeyId(seal.keyId);
  const partition = partitionFor(seal.region);
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) {
    throw new UsageError(`account id ${JSON.stringify(accountId)} must be 12 digits`);
  }
  const statement: Record<string, unknown> = {
    Sid: "SealkeeperAutoUnseal",
    Effect: "Allow",
    Action: [...SEAL_KMS_ACTIONS],
  };
  if (kind === "key-arn") {
    statement.Resource = seal.keyId;
  } else if (kind === "key-id") {
    if (!accountId) throw needAccount(seal.keyId);
    statement.Resource = `arn:${partition}:kms:${seal.region}:${accountId}:key/${seal.keyId}`;
  } else if (kind === "alias-arn" || kind === "alias-name") {
    const arn = kind === "alias-arn" ? parseKmsArn(seal.keyId)! : undefined;
    const account = arn?.account ?? accountId;
    if (!account) throw needAccount(seal.keyId);
    const alias = arn ? `alias/${arn.name}` : seal.keyId;
    statement.Resource = `arn:${arn?.partition ?? partition}:kms:${seal.region}:${account}:key/*`;
    statement.Condition = { "ForAnyValue:StringEquals": { "kms:ResourceAliases": alias } };
  } else {
    throw new UsageError(`key id ${JSON.stringify(seal.keyId)} is not a KMS key identifier`);
  }
  return { Version: "2012-10-17", Statement: [statement] };
}

/**
 * The statement to add to the key's own key policy so that the role may use the key (key policies are evaluated
 * together with the identity policy: both must allow). In a key policy, Resource "*" means "this key".
 * Throws UsageError without a role ARN: the statement needs a principal.
 */
export function buildKeyPolicyStatement(seal: AwsKmsSealOptions): Record<string, unknown> {
  if (!seal.roleArn) {
    throw new UsageError("the key policy statement needs the role that runs the server: pass --role-arn");
  }
  return {
    Sid: "AllowVaultAutoUnsealRole",
    Effect: "Allow",
    Principal: { AWS: seal.roleArn },
    Action: [...SEAL_KMS_ACTIONS],
    Resource: "*",
  };
}

/** Pretty JSON with a trailing newline. */
export function renderJson(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function partitionFor(region: string): string {
  if (region.startsWith("cn-")) return "aws-cn";
  if (region.startsWith("us-gov-")) return "aws-us-gov";
  return "aws";
}

function needAccount(keyId: string): UsageError {
  return new UsageError(`the IAM policy needs the key's ARN, but ${JSON.stringify(keyId)} does not name the account`, {
    hint: "pass --key-id as a key ARN, or --account-id, or add --validate to look the ARN up",
  });
}
