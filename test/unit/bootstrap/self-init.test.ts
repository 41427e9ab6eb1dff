import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  checkSealStatusForSelfInit,
  checkServerConfigForSelfInit,
  renderSelfInitStanza,
  selfInitRequests,
  verifierPolicy,
} from "../../../src/bootstrap/self-init.js";
import { loadSpec } from "../../../src/bootstrap/spec.js";
import { runSealkeeper } from "../../harness/run-cli.js";

/** The reference spec in a temp dir, its reviewer JWT written without a trailing newline (as the server needs it). */
function referenceCopy(jwtNewline = false, keepAudit = false): { dir: string; spec: string; jwt: string } {
  const dir = mkdtempSync(join(tmpdir(), "sk-selfinit-"));
  copyFileSync("examples/reference/kubernetes-ca.pem", join(dir, "kubernetes-ca.pem"));
  // without its audit device: OpenBao takes those only from its config (self-init refuses them, tested below)
  writeFileSync(
    join(dir, "bootstrap.yaml"),
    readFileSync("examples/reference/bootstrap.yaml", "utf8").replace(
      keepAudit ? /^$^/ : /^audit:\n(?:(?: {2}.*|\s*)\n)*/m,
      "",
    ),
  );
  const jwt = readFileSync("examples/reference/token-reviewer.jwt", "utf8").trim();
  writeFileSync(join(dir, "token-reviewer.jwt"), jwtNewline ? `${jwt}\n` : jwt);
  return { dir, spec: join(dir, "bootstrap.yaml"), jwt };
}

describe("bootstrap export --self-init: the stanza", () => {
  const ref = referenceCopy();
  const spec = loadSpec(ref.spec);
  const opts = { verifierTokenFile: "/etc/openbao/verifier.token" };

  it("sends apply's requests in apply's order, then the verifier (policy, token role, orphan token from the file)", () => {
    const reqs = selfInitRequests(spec, opts);
    const paths = reqs.map((r) => r.path);
    expect(paths.slice(0, 2)).toEqual(["sys/mounts/secret", "sys/auth/kubernetes"]);
    expect(paths.indexOf("auth/kubernetes/config")).toBeLessThan(paths.indexOf("auth/kubernetes/role/eso-role"));
    expect(paths.slice(-3)).toEqual([
      "sys/policies/acl/sealkeeper-verify",
      "auth/token/roles/sealkeeper-verify",
      "auth/token/create",
    ]);
    const token = reqs.at(-1)!.data!;
    expect(token.id).toEqual({ eval_source: "file", eval_type: "string", path: "/etc/openbao/verifier.token" });
    expect(token.no_parent).toBe(true);
    expect(token.policies).toEqual(["sealkeeper-verify"]);
    const role = reqs.at(-2)!.data!;
    expect(role.allowed_policies).toEqual(["default", "my-app-dev-read", "my-app-production-read", "my-app-read"]);
    expect(new Set(reqs.map((r) => r.name)).size).toBe(reqs.length);
  });

  it("never carries the reviewer JWT: the server reads it from its file", () => {
    const text = renderSelfInitStanza(spec, opts);
    expect(text).not.toContain(ref.jwt);
    expect(text).toContain(`path = ${JSON.stringify(join(ref.dir, "token-reviewer.jwt"))}`);
    expect(text).toMatch(/^initialize "sealkeeper" \{$/m);
    expect(text).toContain(
      'policy = "path \\"secret/data/production/my-app\\" {\\n  capabilities = [\\"read\\"]\\n}\\n"',
    );
  });

  it("gives the verifier read on what plan observes and nothing to write", () => {
    const policy = verifierPolicy(spec);
    expect(policy).toContain('path "auth/kubernetes/role/*" {\n  capabilities = ["read"]\n}');
    expect(policy).toContain('path "auth/token/create/sealkeeper-verify" {\n  capabilities = ["update"]\n}');
    expect(policy).not.toMatch(/create"|delete|sudo|"\*"/);
  });

  it("refuses a reviewer JWT file ending with a newline (the server would send it as it is)", () => {
    const bad = referenceCopy(true);
    expect(() => selfInitRequests(loadSpec(bad.spec), opts)).toThrow(/ends with a newline or spaces/);
  });

  it("refuses a relative verifier token path", () => {
    expect(() => selfInitRequests(spec, { verifierTokenFile: "verifier.token" })).toThrow(/absolute path/);
  });
});

describe("bootstrap export --self-init: where self-init cannot serve", () => {
  it("a server config without an auto-unseal seal (Shamir)", () => {
    expect(() => checkServerConfigForSelfInit('storage "raft" {}\n', "bao.hcl")).toThrow(
      /bao.hcl has no seal stanza \(a Shamir seal\): OpenBao self-initialization needs an auto-unseal seal/,
    );
    expect(() => checkServerConfigForSelfInit('seal "shamir" {}\n', "bao.hcl")).toThrow(/only seal "shamir"/);
    expect(() => checkServerConfigForSelfInit('seal "awskms" {\n  region = "x"\n}\n', "bao.hcl")).not.toThrow();
  });

  it("a live server that is already initialised, or Shamir-sealed", () => {
    expect(() => checkSealStatusForSelfInit("http://n1", { initialized: true, type: "awskms" })).toThrow(
      /already initialised: OpenBao runs an initialize stanza only on its first start/,
    );
    expect(() => checkSealStatusForSelfInit("http://n1", { initialized: false, type: "shamir" })).toThrow(
      /has a Shamir seal/,
    );
    expect(() => checkSealStatusForSelfInit("http://n1", { initialized: false, type: "awskms" })).not.toThrow();
  });

  it("the CLI: --self-init required; the token file is new (never overwritten) and 0600; a refusal writes nothing", async () => {
    const ref = referenceCopy();
    const tokenFile = join(ref.dir, "verifier.token");
    const selfInit = (...extra: string[]) =>
      runSealkeeper([
        "bootstrap",
        "export",
        "--self-init",
        "-f",
        ref.spec,
        "--verifier-token-file",
        tokenFile,
        ...extra,
      ]);
    const noFlag = await runSealkeeper(["bootstrap", "export", "-f", ref.spec, "--verifier-token-file", tokenFile]);
    expect(noFlag.code).toBe(1);
    expect(noFlag.stderr).toMatch(/needs --self-init/);

    const shamir = join(ref.dir, "shamir.hcl");
    writeFileSync(shamir, 'storage "raft" {}\n');
    const refused = await selfInit("--server-config", shamir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/needs an auto-unseal seal/);
    expect(existsSync(tokenFile)).toBe(false);

    const ok = await selfInit();
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^initialize "sealkeeper" \{$/m);
    const token = readFileSync(tokenFile, "utf8");
    expect(token).toMatch(/^sealkeeper-verify-[0-9a-f]{48}$/);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(ok.stdout + ok.stderr).not.toContain(token);

    const again = await selfInit();
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/refusing to overwrite|already exists/);
    expect(readFileSync(tokenFile, "utf8")).toBe(token);
  });
});
