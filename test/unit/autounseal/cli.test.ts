/** `autounseal awskms` generation through the CLI, offline: outputs, files, and one clear line per bad input. */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { runSealkeeper } from "../../harness/run-cli.js";

const KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ROLE = "arn:aws:iam::111122223333:role/vault";
const gen = (...args: string[]) => runSealkeeper(["autounseal", "awskms", "--region", "eu-west-1", ...args]);

describe("autounseal awskms (offline generation)", () => {
  it("prints the HCL stanza by default", async () => {
    const r = await gen("--key-id", KEY_ARN);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^seal "awskms" \{$/m);
  });

  it("helm, iam and key-policy to stdout parse back", async () => {
    const helm = await gen("--key-id", KEY_ARN, "--role-arn", ROLE, "--output", "helm");
    const values = parse(helm.stdout) as { server: { ha: { raft: { config: string } } } };
    expect(values.server.ha.raft.config).toMatch(/^seal "awskms" \{$/m);
    const iam = await gen("--key-id", KEY_ARN, "--output", "iam");
    expect(JSON.parse(iam.stdout).Statement[0].Resource).toBe(KEY_ARN);
    const kp = await gen("--key-id", KEY_ARN, "--role-arn", ROLE, "--output", "key-policy");
    expect(JSON.parse(kp.stdout).Principal.AWS).toBe(ROLE);
  });

  it("static credentials come from the environment only, with a warning, into a 0600 file", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sk-au-")), "out");
    const r = await runSealkeeper(
      ["autounseal", "awskms", "--region", "eu-west-1", "--key-id", KEY_ARN, "--static-credentials", "--out", dir],
      { env: { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "not-really-secret" } },
    );
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /^warning: the stanza holds static AWS credentials: keep the files secret \(written 0600/m,
    );
    expect(r.stdout + r.stderr).not.toContain("not-really-secret");
    const file = join(dir, "seal-awskms.hcl");
    expect(readFileSync(file, "utf8")).toContain('secret_key = "not-really-secret"');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readdirSync(dir)).toEqual(["seal-awskms.hcl"]);
  });

  it("static credentials without --out: refused on stdout unless --print-credentials, and the warning says so (issue 34)", async () => {
    const env = { AWS_ACCESS_KEY_ID: "AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY: "not-really-secret" };
    const args = ["autounseal", "awskms", "--region", "eu-west-1", "--key-id", KEY_ARN, "--static-credentials"];
    for (const output of [[], ["--output", "hcl"], ["--output", "helm"]]) {
      const refused = await runSealkeeper([...args, ...output], { env });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        /^error: with --static-credentials the stanza holds the AWS secret key: refusing to print it on stdout/m,
      );
      expect(refused.stdout + refused.stderr).not.toContain("not-really-secret");
    }
    // the IAM policy holds no credential: it still goes to stdout
    const iam = await runSealkeeper([...args, "--output", "iam"], { env });
    expect(iam.code, iam.stderr).toBe(0);
    const asked = await runSealkeeper([...args, "--print-credentials"], { env });
    expect(asked.code).toBe(0);
    expect(asked.stdout).toContain('secret_key = "not-really-secret"');
    expect(asked.stderr).toMatch(
      /^warning: the stanza printed on stdout holds static AWS credentials \(--print-credentials\)/m,
    );
    expect(asked.stderr).not.toMatch(/written 0600/);
  });

  it("a failed --out run leaves no file behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-au-"));
    writeFileSync(join(dir, "iam-policy.json"), "{}");
    const r = await gen("--key-id", KEY_ARN, "--role-arn", ROLE, "--output", "all", "--out", dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/iam-policy.json already exists: refusing to overwrite/);
    expect(readdirSync(dir)).toEqual(["iam-policy.json"]);
    expect(existsSync(join(dir, "seal-awskms.hcl"))).toBe(false);
  });

  it.each<[string[], RegExp]>([
    [["--key-id", "nope"], /^error: key id "nope" is not a KMS key identifier/m],
    [
      ["--key-id", KEY_ARN, "--output", "yaml"],
      /^error: --output "yaml" is not one of hcl, helm, iam, key-policy, all$/m,
    ],
    [["--key-id", KEY_ARN, "--output", "all"], /^error: several artifacts need --out DIR/m],
    [["--key-id", "alias/x", "--output", "iam"], /^error: the IAM policy needs the key's ARN/m],
    [["--key-id", KEY_ARN, "--output", "key-policy"], /^error: the key policy statement needs .* --role-arn$/m],
    [[], /^error: --key-id is required/m],
    [["--create-key"], /^error: --create-key needs --alias/m],
    [["--key-id", KEY_ARN, "--alias", "alias/x"], /^error: --alias is only used with --create-key$/m],
    [["--create-key", "--alias", "vault"], /^error: alias "vault" must look like alias\/NAME/m],
    [["--key-id", KEY_ARN, "--static-credentials"], /^error: --static-credentials reads AWS_ACCESS_KEY_ID/m],
    [
      ["--key-id", KEY_ARN, "--plugin-sha256", "ab"],
      /^error: the external KMS plugin block is for --target openbao only$/m,
    ],
    [
      ["--key-id", KEY_ARN, "--output", "helm", "--replicas", "0"],
      /^error: replicas must be a whole number from 1 to 9, got 0$/m,
    ],
    [["--key-id", KEY_ARN, "--target", "consul"], /argument 'consul' is invalid/],
  ])("%j", async (args, message) => {
    const r = await gen(...args);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it("needs a region", async () => {
    const r = await runSealkeeper(["autounseal", "awskms", "--key-id", KEY_ARN]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: --region is required/m);
  });

  it("openbao: notes the 2.7 plugin, writes its block when given the checksum", async () => {
    const plain = await gen("--key-id", KEY_ARN, "--target", "openbao");
    expect(plain.stderr).toMatch(/^note: OpenBao 2.7\+ runs awskms as an external KMS plugin/m);
    const withPlugin = await gen("--key-id", KEY_ARN, "--target", "openbao", "--plugin-sha256", "0".repeat(64));
    expect(withPlugin.stdout).toMatch(/^plugin "kms" "awskms" \{$/m);
  });
});

describe("autounseal migrate (offline input errors)", () => {
  it.each<[string[], RegExp]>([
    [["-a", "http://127.0.0.1:1"], /^error: give --stanza-file, or --region and --key-id/m],
    [
      ["-a", "http://127.0.0.1:1", "--stanza-file", "/nonexistent/x.hcl"],
      /^error: cannot read stanza file \/nonexistent\/x.hcl: ENOENT$/m,
    ],
    [
      ["-a", "http://127.0.0.1:1", "--region", "eu-west-1", "--key-id", KEY_ARN, "--node-timeout", "soon"],
      /^error: --node-timeout must be a positive number of seconds, got soon$/m,
    ],
  ])("%j", async (args, message) => {
    const r = await runSealkeeper(["autounseal", "migrate", ...args]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
  });

  it("a stanza file without a seal block", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-au-"));
    writeFileSync(join(dir, "x.hcl"), 'listener "tcp" {}\n');
    const r = await runSealkeeper([
      "autounseal",
      "migrate",
      "-a",
      "http://127.0.0.1:1",
      "--stanza-file",
      join(dir, "x.hcl"),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/holds no seal "awskms" block/);
  });
});
