import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  type AwsKmsSealOptions,
  checkAwsKmsOptions,
  classifyKeyId,
  findSealOverrides,
  quoteHcl,
  renderSealStanza,
} from "../../../src/autounseal/awskms-config.js";
import { buildHelmValues, renderHelmValues } from "../../../src/autounseal/helm.js";
import { buildIamPolicy, buildKeyPolicyStatement } from "../../../src/autounseal/iam.js";
import { UsageError } from "../../../src/errors.js";

const KEY = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_ARN = `arn:aws:kms:eu-west-1:111122223333:key/${KEY}`;
const ROLE = "arn:aws:iam::111122223333:role/vault-unseal";
const base: AwsKmsSealOptions = { region: "eu-west-1", keyId: KEY_ARN, target: "vault" };

describe("classifyKeyId", () => {
  it.each([
    [KEY, "key-id"],
    ["mrk-1234abcd12ab34cd56ef1234567890ab", "key-id"],
    [KEY_ARN, "key-arn"],
    ["alias/vault-unseal", "alias-name"],
    ["arn:aws:kms:eu-west-1:111122223333:alias/vault-unseal", "alias-arn"],
  ])("%s is a %s", (id, kind) => expect(classifyKeyId(id)).toBe(kind));

  it.each(["", "nope", "alias/", "alias/aws/ebs", "arn:aws:kms:eu-west-1:111122223333:key/nope", `${KEY}x`])(
    "rejects %j",
    (id) => expect(classifyKeyId(id)).toBeNull(),
  );
});

