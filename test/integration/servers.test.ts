/**
 * Where HashiCorp Vault 1.21 and OpenBao 2.6 differ, each proven on the real server this run drives
 * (SEALKEEPER_SERVER, one vitest project per server): every test asserts THIS server's own behaviour, never skips.
 * docs/servers.md is the table of these differences, each row naming its test here (or elsewhere).
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, initAndUnseal, startNode, type TestNode } from "../harness/cluster.js";
import { SERVER_NAMES, serverBinaryPath, serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";
import { withoutAudit } from "./bootstrap-helpers.js";

const kind = serverKind();
const name = SERVER_NAMES[kind];
let node: TestNode;
let rootToken: string;
let keys: string[];
let dead: string;
const secrets: string[] = [];
const outputs: string[] = [];

async function sk(argv: string[], env: Record<string, string> = {}) {
  const r = await runSealkeeper(argv, { env });
  outputs.push(r.stdout, r.stderr);
  return r;
}

/** The server's own CLI (vault or bao), with only the given environment. */
function serverCli(args: string[], env: Record<string, string>): { code: number; out: string } {
  try {
    const out = execFileSync(serverBinaryPath(), args, {
      env: { PATH: process.env.PATH, HOME: mkdtempSync(join(tmpdir(), "sk-cli-home-")), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 60_000,
    });
    return { code: 0, out: out.toString() };
  } catch (err) {
    const e = err as { status?: number; stdout?: Buffer; stderr?: Buffer };
    return { code: e.status ?? -1, out: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

beforeAll(async () => {
  node = await startNode();
  const init = await initAndUnseal([node], { shares: 3, threshold: 2 });
  rootToken = init.rootToken;
  keys = init.keys;
  secrets.push(rootToken, ...init.keys);
  dead = `http://127.0.0.1:${await freePort()}`;
}, 180_000);

afterAll(async () => {
  await node?.stop();
});

describe(`${name}: environment variables`, () => {
  it("sealkeeper takes BAO_ADDR over VAULT_ADDR, on either server", async () => {
    const r = await sk(["status", "--format", "json"], { BAO_ADDR: node.address, VAULT_ADDR: dead });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ address: node.address, sealed: false });
    const swapped = await sk(["status", "--format", "json"], { BAO_ADDR: dead, VAULT_ADDR: node.address });
    expect(swapped.code).toBe(1);
  });

  it("sealkeeper takes BAO_TOKEN over VAULT_TOKEN against the real server (a bogus VAULT_TOKEN is not used)", async () => {
    // the reference spec without its audit device: OpenBao refuses API-enabled audit devices, which plan reports as a
    // conflict (exit 1); this test is about which token is sent
    const specDir = mkdtempSync(join(tmpdir(), "sk-spec-"));
    for (const f of ["token-reviewer.jwt", "kubernetes-ca.pem"])
      copyFileSync(`examples/reference/${f}`, join(specDir, f));
    const spec = join(specDir, "bootstrap.yaml");
    writeFileSync(spec, withoutAudit(readFileSync("examples/reference/bootstrap.yaml", "utf8")));
    const good = await sk(["bootstrap", "plan", "-f", spec, "-a", node.address], {
      BAO_TOKEN: rootToken,
      VAULT_TOKEN: "hvs.bogus-token-that-the-server-refuses",
    });
    expect(good.code, good.stderr).toBe(0);
    const bad = await sk(["bootstrap", "plan", "-f", spec, "-a", node.address], {
      BAO_TOKEN: "hvs.bogus-token-that-the-server-refuses",
      VAULT_TOKEN: rootToken,
    });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/403/);
  });

  it(`the server's own CLI: ${kind === "openbao" ? "bao reads BAO_ADDR first" : "vault ignores BAO_ADDR"}`, () => {
    const r = serverCli(["status", "-format=json"], { BAO_ADDR: node.address, VAULT_ADDR: dead });
    if (kind === "openbao") {
      expect(r.code, r.out).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ sealed: false, initialized: true });
    } else {
      // HashiCorp's CLI knows only VAULT_*: it dials the dead VAULT_ADDR and fails (exit 1, connection error)
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/connection refused/);
    }
  });
});

