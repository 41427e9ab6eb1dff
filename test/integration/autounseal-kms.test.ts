/**
 * `autounseal awskms --validate / --create-key / --out` against the KMS emulator (moto) on loopback.
 * Keys are made in the test through the real AWS SDK; the CLI runs in-process.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, childEnv, REPO_ROOT } from "../harness/child-cli.js";
import { freePort, makeTlsMaterial } from "../harness/cluster.js";
import { KMS_TEST_CREDENTIALS, KMS_TEST_REGION, type KmsEmulator, startKmsEmulator } from "../harness/kms.js";
import { runSealkeeper } from "../harness/run-cli.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
const kms = await import("@aws-sdk/client-kms");

let emu: KmsEmulator;
let client: InstanceType<typeof kms.KMSClient>;
const keys: Record<string, { id: string; arn: string }> = {};
const env = {
  AWS_ACCESS_KEY_ID: KMS_TEST_CREDENTIALS.accessKey,
  AWS_SECRET_ACCESS_KEY: KMS_TEST_CREDENTIALS.secretKey,
};

beforeAll(async () => {
  emu = await startKmsEmulator();
  client = new kms.KMSClient({
    region: KMS_TEST_REGION,
    endpoint: emu.endpoint,
    credentials: { accessKeyId: KMS_TEST_CREDENTIALS.accessKey, secretAccessKey: KMS_TEST_CREDENTIALS.secretKey },
  });
  const make = async (name: string, input: ConstructorParameters<typeof kms.CreateKeyCommand>[0] = {}) => {
    const res = await client.send(new kms.CreateKeyCommand(input));
    keys[name] = { id: res.KeyMetadata!.KeyId!, arn: res.KeyMetadata!.Arn! };
  };
  await make("good");
  await client.send(new kms.CreateAliasCommand({ AliasName: "alias/good", TargetKeyId: keys.good!.id }));
  await make("disabled");
  await client.send(new kms.DisableKeyCommand({ KeyId: keys.disabled!.id }));
  await make("asymmetric", { KeySpec: "RSA_2048", KeyUsage: "ENCRYPT_DECRYPT" });
  await make("signing", { KeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY" });
  await make("doomed");
  await client.send(new kms.ScheduleKeyDeletionCommand({ KeyId: keys.doomed!.id, PendingWindowInDays: 7 }));
});

afterAll(async () => {
  client?.destroy();
  await emu?.stop();
});

const validate = (keyId: string, endpoint = emu.endpoint, extra: string[] = []) =>
  runSealkeeper(
    [
      "autounseal",
      "awskms",
      "--region",
      KMS_TEST_REGION,
      "--endpoint",
      endpoint,
      "--key-id",
      keyId,
      "--validate",
      ...extra,
    ],
    { env },
  );

describe("autounseal awskms --validate", () => {
  it("passes a good key (by id, ARN and alias) and reports rotation", async () => {
    for (const id of [keys.good!.id, keys.good!.arn, "alias/good"]) {
      const run = await validate(id);
      expect(run.stderr).toBe("");
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(keys.good!.arn);
      expect(run.stdout).toMatch(/round trip\s+ok\s+Encrypt and Decrypt work/);
      expect(run.stdout).toMatch(/rotation\s+ok\s+automatic rotation disabled/);
    }
  });

  it("json report", async () => {
    const run = await validate("alias/good", emu.endpoint, ["--format", "json"]);
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ keyArn: keys.good!.arn, keySpec: "SYMMETRIC_DEFAULT", keyState: "Enabled" });
  });

  it.each([
    ["disabled", /^error: key arn:aws:kms:\S+ is Disabled \(KeyState\): the seal needs an Enabled key$/m],
    ["asymmetric", /^error: key arn:aws:kms:\S+ is RSA_2048 \(KeySpec\): the seal needs a SYMMETRIC_DEFAULT key$/m],
    ["signing", /^error: key arn:aws:kms:\S+ is ECC_NIST_P256 \(KeySpec\): the seal needs a SYMMETRIC_DEFAULT key$/m],
    [
      "doomed",
      /^error: key arn:aws:kms:\S+ is pending deletion on \S+ \(KeyState PendingDeletion\): cancel the deletion/m,
    ],
  ])("fails a %s key with one line naming the property", async (name, message) => {
    const run = await validate(keys[name]!.id);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("fails a wrong key id", async () => {
    const run = await validate("1234abcd-12ab-34cd-56ef-1234567890ab");
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(
      `error: key 1234abcd-12ab-34cd-56ef-1234567890ab does not exist in ${KMS_TEST_REGION} (or is not visible to these credentials)`,
    );
  });

  it("fails an unreachable endpoint", async () => {
    const port = await freePort();
    const run = await validate("alias/good", `http://127.0.0.1:${port}`);
    expect(run.code).toBe(1);
    expect(run.stderr.trim()).toBe(`error: http://127.0.0.1:${port} is unreachable (ECONNREFUSED)`);
  });

  it("warns about environment variables that override the file on the server", async () => {
    const run = await runSealkeeper(
      [
        "autounseal",
        "awskms",
        "--region",
        KMS_TEST_REGION,
        "--key-id",
        "alias/good",
        "--endpoint",
        emu.endpoint,
        "--validate",
      ],
      { env: { ...env, VAULT_AWSKMS_SEAL_KEY_ID: "other", AWS_KMS_ENDPOINT: "http://elsewhere" } },
    );
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/^warning: VAULT_AWSKMS_SEAL_KEY_ID is set: .* overrides kms_key_id/m);
    expect(run.stderr).toMatch(/^warning: AWS_KMS_ENDPOINT is set: .* overrides endpoint/m);
  });
});

describe("autounseal awskms --create-key", () => {
  it("creates a symmetric key with rotation on, which then validates; a taken alias is refused", async () => {
    const run = await runSealkeeper(
      [
        "autounseal",
        "awskms",
        "--region",
        KMS_TEST_REGION,
        "--endpoint",
        emu.endpoint,
        "--create-key",
        "--alias",
        "alias/fresh",
      ],
      { env },
    );
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^created key arn:aws:kms:\S+ as alias\/fresh \(rotation enabled\)$/m);
    expect(run.stdout).toMatch(/rotation\s+ok\s+automatic rotation enabled/);
    const meta = (await client.send(new kms.DescribeKeyCommand({ KeyId: "alias/fresh" }))).KeyMetadata!;
    expect(meta.KeySpec).toBe("SYMMETRIC_DEFAULT");
    expect(meta.KeyUsage).toBe("ENCRYPT_DECRYPT");

    const again = await runSealkeeper(
      [
        "autounseal",
        "awskms",
        "--region",
        KMS_TEST_REGION,
        "--endpoint",
        emu.endpoint,
        "--create-key",
        "--alias",
        "alias/fresh",
      ],
      { env },
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^error: alias alias\/fresh already exists/m);
  });
});

describe("autounseal awskms --out", () => {
  it("writes every artifact, each parses back, and refuses to overwrite", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sealkeeper-au-")), "out");
    const argv = [
      "autounseal",
      "awskms",
      "--region",
      KMS_TEST_REGION,
      "--endpoint",
      emu.endpoint,
      "--key-id",
      "alias/good",
      "--role-arn",
      "arn:aws:iam::123456789012:role/vault",
      "--validate",
      "--output",
      "all",
      "--out",
      dir,
    ];
    const run = await runSealkeeper(argv, { env });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const hcl = readFileSync(join(dir, "seal-awskms.hcl"), "utf8");
    expect(hcl).toContain('kms_key_id = "alias/good"');
    // the live check told the key ARN: the policy names it alone
    const iam = JSON.parse(readFileSync(join(dir, "iam-policy.json"), "utf8"));
    expect(iam.Statement[0].Resource).toBe(keys.good!.arn);
    expect(JSON.parse(readFileSync(join(dir, "key-policy-statement.json"), "utf8")).Principal.AWS).toBe(
      "arn:aws:iam::123456789012:role/vault",
    );
    expect(statSync(join(dir, "seal-awskms.hcl")).mode & 0o777).toBe(0o644);

    const again = await runSealkeeper(argv, { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/seal-awskms.hcl already exists: refusing to overwrite/);
  });
});

/**
 * The AWS SDK's own HTTPS agent trusts a NODE_EXTRA_CA_CERTS the npm launcher deferred (src/util/tls-trust.ts):
 * moto serving TLS with a certificate of a throwaway CA, validated through bin/sealkeeper's #! line and through plain
 * `node bin/sealkeeper` (Node loading the file itself); both must agree, and without the file both must refuse.
 */