describe("checkAwsKmsOptions", () => {
  it.each<[Partial<AwsKmsSealOptions>, RegExp]>([
    [{ region: "Europe" }, /region "Europe" is not an AWS region/],
    [{ keyId: "my-key" }, /key id "my-key" is not a KMS key identifier/],
    [{ keyId: "alias/aws/kms" }, /AWS managed keys cannot be used/],
    [{ region: "us-east-1" }, /key ARN is in region eu-west-1 but --region is us-east-1/],
    [{ endpoint: "kms.local" }, /endpoint "kms.local" is not a URL/],
    [{ endpoint: "ftp://kms" }, /must be http:\/\/ or https:\/\//],
    [{ roleArn: "vault-role" }, /role ARN "vault-role" is not an IAM role ARN/],
    [{ openbaoPlugin: { command: "x", sha256: "00" } }, /for --target openbao only/],
    [{ target: "openbao", openbaoPlugin: { command: "x", sha256: "zz" } }, /64 hex digits/],
  ])("%j", (patch, message) => {
    expect(() => checkAwsKmsOptions({ ...base, ...patch })).toThrow(message);
    expect(() => checkAwsKmsOptions({ ...base, ...patch })).toThrow(UsageError);
  });
});

describe("renderSealStanza", () => {
  it("writes the keys the server parses, and no credentials unless given", () => {
    const hcl = renderSealStanza({ ...base, endpoint: "http://127.0.0.1:4566" });
    expect(hcl).toMatch(/^seal "awskms" \{$/m);
    expect(hcl).toMatch(/^ {2}region += "eu-west-1"$/m);
    expect(hcl).toMatch(new RegExp(`^ {2}kms_key_id += "${KEY_ARN}"$`, "m"));
    expect(hcl).toMatch(/^ {2}endpoint += "http:\/\/127.0.0.1:4566"$/m);
    expect(hcl).not.toMatch(/access_key|secret_key|session_token|role_arn/);
  });

  it("adds static credentials only when asked for", () => {
    const hcl = renderSealStanza({ ...base, credentials: { accessKey: "AKIAEXAMPLE", secretKey: "s/e+c" } });
    expect(hcl).toMatch(/access_key += "AKIAEXAMPLE"/);
    expect(hcl).toMatch(/secret_key += "s\/e\+c"/);
  });

  it("puts role_arn in the stanza only when asked (IRSA passes it in the environment)", () => {
    expect(renderSealStanza({ ...base, roleArn: ROLE })).not.toMatch(/role_arn/);
    expect(renderSealStanza({ ...base, roleArn: ROLE, roleArnInStanza: true })).toMatch(/role_arn += "arn:aws:iam/);
  });

  it("for OpenBao, tells about the 2.7 plugin, and writes the plugin block when given its checksum", () => {
    const plain = renderSealStanza({ ...base, target: "openbao" });
    expect(plain).toMatch(/^# .*2\.7\+ moved it to an external KMS plugin/m);
    expect(plain).not.toMatch(/^plugin/m);
    const sha = "ab".repeat(32);
    const withPlugin = renderSealStanza({
      ...base,
      target: "openbao",
      openbaoPlugin: { command: "openbao-plugin-kms-aws", sha256: sha.toUpperCase() },
    });
    expect(withPlugin).toMatch(/^plugin "kms" "awskms" \{$/m);
    expect(withPlugin).toContain(`sha256sum = "${sha}"`);
  });

  it("quotes values, and refuses template syntax and control characters", () => {
    expect(quoteHcl('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(() => quoteHcl("a$" + "{x}")).toThrow(/template syntax/);
    expect(() => quoteHcl("a\nb")).toThrow(/control characters/);
  });
});

describe("findSealOverrides", () => {
  it("warns for each override variable that is set, without printing its value", () => {
    const w = findSealOverrides({
      AWSKMS_WRAPPER_KEY_ID: "secret-looking",
      AWS_KMS_ENDPOINT: "x",
      VAULT_SEAL_TYPE: "",
    });
    expect(w).toHaveLength(2);
    expect(w[0]).toMatch(/^AWSKMS_WRAPPER_KEY_ID is set: .* overrides kms_key_id/);
    expect(w.join("\n")).not.toContain("secret-looking");
  });
  it("warns when AWS_REGION disagrees with --region (Vault merges it over the stanza)", () => {
    expect(findSealOverrides({ AWS_REGION: "eu-west-1" }, "eu-west-1")).toEqual([]);
    expect(findSealOverrides({ AWS_REGION: "us-east-1" }, "eu-west-1")[0]).toMatch(/AWS_REGION=us-east-1 differs/);
  });
});

describe("helm values", () => {
  it("HA raft with retry_join for every replica, the seal, kubernetes registration and the IRSA annotation", () => {
    const text = renderHelmValues({ ...base, roleArn: ROLE }, { replicas: 5 });
    const values = parse(text) as { server: { ha: { raft: { config: string }; replicas: number } } };
    expect(values.server.ha.replicas).toBe(5);
    const config = values.server.ha.raft.config;
    expect(config.match(/retry_join \{/g)).toHaveLength(5);
    expect(config).toContain('leader_api_addr = "http://vault-4.vault-internal:8200"');
    expect(config).toMatch(/seal "awskms" \{/);
    expect(config).toContain('service_registration "kubernetes" {}');
    expect(config).not.toMatch(/role_arn/);
    expect(text).toContain("eks.amazonaws.com/role-arn: arn:aws:iam::111122223333:role/vault-unseal");
  });

  it("with a TLS secret: https retry_join with the CA, the secret mounted, tlsDisable false", () => {
    const values = buildHelmValues({ ...base, target: "openbao" }, { tlsSecret: "bao-tls", release: "bao" });
    const config = (values.server as { ha: { raft: { config: string } } }).ha.raft.config;
    // the chart names the pods bao-openbao-N: a release name without the chart's name gets it appended
    expect(config).toContain('leader_api_addr = "https://bao-openbao-0.bao-openbao-internal:8200"');
    expect(config).toContain('leader_ca_cert_file = "/openbao/userconfig/bao-tls/ca.crt"');
    expect(config).toContain('path = "/openbao/data"');
    expect(values.global).toEqual({ tlsDisable: false });
  });

  it.each([0, 10, 2.5])("rejects replicas %s", (replicas) => {
    expect(() => buildHelmValues(base, { replicas })).toThrow(/replicas must be a whole number from 1 to 9/);
  });
  it("rejects a bad release name", () => {
    expect(() => buildHelmValues(base, { release: "Vault_1" })).toThrow(/release name "Vault_1" is not a DNS label/);
  });
});

describe("IAM", () => {
  it("grants exactly DescribeKey, Encrypt, Decrypt on the key ARN", () => {
    const doc = buildIamPolicy(base);
    expect(doc.Statement).toEqual([
      {
        Sid: "SealkeeperAutoUnseal",
        Effect: "Allow",
        Action: ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"],
        Resource: KEY_ARN,
      },
    ]);
    expect(JSON.parse(JSON.stringify(doc))).toEqual(doc);
  });
  it("builds the ARN from a key id and an account id", () => {
    expect(buildIamPolicy({ ...base, keyId: KEY }, "111122223333").Statement[0]!.Resource).toBe(KEY_ARN);
    expect(buildIamPolicy({ ...base, region: "cn-north-1", keyId: KEY }, "111122223333").Statement[0]!.Resource).toBe(
      `arn:aws-cn:kms:cn-north-1:111122223333:key/${KEY}`,
    );
  });
  it("scopes an alias with kms:ResourceAliases", () => {
    const s = buildIamPolicy({ ...base, keyId: "alias/vault" }, "111122223333").Statement[0]!;
    expect(s.Resource).toBe("arn:aws:kms:eu-west-1:111122223333:key/*");
    expect(s.Condition).toEqual({ "ForAnyValue:StringEquals": { "kms:ResourceAliases": "alias/vault" } });
  });
  it("refuses without a way to name the account", () => {
    expect(() => buildIamPolicy({ ...base, keyId: "alias/vault" })).toThrow(/needs the key's ARN/);
    expect(() => buildIamPolicy({ ...base, keyId: KEY }, "12")).toThrow(/account id "12" must be 12 digits/);
  });
  it("key policy statement names the role and the same actions", () => {
    expect(buildKeyPolicyStatement({ ...base, roleArn: ROLE })).toMatchObject({
      Principal: { AWS: ROLE },
      Action: ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"],
      Resource: "*",
    });
    expect(() => buildKeyPolicyStatement(base)).toThrow(/pass --role-arn/);
  });
});