describe(`${name}: version and build`, () => {
  it("seal-status reports the server's version", async () => {
    const c = node.client();
    const s = await c.sealStatus();
    await c.close();
    expect(s.version).toBe(kind === "openbao" ? "2.6.2" : "1.21.0");
  });

  it(`disable_mlock: ${kind === "openbao" ? "OpenBao has no mlock: = false is refused, = true accepted" : "Vault takes disable_mlock = true"}`, async () => {
    if (kind === "openbao") {
      // OpenBao dropped mlock: asking for it (disable_mlock = false) stops the server at start-up; the harness leaves
      // the setting out, and `= true` is accepted as a no-op
      await expect(
        startNode({ parentDir: mkdtempSync(join(tmpdir(), "sk-mlock-")), extraConfig: "disable_mlock = false" }),
      ).rejects.toThrow(/exited during start-up[\s\S]*OpenBao has dropped support for mlock/);
      const n = await startNode({
        parentDir: mkdtempSync(join(tmpdir(), "sk-mlock-")),
        extraConfig: "disable_mlock = true",
      });
      await n.stop();
    } else {
      // the harness's own config has disable_mlock = true on Vault: a node starting proves Vault takes it
      const n = await startNode({ parentDir: mkdtempSync(join(tmpdir(), "sk-mlock-")) });
      await n.stop();
    }
  });
});

describe(`${name}: the unauthenticated quorum endpoints`, () => {
  it(`root generation: ${kind === "openbao" ? "sys/generate-root off by default, guidance, then the token path" : "sys/generate-root served without a token"}`, async () => {
    const noToken = await sk(["root", "generate", "-a", node.address, "--status"]);
    if (kind === "openbao") {
      // OpenBao >= 2.5.3: disable_unauthed_generate_root_endpoints defaults to true
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain("disable_unauthed_generate_root_endpoints = false");
      expect(noToken.stderr).toContain("/v1/sys/generate-root-token/*");
      expect(noToken.stderr).not.toMatch(/^error: (40[0-9])/m);
      const withToken = await sk(["root", "generate", "-a", node.address, "--status"], { BAO_TOKEN: rootToken });
      expect(withToken.code, withToken.stderr).toBe(0);
      expect(withToken.stdout).toContain("/v1/sys/generate-root-token is usable (2 shares required)");
    } else {
      expect(noToken.code, noToken.stderr).toBe(0);
      expect(noToken.stdout).toContain("/v1/sys/generate-root is usable (2 shares required)");
    }
  });

  it(`rekey: ${kind === "openbao" ? "sys/rekey off by default, guidance, then sys/rotate/root with a token" : "sys/rekey served without a token"}`, async () => {
    const noToken = await sk(["rekey", "-a", node.address, "--status"]);
    if (kind === "openbao") {
      // OpenBao >= 2.5.0: disable_unauthed_rekey_endpoints defaults to true
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain("disable_unauthed_rekey_endpoints = false");
      expect(noToken.stderr).toContain("/v1/sys/rotate/root/*");
      const withToken = await sk(["rekey", "-a", node.address, "--status"], { BAO_TOKEN: rootToken });
      expect(withToken.code, withToken.stderr).toBe(0);
      expect(withToken.stdout).toContain("/v1/sys/rotate/root");
    } else {
      expect(noToken.code, noToken.stderr).toBe(0);
      expect(noToken.stdout).toContain("/v1/sys/rekey");
    }
  });

  it(`root generation end to end through ${kind === "openbao" ? "/sys/generate-root-token with BAO_TOKEN" : "/sys/generate-root"}: OTP, decoded, usable`, async () => {
    const env = kind === "openbao" ? { BAO_TOKEN: rootToken } : {};
    const r = await runSealkeeper(["root", "generate", "-a", node.address, "--print-token", "--non-interactive"], {
      env,
      stdin: keys.slice(0, 2).join("\n"),
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(kind === "openbao" ? "/v1/sys/generate-root-token" : "/v1/sys/generate-root");
    const token = /root token \(you asked for it in plaintext\): (\S+)/.exec(r.stdout)![1]!;
    const c = node.client(token);
    const self = await c.request<{ data: { policies: string[] } }>("GET", "auth/token/lookup-self");
    await c.request("POST", "auth/token/revoke-self");
    await c.close();
    expect(self.body.data.policies).toContain("root");
  });

  it("no share or token in any output", () => {
    for (const s of secrets) for (const o of outputs) expect(o).not.toContain(s);
  });
});
