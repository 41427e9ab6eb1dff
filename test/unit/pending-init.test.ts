/**
 * The lost-init record (src/ceremony/pending.ts) is found for every spelling of the node's address, and checked against
 * the node before warning: an unsealed node is not locked out, its record is stale (issue 27).
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { canonicalNode, diagnoseLostInit, lostInitReport, recordPending } from "../../src/ceremony/pending.js";

describe("lost-init records", () => {
  it("one form per address: localhost, a trailing slash and the default port are the same node", () => {
    expect(canonicalNode("http://localhost:8200/")).toBe("http://127.0.0.1:8200");
    expect(canonicalNode("http://127.0.0.1:8200")).toBe("http://127.0.0.1:8200");
    expect(canonicalNode("https://Vault.example")).toBe("https://vault.example:443");
    expect(canonicalNode("http://10.0.0.1:8200")).not.toBe(canonicalNode("http://10.0.0.2:8200"));
  });

  it("a record written for 127.0.0.1 warns for localhost/ too; an unsealed node makes it stale", () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-pending-"));
    const out = join(dir, "out");
    recordPending(dir, { ceremony: "init", node: "http://127.0.0.1:8200", out });
    expect(diagnoseLostInit(dir, "http://localhost:8200/", [], { sealed: true })).toMatch(
      /^http:\/\/localhost:8200\/ is initialised, but the sealkeeper init of .* never wrote its answer/,
    );
    const stale = lostInitReport(dir, "http://localhost:8200/", [], { sealed: false });
    expect(stale?.stale).toBe(true);
    expect(stale?.text).toMatch(/that lost its answer is stale: the node is unsealed now, so someone holds the shares/);
    expect(readdirSync(dir).filter((f) => f.endsWith(".json"))).toEqual([]);
    expect(lostInitReport(dir, "http://127.0.0.1:8200", [], { sealed: true })).toBeUndefined();
  });
});
