/**
 * `autounseal awskms --validate` against moto with IAM enforcement on (INITIAL_NO_AUTH_ACTION_COUNT): the first
 * SETUP_CALLS requests (the users, their inline policies, access keys and the key) run unauthenticated; every
 * request after them is authenticated by moto and authorised against the caller's IAM policies. A principal missing
 * one of the seal's actions then gets a real AccessDenied from the emulator, which the CLI names.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KMS_TEST_REGION, type KmsEmulator, startKmsEmulator } from "../harness/kms.js";
import { runSealkeeper } from "../harness/run-cli.js";

const ACTIONS = ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"] as const;
/** user name -> the seal actions its policy allows */
const USERS: Record<string, readonly string[]> = {
  "seal-full": ACTIONS,
  "seal-no-describe": ["kms:Encrypt", "kms:Decrypt"],
  "seal-no-encrypt": ["kms:DescribeKey", "kms:Decrypt"],
  "seal-no-decrypt": ["kms:DescribeKey", "kms:Encrypt"],
};
/** CreateUser + PutUserPolicy + CreateAccessKey per user, then CreateKey: all before enforcement starts. */
const SETUP_CALLS = Object.keys(USERS).length * 3 + 1;

let emu: KmsEmulator;
let keyArn: string;
const creds: Record<string, { id: string; secret: string }> = {};

/**
 * A query-protocol call in the unauthenticated phase: moto routes by the credential scope of the Authorization
 * header and checks no signature before enforcement starts.
 */
async function unauthCall(service: "iam" | "kms", params: Record<string, string>, target?: string): Promise<string> {
  const headers: Record<string, string> = {
    authorization: `AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/${KMS_TEST_REGION}/${service}/aws4_request, SignedHeaders=host, Signature=00`,
  };
  let body: string;
  if (target) {
    headers["content-type"] = "application/x-amz-json-1.1";
    headers["x-amz-target"] = target;
    body = JSON.stringify(params);
  } else {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams({ Version: "2010-05-08", ...params }).toString();
  }
  const res = await fetch(emu.endpoint, { method: "POST", headers, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${service} ${params.Action ?? target}: ${res.status} ${text}`);
  return text;
}

const xml = (text: string, tag: string) => new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(text)?.[1] ?? "";

beforeAll(async () => {
  emu = await startKmsEmulator({ env: { INITIAL_NO_AUTH_ACTION_COUNT: String(SETUP_CALLS) } });
  for (const [user, actions] of Object.entries(USERS)) {
    await unauthCall("iam", { Action: "CreateUser", UserName: user });
    await unauthCall("iam", {
      Action: "PutUserPolicy",
      UserName: user,
      PolicyName: "seal",
      PolicyDocument: JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: [...actions], Resource: "*" }],
      }),
    });
    const key = await unauthCall("iam", { Action: "CreateAccessKey", UserName: user });
    creds[user] = { id: xml(key, "AccessKeyId"), secret: xml(key, "SecretAccessKey") };
  }
  const created = JSON.parse(await unauthCall("kms", {}, "TrentService.CreateKey")) as { KeyMetadata: { Arn: string } };
  keyArn = created.KeyMetadata.Arn;
});

afterAll(async () => {
  await emu?.stop();
});

const validateAs = (id: string, secret: string) =>
  runSealkeeper(
    ["autounseal", "awskms", "--region", KMS_TEST_REGION, "--endpoint", emu.endpoint, "--key-id", keyArn, "--validate"],
    { env: { AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret } },
  );

describe("autounseal awskms --validate with IAM enforced by moto", () => {
  it("passes a principal allowed kms:DescribeKey, kms:Encrypt and kms:Decrypt", async () => {
    const r = await validateAs(creds["seal-full"]!.id, creds["seal-full"]!.secret);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/round trip\s+ok\s+Encrypt and Decrypt work/);
  });

  it("enforcement is on: an access key IAM does not know is refused as bad credentials", async () => {
    const r = await validateAs("AKIAIOSFODNN7NOTREAL", "not-a-secret");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/credentials were rejected by http:\/\/127\.0\.0\.1:\d+ \(\w+\)/);
  });

  it.each([
    ["seal-no-describe", "kms:DescribeKey"],
    ["seal-no-encrypt", "kms:Encrypt"],
    ["seal-no-decrypt", "kms:Decrypt"],
  ])("names %s as lacking %s, from the emulator's own AccessDenied", async (user, action) => {
    const r = await validateAs(creds[user]!.id, creds[user]!.secret);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: arn:aws:iam::123456789012:user/${user} lacks ${action} on `);
    expect(r.stderr).toContain("--output iam");
    expect(r.stderr).not.toContain(creds[user]!.secret);
  });
});
