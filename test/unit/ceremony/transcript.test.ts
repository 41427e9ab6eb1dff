import { mkdtempSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fingerprintShare, Transcript, verifyTranscriptText } from "../../../src/ceremony/transcript.js";
import { runSealkeeper } from "../../harness/run-cli.js";

function sample(): { path: string; last: string } {
  const dir = mkdtempSync(join(tmpdir(), "sk-transcript-"));
  const path = join(dir, "t.jsonl");
  const t = Transcript.open(path);
  t.append({ action: "init-start", node: "http://127.0.0.1:8200" });
  t.append({ action: "unseal-share", node: "http://127.0.0.1:8200", operator: "alice", progress: 1, threshold: 3 });
  t.append({ action: "unseal-share", node: "http://127.0.0.1:8200", operator: "bob", progress: 2, threshold: 3 });
  return { path, last: t.lastHash };
}

describe("transcript", () => {
  it("writes a 0600 file whose chain verifies, and reopening continues the chain", () => {
    const { path } = sample();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const t = Transcript.open(path);
    t.append({ action: "unseal-end" });
    const r = verifyTranscriptText(readFileSync(path, "utf8"));
    expect(r).toMatchObject({ ok: true, lines: 4 });
  });

  it("detects an edited field", () => {
    const { path } = sample();
    const text = readFileSync(path, "utf8").replace('"operator":"bob"', '"operator":"mallory"');
    expect(verifyTranscriptText(text)).toMatchObject({
      ok: false,
      line: 3,
      error: "line 3 was modified (hash mismatch)",
    });
  });

  it("detects a removed, a reordered and an inserted line", () => {
    const { path } = sample();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    expect(verifyTranscriptText([lines[0], lines[2]].join("\n")).ok).toBe(false);
    expect(verifyTranscriptText([lines[1], lines[0], lines[2]].join("\n")).ok).toBe(false);
    expect(verifyTranscriptText([lines[0], lines[0], lines[1], lines[2]].join("\n")).ok).toBe(false);
  });

  it("detects lines cut off the end only with the recorded last hash", () => {
    const { path, last } = sample();
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    const cut = lines.slice(0, 2).join("\n");
    expect(verifyTranscriptText(cut).ok).toBe(true);
    expect(verifyTranscriptText(cut, last).ok).toBe(false);
  });

  it("never follows a symlink planted at the transcript's name, before or after it is opened (issue 34)", () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-transcript-"));
    const victim = join(dir, "victim.txt");
    writeFileSync(victim, "keep me\n");
    const planted = join(dir, "transcript.jsonl");
    symlinkSync(victim, planted);
    expect(() => Transcript.open(planted)).toThrow(`transcript ${planted} is a symbolic link: refusing to follow it`);
    // a dangling link (the file of someone's choosing does not exist yet) is refused too, and not created
    const dangling = join(dir, "t2.jsonl");
    symlinkSync(join(dir, "created-by-us"), dangling);
    expect(() => Transcript.open(dangling)).toThrow(/is a symbolic link/);
    // planted between open() and the first line: the exclusive create refuses it
    const late = join(dir, "t3.jsonl");
    const t = Transcript.open(late);
    symlinkSync(victim, late);
    expect(() => t.append({ action: "init-start" })).toThrow(/appeared after it was opened/);
    // an existing transcript replaced by a link after it was opened
    const { path } = sample();
    const t2 = Transcript.open(path);
    const moved = `${path}.old`;
    writeFileSync(moved, readFileSync(path));
    unlinkSync(path);
    symlinkSync(victim, path);
    expect(() => t2.append({ action: "unseal-end" })).toThrow(/is a symbolic link/);
    expect(readFileSync(victim, "utf8")).toBe("keep me\n");
    expect(() => statSync(join(dir, "created-by-us"))).toThrow();
  });

  it("refuses to append to a broken transcript", () => {
    const { path } = sample();
    writeFileSync(path, readFileSync(path, "utf8").replace('"progress":1', '"progress":3'));
    expect(() => Transcript.open(path)).toThrow(/does not verify \(line 2 was modified/);
  });

  it("fingerprints are stable, short and not the share", () => {
    const share = new Uint8Array(33).fill(7);
    expect(fingerprintShare(share)).toBe(fingerprintShare(share));
    expect(fingerprintShare(share)).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprintShare(share)).not.toContain("0707");
  });

  it("sealkeeper transcript verify: exit 0 when intact, 1 naming the edited line", async () => {
    const { path } = sample();
    expect((await runSealkeeper(["transcript", "verify", path])).code).toBe(0);
    writeFileSync(path, readFileSync(path, "utf8").replace('"alice"', '"eve"'));
    const r = await runSealkeeper(["transcript", "verify", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("NOT OK: line 2 was modified (hash mismatch)\n");
  });
});
