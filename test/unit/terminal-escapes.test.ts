/**
 * Issue 34, item 3: text from a server, a manifest or a file never acts on the operator's terminal. A fake node
 * answers seal-status with a version that clears the screen, retitles the window and overwrites the line ("OK all
 * good"), and a cluster name with a bidirectional override; a manifest beside a share file names its operator with
 * escape sequences; a bootstrap plan carries a server value with them.
 */
import { once } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Plan, renderPlan } from "../../src/bootstrap/plan.js";
import { openShareFile } from "../../src/ceremony/share-source.js";
import { paint } from "../../src/cli/output.js";
import { buildManifest, validateManifest } from "../../src/store/manifest.js";
import { runSealkeeper } from "../harness/run-cli.js";

const HOSTILE = "1.21.0\x1b[2J\x1b]0;owned\x07\r\x1b[1AOK all good\x9b2J";
const RTL = "prod\u202egnp.exe";
/** Any control character but newline and tab, C1 and bidi overrides included. */
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let node: Server;
let address = "";
beforeAll(async () => {
  node = createServer((req, res) => {
    res.writeHead(req.url === "/v1/sys/health" ? 200 : 200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        type: "shamir\x1b[31m",
        initialized: true,
        sealed: false,
        t: 3,
        n: 5,
        progress: 0,
        version: HOSTILE,
        cluster_name: RTL,
        storage_type: "raft",
      }),
    );
  });
  node.listen(0, "127.0.0.1");
  await once(node, "listening");
  address = `http://127.0.0.1:${(node.address() as { port: number }).port}`;
});
afterAll(() => {
  node.close();
});

describe("a server's text", () => {
  it("status: the table shows version, cluster name and seal type escaped", async () => {
    const r = await runSealkeeper(["status", "-a", address]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain("1.21.0\\x1b[2J\\x1b]0;owned\\x07\\x0d\\x1b[1AOK all good\\x9b2J");
    expect(r.stdout).toContain("prod\\u202egnp.exe");
    expect(r.stdout).toContain("shamir\\x1b[31m");
  });

  it("status --format json: the same values, with C1 and overrides as \\u escapes (valid JSON)", async () => {
    const r = await runSealkeeper(["status", "-a", address, "--format", "json"]);
    expect(r.stdout).not.toMatch(RAW_CONTROL);
    const [n] = JSON.parse(r.stdout);
    expect(n.version).toBe(HOSTILE);
    expect(n.clusterName).toBe(RTL);
  });

  it("a colour table on a terminal keeps our colours and nothing else", async () => {
    const r = await runSealkeeper(["status", "-a", address], { stdoutIsTTY: true, env: { NO_COLOR: "" } });
    const ours = r.stdout.replace(/\x1b\[(?:32|39)m/g, "");
    expect(ours).not.toMatch(RAW_CONTROL);
    expect(r.stdout).toContain("\x1b[32munsealed\x1b[39m");
  });

  it("bootstrap plan: ids, values, policy lines and conflicts from the server are escaped", () => {
    const plan: Plan = {
      changes: [
        {
          id: "policy evil\x1b[2J",
          kind: "policy",
          action: "update",
          phase: 2,
          fields: [
            {
              field: "policy",
              before: 'path "a" {\n  capabilities = ["read"]\x1b]0;x\x07\n}\n',
              after: 'path "a" {}\n',
            },
            { field: "description", before: "old\u202e", after: "new\x9b" },
          ],
          requests: [],
        },
      ],
      findings: [],
      conflicts: ["mount kv\x1b[1A is of another type"],
      summary: { create: 0, update: 1, delete: 0 },
    } as unknown as Plan;
    const coloured = renderPlan(plan, paint(true));
    expect(coloured.replace(/\x1b\[(?:31|32|33|39)m/g, "")).not.toMatch(RAW_CONTROL);
    expect(renderPlan(plan, paint(false))).toContain("policy evil\\x1b[2J");
  });
});

describe("a manifest's and a file's text", () => {
  const manifestWith = (name: string) => ({
    ...buildManifest({
      node: "http://127.0.0.1:8200",
      kind: "unseal",
      threshold: 1,
      shares: 1,
      operators: [
        {
          name: "alice",
          recipient: { type: "age", fingerprint: "age1xyz" },
          file: "alice.txt",
          fileSha256: "0".repeat(64),
          sealedBy: "client",
          share: new Uint8Array(33).fill(7),
        },
      ],
      rootToken: null,
    }),
    operators: [
      {
        name,
        keyType: "age",
        recipientFingerprint: "age1xyz",
        file: "alice.txt",
        fileSha256: "0".repeat(64),
        sealedBy: "client",
        shareDigest: null,
        shareIndex: null,
      },
    ],
  });

  it("the manifest schema refuses an operator name that is not a plain name", () => {
    expect(() => validateManifest(manifestWith("\x1b[2Jmallory"))).toThrow(/operators\.0\.name: expected 1-64 letters/);
    expect(() => validateManifest(manifestWith("alice"))).not.toThrow();
    expect(() => validateManifest({ ...manifestWith("alice"), node: "http://x\x1b[2J" })).toThrow(
      /node: expected printable text/,
    );
  });

  it("a share file beside a hostile manifest: the operator shown comes from the file name, escaped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-escape-"));
    writeFileSync(join(dir, "alice.txt"), `${"ab".repeat(33)}\n`);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifestWith("\x1b[2J\x1b]0;owned\x07mallory")));
    const share = await openShareFile(join(dir, "alice.txt"), [], undefined);
    expect(share.operator).toBe("alice");
    // a valid manifest names the operator
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifestWith("carol")));
    expect((await openShareFile(join(dir, "alice.txt"), [], undefined)).operator).toBe("carol");
    // no manifest, a file name with an escape sequence
    const dir2 = mkdtempSync(join(tmpdir(), "sk-escape-"));
    writeFileSync(join(dir2, "\x1b[2Jbob.txt"), `${"ab".repeat(33)}\n`);
    expect((await openShareFile(join(dir2, "\x1b[2Jbob.txt"), [], undefined)).operator).toBe("\\x1b[2Jbob");
  });
});
