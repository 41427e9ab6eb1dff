/**
 * `root generate` and `rekey` refuse bad flag combinations before they talk to any server (the address given here
 * has nothing listening: a test that reached it would fail with a connection error instead).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runSealkeeper } from "../../harness/run-cli.js";

const dead = ["-a", "http://127.0.0.1:9"];
const work = mkdtempSync(join(tmpdir(), "sk-genroot-cli-"));

describe("root generate: usage errors", () => {
  const cases: [string, string[], string][] = [
    ["no destination", ["--non-interactive"], "say where the new root token goes"],
    [
      "both server and client sealing",
      ["--pgp-key", "k.asc", "--token-recipient", "age:age1x", "--non-interactive"],
      "give either --pgp-key (the server encrypts) or --token-recipient (sealkeeper seals), not both",
    ],
    ["--nonce without --resume", ["--nonce", "n", "--print-token"], "--nonce goes with --resume"],
    ["--cancel with --status", ["--cancel", "--status"], "give either --cancel or --status, not both"],
    [
      "a bad --endpoint",
      ["--endpoint", "sideways", "--print-token"],
      '--endpoint must be auto, unauthenticated or authenticated, got "sideways"',
    ],
    [
      "--token-recipient with --resume",
      ["--resume", "--token-recipient", "age:age1x"],
      "--token-recipient cannot go with --resume",
    ],
  ];
  for (const [name, argv, message] of cases) {
    it(name, async () => {
      const r = await runSealkeeper(["root", "generate", ...dead, ...argv], { cwd: work });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain("refused the connection");
    });
  }

  it("an existing output file is never overwritten (checked before the attempt starts)", async () => {
    writeFileSync(join(work, "taken.asc"), "x");
    const r = await runSealkeeper(["root", "generate", ...dead, "--resume", "-o", "taken.asc"], { cwd: work });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`refusing to overwrite existing file ${join(work, "taken.asc")}`);
  });
});

describe("rekey: usage errors", () => {
  const cases: [string, string[], string][] = [
    ["no operators", ["--non-interactive"], "say who holds the new shares"],
    ["--verify with new-share flags", ["--verify", "--operator", "a=age:age1x"], "--verify takes only the NEW shares"],
    ["two modes", ["--resume", "--cancel"], "give at most one of --resume, --verify, --cancel and --status"],
    [
      "a bad --seal-shares",
      ["--operator", "a=age:age1qqqq", "--seal-shares", "both"],
      '--seal-shares must be server, client or auto, got "both"',
    ],
    ["a bad operator", ["--operator", "nobody"], 'bad operator "nobody"'],
  ];
  for (const [name, argv, message] of cases) {
    it(name, async () => {
      const r = await runSealkeeper(["rekey", ...dead, ...argv], { cwd: work });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(message);
    });
  }
});
