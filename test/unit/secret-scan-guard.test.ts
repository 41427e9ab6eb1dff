import { describe, expect, it } from "vitest";
import { assertNoSecretPrinted } from "../harness/run-cli.js";

// The guard every in-process CLI run of the suite goes through: prove it can fail.
describe("suite-wide secret scan", () => {
  const share = `${"ab".repeat(32)}07`;
  const token = "hvs.CAESIJ0123456789abcdefghijklmnopqrstuvwx";
  it("flags a share or a root token in any output", () => {
    expect(() => assertNoSecretPrinted(["unseal"], { stdout: `x ${share} y`, stderr: "" })).toThrow(/unseal share/);
    expect(() => assertNoSecretPrinted(["init"], { stdout: "", stderr: `token ${token}` })).toThrow(/root token/);
    // OpenBao 2.6's root tokens are legacy service tokens by default: s. and 24 characters (measured on 2.6.2)
    const bao = "s.PFH7FFM473CY1lHxLseQiRyb";
    expect(() => assertNoSecretPrinted(["init"], { stdout: `root ${bao}\n`, stderr: "" })).toThrow(/root token/);
    expect(() =>
      assertNoSecretPrinted(["status"], { stdout: "nodes.PFH7FFM473CY1lHxLseQiRyb", stderr: "" }),
    ).not.toThrow();
  });
  it("lets through what a run asked for, and fingerprints", () => {
    expect(() => assertNoSecretPrinted(["init", "--print-root-token"], { stdout: token, stderr: "" })).not.toThrow();
    expect(() => assertNoSecretPrinted(["shamir", "split"], { stdout: share, stderr: "" })).not.toThrow();
    expect(() => assertNoSecretPrinted(["unseal"], { stdout: "[3f9c0e51a2b4d6e8]", stderr: "" })).not.toThrow();
    // a 64-hex SHA-256 (manifest, transcript hash) is not a share
    expect(() =>
      assertNoSecretPrinted(["transcript", "verify"], { stdout: "ab".repeat(32), stderr: "" }),
    ).not.toThrow();
  });
});