describe("autounseal awskms --validate over TLS, the CA from NODE_EXTRA_CA_CERTS", () => {
  let tlsEmu: KmsEmulator;
  let tlsKey: string;
  let caCertPath: string;
  beforeAll(async () => {
    const material = makeTlsMaterial(mkdtempSync(join(tmpdir(), "sk-kms-tls-")));
    caCertPath = material.caCertPath;
    tlsEmu = await startKmsEmulator({ tls: material });
    const c = new kms.KMSClient({
      region: KMS_TEST_REGION,
      endpoint: tlsEmu.endpoint,
      credentials: { accessKeyId: KMS_TEST_CREDENTIALS.accessKey, secretAccessKey: KMS_TEST_CREDENTIALS.secretKey },
      requestHandler: { httpsAgent: { ca: readFileSync(caCertPath, "utf8") } },
    });
    tlsKey = (await c.send(new kms.CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    c.destroy();
  }, 90_000);
  afterAll(async () => {
    await tlsEmu?.stop();
  });
  const run = (cmd: string, pre: string[], extraCa: string | undefined) => {
    const args = [...pre, "autounseal", "awskms", "--region", KMS_TEST_REGION, "--endpoint", tlsEmu.endpoint];
    const r = spawnSync(cmd, [...args, "--key-id", tlsKey, "--validate"], {
      cwd: REPO_ROOT,
      env: childEnv({ ...env, ...(extraCa ? { NODE_EXTRA_CA_CERTS: extraCa } : {}) }),
      encoding: "utf8",
      timeout: 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it("validates the key through the launcher and through node, with the CA file", () => {
    for (const r of [run(BIN, [], caCertPath), run(process.execPath, [BIN], caCertPath)]) {
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/round trip\s+ok/);
    }
  });
  it("refuses the endpoint without it, both ways", () => {
    for (const r of [run(BIN, [], undefined), run(process.execPath, [BIN], undefined)]) {
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/certificate|self-signed|issuer/i);
    }
  });
});
