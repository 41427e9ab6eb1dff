import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { jsonRequested } from "../../../src/cli/main.js";
import { runSealkeeper } from "../../harness/run-cli.js";

describe("--format json: one error document on stdout for every failure (issue 35)", () => {
  it("reads the format from the line (last one wins) or from BAO_FORMAT/VAULT_FORMAT", () => {
    expect(jsonRequested(["bootstrap", "plan", "--format", "json"], { env: {} })).toBe(true);
    expect(jsonRequested(["bootstrap", "plan", "--format=json"], { env: {} })).toBe(true);
    expect(jsonRequested(["status", "--format", "json", "--format", "table"], { env: {} })).toBe(false);
    expect(jsonRequested(["status"], { env: { VAULT_FORMAT: "json" } })).toBe(true);
    expect(jsonRequested(["status"], { env: { BAO_FORMAT: "table", VAULT_FORMAT: "json" } })).toBe(false);
    expect(jsonRequested(["status", "--format", "table"], { env: { VAULT_FORMAT: "json" } })).toBe(false);
    expect(jsonRequested(["status"], { env: {} })).toBe(false);
  });

  const dir = mkdtempSync(join(tmpdir(), "sk-json-errors-"));
  const typo = join(dir, "typo.yaml");
  writeFileSync(typo, "version: 1\nmounts:\n  - path: secret\n    tpye: kv\n");
  const badYaml = join(dir, "bad.yaml");
  writeFileSync(badYaml, "version: 1\nmounts: [\n");
  const good = join(dir, "good.yaml");
  writeFileSync(good, "version: 1\n");

  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ["a spec typo", ["bootstrap", "plan", "-f", typo], { VAULT_TOKEN: "x" }, /tpye/],
    ["bad YAML", ["bootstrap", "apply", "-f", badYaml], { VAULT_TOKEN: "x" }, /bad\.yaml/],
    ["a missing file", ["bootstrap", "verify", "-f", join(dir, "nope.yaml")], { VAULT_TOKEN: "x" }, /nope\.yaml/],
    ["a missing required flag", ["bootstrap", "plan"], {}, /required option/],
    [
      "an empty VAULT_TOKEN",
      ["bootstrap", "plan", "-f", good, "-a", "http://127.0.0.1:9"],
      { VAULT_TOKEN: "" },
      /VAULT_TOKEN is set but empty/,
    ],
    [
      "a node that refuses connections",
      ["bootstrap", "plan", "-f", good, "-a", "http://127.0.0.1:9"],
      { VAULT_TOKEN: "x" },
      /127\.0\.0\.1:9/,
    ],
  ];
  for (const [what, argv, env, message] of cases) {
    it(`${what}: exit 1, the human line on stderr, the document on stdout`, async () => {
      const r = await runSealkeeper([...argv, "--format", "json"], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/error/);
      const doc = JSON.parse(r.stdout) as { error: { code: string; message: string; exitCode: number } };
      expect(doc.error.exitCode).toBe(1);
      expect(doc.error.message).toMatch(message);
      expect(["usage", "connection", "error"]).toContain(doc.error.code);
      // table mode prints nothing on stdout for the same failure
      const table = await runSealkeeper(argv, { env });
      expect(table.stdout).toBe("");
    });
  }

  it("an empty VAULT_TOKEN never falls back to ~/.vault-token", async () => {
    const home = mkdtempSync(join(tmpdir(), "sk-home-"));
    writeFileSync(join(home, ".vault-token"), "hvs.someone-elses-token-aaaaaaaaaaaaaaaa\n");
    const r = await runSealkeeper(["bootstrap", "plan", "-f", good, "-a", "http://127.0.0.1:9"], {
      env: { HOME: home, VAULT_TOKEN: "" },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no token: VAULT_TOKEN is set but empty \(an unset CI secret\?\)/);
  });
});
