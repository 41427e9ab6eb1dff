import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
