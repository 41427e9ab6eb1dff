/**
 * The error translator, without AWS, for the mapping alone: errors shaped as the SDK throws them (name = the service's
 * exception name, code on network errors). The real AccessDenied (moto with IAM enforcement on) is in
 * test/integration/autounseal-iam.test.ts.
 */
import { describe, expect, it } from "vitest";
import { explainKmsError, KmsCheckError } from "../../../src/autounseal/validate.js";
import { ExitCode } from "../../../src/errors.js";

const ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const conn = { region: "eu-west-1" };
const sdkError = (name: string, message = "") => Object.assign(new Error(message), { name, $fault: "client" });

describe("explainKmsError", () => {
  it.each(["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt"])(
    "AccessDenied on %s names the action and the ARN",
    (action) => {
      const e = explainKmsError(
        sdkError("AccessDeniedException", "User: arn:aws:sts::1:assumed-role/x is not authorized"),
        action,
        ARN,
        conn,
      );
      expect(e).toBeInstanceOf(KmsCheckError);
      expect(e.message).toBe(`arn:aws:sts::1:assumed-role/x lacks ${action} on ${ARN}`);
      expect(e.reason).toBe("access-denied");
      expect(e.exitCode).toBe(ExitCode.remote);
      expect(e.hint).toMatch(/--output iam/);
    },
  );

  it("AccessDenied without a principal in the message says the role", () => {
    const e = explainKmsError(sdkError("AccessDeniedException", "denied"), "kms:Decrypt", ARN, conn);
    expect(e.message).toBe(`the role lacks kms:Decrypt on ${ARN}`);
  });

  it.each<[string, RegExp, string]>([
    ["NotFoundException", /^key .* does not exist in eu-west-1/, "not-found"],
    ["DisabledException", /is Disabled \(KeyState\)/, "disabled"],
    ["KMSInvalidStateException", /not in a usable state for kms:Encrypt/, "wrong-state"],
    ["InvalidKeyUsageException", /cannot be used for kms:Encrypt \(KeyUsage\)/, "wrong-usage"],
    [
      "UnrecognizedClientException",
      /credentials were rejected by the KMS endpoint of eu-west-1 \(UnrecognizedClientException\)/,
      "bad-credentials",
    ],
    ["ExpiredTokenException", /credentials were rejected/, "bad-credentials"],
    ["CredentialsProviderError", /^no AWS credentials found/, "no-credentials"],
  ])("%s", (name, message, reason) => {
    const e = explainKmsError(sdkError(name), "kms:Encrypt", ARN, conn);
    expect(e.message).toMatch(message);
    expect(e.reason).toBe(reason);
    expect(e.message).not.toContain("\n");
  });

  it.each(["ECONNREFUSED", "ENOTFOUND", "ETIMEDOUT"])("network %s is 'unreachable', exit 1", (code) => {
    const e = explainKmsError(Object.assign(new Error(`connect ${code}`), { code }), "kms:DescribeKey", ARN, {
      region: "eu-west-1",
      endpoint: "https://kms.example",
    });
    expect(e.message).toBe(`https://kms.example is unreachable (${code})`);
    expect(e.exitCode).toBe(ExitCode.error);
  });

  it("anything else: one line with the action, the resource and the exception name", () => {
    const e = explainKmsError(sdkError("ThrottlingException", "Rate exceeded\nmore"), "kms:Decrypt", ARN, conn);
    expect(e.message).toBe(`kms:Decrypt on ${ARN} failed: ThrottlingException: Rate exceeded`);
  });
});
