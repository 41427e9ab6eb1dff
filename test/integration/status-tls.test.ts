import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, childEnv, REPO_ROOT } from "../harness/child-cli.js";
import { makeTlsMaterial, startNode, type TestNode } from "../harness/cluster.js";
import { runSealkeeper } from "../harness/run-cli.js";

// One real node with TLS on, signed by a throwaway CA made with openssl in this test.
let node: TestNode;
let otherCa: string;

beforeAll(async () => {
  node = await startNode({ tls: true, storage: "file" });
  otherCa = makeTlsMaterial(mkdtempSync(join(tmpdir(), "sealkeeper-otherca-"))).caCertPath;
});
afterAll(async () => {
  await node?.stop();
});

describe("TLS settings against a real TLS node", () => {
  it("verifies with the right CA (--ca-cert)", async () => {
    const r = await runSealkeeper(["status", "-a", node.address, "--ca-cert", node.caCertPath!, "--format", "json"]);
    expect(r.code).toBe(2); // uninitialised
    expect(JSON.parse(r.stdout)[0]).toMatchObject({ reachable: true, initialized: false });
  });
  it("verifies with the CA from VAULT_CACERT and a CA directory from BAO_CAPATH", async () => {
    const a = await runSealkeeper(["status", "-a", node.address], { env: { VAULT_CACERT: node.caCertPath! } });
    expect(a.code).toBe(2);
    const b = await runSealkeeper(["status", "-a", node.address], {
      env: { BAO_CAPATH: join(node.caCertPath!, "..") },
    });
    expect(b.code).toBe(2);
  });
  it("refuses a certificate not signed by the given CA", async () => {
    const r = await runSealkeeper(["status", "-a", node.address, "--ca-cert", otherCa, "--format", "json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/TLS certificate is not trusted/);
  });
  it("refuses by default (system roots) and VAULT_SKIP_VERIFY=false still verifies", async () => {
    const r = await runSealkeeper(["status", "-a", node.address, "--format", "json"], {
      env: { VAULT_SKIP_VERIFY: "false" },
    });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/not trusted/);
  });
  it("VAULT_SKIP_VERIFY=true skips verification", async () => {
    const r = await runSealkeeper(["status", "-a", node.address], { env: { VAULT_SKIP_VERIFY: "true" } });
    expect(r.code).toBe(2);
  });
  it("a wrong server name is named as such", async () => {
    const r = await runSealkeeper([
      "status",
      "-a",
      node.address,
      "--ca-cert",
      node.caCertPath!,
      "--tls-server-name",
      "vault.example.com",
      "--format",
      "json",
    ]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/does not name this host/);
  });
  it("https to a plain HTTP port is explained", async () => {
    const plain = node.address.replace("https://", "http://");
    const r = await runSealkeeper(["status", "-a", plain, "--format", "json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)[0].error).toMatch(/did not answer as a Vault server|closed the connection/);
  });
});

/**
 * NODE_EXTRA_CA_CERTS through the npm launcher (bin/sealkeeper run by its #! line: sh moves the variable aside,
 * src/util/tls-trust.ts adds the file to the default trust on the first TLS connection) must mean exactly what it
 * means to Node itself (`node bin/sealkeeper`, Node loading the file at start): each case runs both ways and the two
 * must agree.
 */
describe("NODE_EXTRA_CA_CERTS, deferred by the launcher, means what it means to Node", () => {
  function both(args: string[], env: Record<string, string>) {
    const run = (cmd: string, argv: string[]) => {
      const r = spawnSync(cmd, argv, { cwd: REPO_ROOT, env: childEnv(env), encoding: "utf8", timeout: 60_000 });
      expect(r.error).toBeUndefined();
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    return { launcher: run(BIN, args), node: run(process.execPath, [BIN, ...args]) };
  }
  const json = (stdout: string) => JSON.parse(stdout)[0] as { reachable?: boolean; error?: string };

  it("the node's CA as the extra CA file verifies the node, both ways", () => {
    const r = both(["status", "-a", node.address, "--format", "json"], { NODE_EXTRA_CA_CERTS: node.caCertPath! });
    for (const x of [r.launcher, r.node]) {
      expect(x.code).toBe(2); // reachable, uninitialised
      expect(json(x.stdout)).toMatchObject({ reachable: true, initialized: false });
    }
  });
  it("an extra CA file of another CA does not, both ways", () => {
    const r = both(["status", "-a", node.address, "--format", "json"], { NODE_EXTRA_CA_CERTS: otherCa });
    for (const x of [r.launcher, r.node]) {
      expect(x.code).toBe(1);
      expect(json(x.stdout).error).toMatch(/not trusted/);
    }
  });
  it("an explicit CA replaces the extra ones (--ca-cert of another CA refuses the node), both ways", () => {
    const r = both(["status", "-a", node.address, "--ca-cert", otherCa, "--format", "json"], {
      NODE_EXTRA_CA_CERTS: node.caCertPath!,
    });
    for (const x of [r.launcher, r.node]) {
      expect(x.code).toBe(1);
      expect(json(x.stdout).error).toMatch(/not trusted/);
    }
  });
  it("an extra CA file that cannot be read is a warning, then the default trust, both ways", () => {
    const missing = join(mkdtempSync(join(tmpdir(), "sk-extraca-")), "missing.pem");
    const r = both(["status", "-a", node.address, "--format", "json"], { NODE_EXTRA_CA_CERTS: missing });
    for (const x of [r.launcher, r.node]) {
      expect(x.code).toBe(1);
      expect(x.stderr).toMatch(/Warning: Ignoring extra certs from `[^`]*missing\.pem`/);
      expect(json(x.stdout).error).toMatch(/not trusted/);
    }
  });
  it("a file with no certificate in it is a warning too (launcher), and the node stays untrusted", () => {
    const junk = join(mkdtempSync(join(tmpdir(), "sk-extraca-")), "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    const r = both(["status", "-a", node.address, "--format", "json"], { NODE_EXTRA_CA_CERTS: junk });
    expect(r.launcher.stderr).toMatch(/Ignoring extra certs/);
    for (const x of [r.launcher, r.node]) {
      expect(x.code).toBe(1);
      expect(json(x.stdout).error).toMatch(/not trusted/);
    }
  });
});
