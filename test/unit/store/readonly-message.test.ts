import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { describeErrno, ShareStore } from "../../../src/store/share-store.js";
import { faultyFs } from "./fault-fs.js";

describe("an output directory that cannot be written says why (issue 35)", () => {
  it("a read-only file system is named as such, not as a bare errno code", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sk-ro-")), "out");
    const store = new ShareStore(dir, { fs: faultyFs({ open: () => "EROFS" }) });
    await expect(store.checkWritable()).rejects.toThrow(/is not writable: it is on a read-only file system \(EROFS\)/);
  });
  it("words for the usual codes; an unknown code as it is", () => {
    expect(describeErrno("EACCES")).toBe("permission denied (EACCES)");
    expect(describeErrno("ENOSPC")).toBe("the disk is full (ENOSPC)");
    expect(describeErrno("EWEIRD")).toBe("EWEIRD");
  });
});
