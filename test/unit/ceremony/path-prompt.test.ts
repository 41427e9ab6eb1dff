/** Issue 25 item 3: `~` and `~/...` at the interactive path prompts are expanded as a shell would. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { expandHome, interactiveShareSource } from "../../../src/ceremony/share-source.js";
import type { Prompter } from "../../../src/prompt/prompter.js";

describe("path prompts expand ~", () => {
  it("expandHome: ~ and ~/x only (not ~user, not a ~ inside)", () => {
    expect(expandHome("~", "/home/a")).toBe("/home/a");
    expect(expandHome("~/keys/a.age", "/home/a")).toBe("/home/a/keys/a.age");
    expect(expandHome("~bob/x", "/home/a")).toBe("~bob/x");
    expect(expandHome("keys/~/x", "/home/a")).toBe("keys/~/x");
  });

  it("the share file and key file prompts open ~/... from the home directory", async () => {
    const home = mkdtempSync(join(tmpdir(), "sk-home-"));
    writeFileSync(join(home, "alice.txt"), `${"ab".repeat(32)}05\n`);
    writeFileSync(join(home, "alice.key"), "not needed for a plaintext file\n");
    const answers = ["file", "~/alice.txt", "~/alice.key", ""];
    const said: string[] = [];
    const prompter = {
      say: (l: string) => said.push(l),
      select: async () => answers.shift(),
      secret: async () => answers.shift(),
      input: async () => answers.shift(),
      confirm: async () => false,
    } as unknown as Prompter;
    const share = await interactiveShareSource(prompter, { cwd: "/", home }).next({ progressLine: "", remaining: 1 });
    expect(said.filter((l) => l.startsWith("✗"))).toEqual([]);
    expect(share).toMatchObject({ operator: "alice", origin: "file alice.txt" });
  });
});
