import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import type { CliIO } from "../../../src/cli/io.js";
import { shareSourceFromOptions } from "../../../src/cli/share-input.js";

const SHARE_A = "11".repeat(32) + "01";
const SHARE_B = "22".repeat(32) + "02";

function io(stdin: PassThrough): CliIO {
  return {
    stdout: new PassThrough(),
    stderr: new PassThrough(),
    stdin,
    env: {},
    stdinIsTTY: false,
    stdoutIsTTY: false,
    stderrIsTTY: false,
    cwd: tmpdir(),
  };
}

describe("share input", () => {
  // Regression: a stdin that never closes (ssh without -n, a spawned process) hung runs whose shares were all in files.
  it("does not read stdin when share files are given", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-share-input-"));
    writeFileSync(join(dir, "a.txt"), SHARE_A);
    const neverEnds = new PassThrough();
    let read = false;
    const source = await shareSourceFromOptions({ shareFile: [join(dir, "a.txt")] }, io(neverEnds), async () => {
      read = true;
      return Buffer.alloc(0);
    });
    expect(read).toBe(false);
    const ctx = { progressLine: "", remaining: 1 };
    expect((await source.next(ctx))?.hex).toBe(SHARE_A);
    expect(await source.next(ctx)).toBeNull();
  });

  it("reads stdin too with --share-file -, files first", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-share-input-"));
    writeFileSync(join(dir, "a.txt"), SHARE_A);
    const source = await shareSourceFromOptions(
      { shareFile: [join(dir, "a.txt"), "-"] },
      io(new PassThrough()),
      async () => Buffer.from(`${SHARE_B}\n`),
    );
    const ctx = { progressLine: "", remaining: 2 };
    expect((await source.next(ctx))?.hex).toBe(SHARE_A);
    expect((await source.next(ctx))?.hex).toBe(SHARE_B);
  });

  it("says what is missing when there are no shares at all", async () => {
    await expect(shareSourceFromOptions({}, io(new PassThrough()), async () => Buffer.alloc(0))).rejects.toThrow(
      /no shares given/,
    );
  });
});
