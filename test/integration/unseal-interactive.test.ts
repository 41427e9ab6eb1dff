/**
 * The interactive unseal ceremony: once through injected streams (the real @inquirer/prompts, keystrokes written to
 * its input), and once through a real pseudo-terminal (tmux) running the built CLI, to prove the share is masked and
 * never echoed.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { interactiveShareSource } from "../../src/ceremony/share-source.js";
import { runUnseal } from "../../src/ceremony/unseal.js";
import { ttyPrompter } from "../../src/prompt/prompter.js";
import { sleep, startNode, type TestNode } from "../harness/cluster.js";

let node: TestNode;
let keys: string[];

beforeAll(async () => {
  node = await startNode({ storage: "file" });
  const c = node.client();
  keys = (await c.init({ secret_shares: 3, secret_threshold: 2 })).keys;
  await c.close();
});
afterAll(async () => {
  await node?.stop();
});

/** A scripted person at a terminal: waits for text to appear, then types. */
class Keyboard {
  readonly input = new PassThrough();
  readonly output = new PassThrough();
  screen = "";
  constructor() {
    this.output.on("data", (c: Buffer) => {
      this.screen += c.toString("utf8");
    });
  }
  async waitFor(text: string | RegExp, from = 0): Promise<number> {
    for (let i = 0; i < 200; i++) {
      const rest = this.screen.slice(from);
      const idx = typeof text === "string" ? rest.indexOf(text) : rest.search(text);
      if (idx >= 0) return from + idx + 1;
      await sleep(25);
    }
    throw new Error(`never saw ${text} on screen:\n${this.screen.slice(-800)}`);
  }
  type(text: string): void {
    for (const ch of text) this.input.write(ch);
  }
}

describe("interactive unseal through the real prompts", () => {
  it("two operators paste their shares (masked); progress and contributors are shown; the node unseals", async () => {
    const kb = new Keyboard();
    const client = node.client();
    const ceremony = runUnseal({
      clients: [client],
      source: interactiveShareSource(ttyPrompter({ input: kb.input, output: kb.output }), { cwd: tmpdir() }),
    });
    let at = await kb.waitFor("how will you give your share?");
    kb.type("\r"); // first choice: paste
    // the hidden share prompt comes right after the choice; the name after the share
    at = await kb.waitFor("Share:", at);
    kb.type(`${keys[0]}\r`);
    at = await kb.waitFor("Your name", at);
    kb.type("alice\r");
    at = await kb.waitFor("1/2", at);
    at = await kb.waitFor("how will you give your share?", at);
    kb.type("\r");
    at = await kb.waitFor("Share:", at);
    kb.type(`${keys[1]}\r`);
    at = await kb.waitFor("Your name", at);
    kb.type("bob\r");
    const report = await ceremony;
    await client.close();
    expect(report.nodes[0]).toMatchObject({ state: "unsealed", contributors: ["alice", "bob"] });
    expect(kb.screen).not.toContain(keys[0]);
    expect(kb.screen).not.toContain(keys[1]);
    expect(kb.screen).toContain("*".repeat(66));
  });

  it("a typo is explained and asked again, without ending the ceremony", async () => {
    await node.restart();
    const kb = new Keyboard();
    const client = node.client();
    const ceremony = runUnseal({
      clients: [client],
      source: interactiveShareSource(ttyPrompter({ input: kb.input, output: kb.output }), { cwd: tmpdir() }),
    });
    let at = await kb.waitFor("how will you give your share?");
    kb.type("\r");
    at = await kb.waitFor("Share:", at);
    kb.type("oops-not-a-share\r");
    at = await kb.waitFor("Try again", at);
    for (const key of [keys[1], keys[2]]) {
      at = await kb.waitFor("how will you give your share?", at);
      kb.type("\r");
      at = await kb.waitFor("Share:", at);
      kb.type(`${key}\r`);
      at = await kb.waitFor("Your name", at);
      kb.type("\r");
    }
    const report = await ceremony;
    await client.close();
    expect(report.nodes[0]!.state).toBe("unsealed");
    expect(kb.screen).not.toContain("oops-not-a-share");
  });
});

function hasTmux(): boolean {
  try {
    execFileSync("tmux", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

describe("interactive unseal in a real pseudo-terminal (tmux)", () => {
  it("masks the share on screen and unseals", async () => {
    expect(hasTmux()).toBe(true);
    await node.restart();
    const dir = mkdtempSync(join(tmpdir(), "sk-pty-"));
    const session = `sk${process.pid}`;
    const script = join(dir, "run.sh");
    writeFileSync(
      script,
      `#!/bin/sh\ncd ${process.cwd()}\nNO_COLOR=1 node bin/sealkeeper unseal -a ${node.address}; echo "EXIT=$?"; sleep 30\n`,
      { mode: 0o700 },
    );
    const tmux = (...args: string[]) => execFileSync("tmux", args, { encoding: "utf8" });
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", script);
    const screen = () => tmux("capture-pane", "-p", "-t", session, "-S", "-200");
    const waitScreen = async (re: RegExp) => {
      for (let i = 0; i < 200; i++) {
        const s = screen();
        if (re.test(s)) return s;
        await sleep(50);
      }
      throw new Error(`never saw ${re}:\n${screen()}`);
    };
    try {
      for (const [i, key] of [keys[0]!, keys[2]!].entries()) {
        await waitScreen(new RegExp(`(how will you give your share\\?[\\s\\S]*){${i + 1}}`));
        tmux("send-keys", "-t", session, "Enter");
        await waitScreen(new RegExp(`(Share:[\\s\\S]*){${i + 1}}`));
        tmux("send-keys", "-t", session, "-l", key);
        tmux("send-keys", "-t", session, "Enter");
        await waitScreen(new RegExp(`(Your name[\\s\\S]*){${i + 1}}`));
        tmux("send-keys", "-t", session, `operator${i}`, "Enter");
      }
      const final = await waitScreen(/EXIT=\d/);
      expect(final).toContain("EXIT=0");
      expect(final).toContain("unsealed");
      expect(final).not.toContain(keys[0]!);
      expect(final).not.toContain(keys[2]!);
      expect(final).toMatch(/Share: \*{66}/);
    } finally {
      tmux("kill-session", "-t", session);
    }
  });

  it("a share pasted one prompt too far (at 'Your name') is refused, wiped, never shown nor recorded", async () => {
    await node.restart();
    const dir = mkdtempSync(join(tmpdir(), "sk-pty-"));
    const session = `sk${process.pid}b`;
    const script = join(dir, "run.sh");
    const transcript = join(dir, "transcript.jsonl");
    writeFileSync(
      script,
      `#!/bin/sh\ncd ${process.cwd()}\nNO_COLOR=1 node bin/sealkeeper unseal -a ${node.address} --transcript ${transcript}; echo "EXIT=$?"; sleep 30\n`,
      { mode: 0o700 },
    );
    const tmux = (...args: string[]) => execFileSync("tmux", args, { encoding: "utf8" });
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", script);
    const screen = () => tmux("capture-pane", "-p", "-t", session, "-S", "-300");
    // prompts are counted by their marks (? asking, ✔ answered): the refusal message quotes the prompts' words too
    const count = (re: RegExp) => (screen().match(re) ?? []).length;
    const waitCount = async (re: RegExp, n: number) => {
      for (let i = 0; i < 400; i++) {
        if (count(re) >= n) return;
        await sleep(50);
      }
      throw new Error(`never saw ${re} ${n} times:\n${screen()}`);
    };
    try {
      await waitCount(/how will you give your share\?/g, 1);
      tmux("send-keys", "-t", session, "Enter");
      await waitCount(/[✔?] Share:/g, 1);
      tmux("send-keys", "-t", session, "-l", keys[0]!);
      tmux("send-keys", "-t", session, "Enter");
      await waitCount(/[✔?] Your name/g, 1);
      // the mistake: the next share pasted at the name prompt
      tmux("send-keys", "-t", session, "-l", keys[1]!);
      tmux("send-keys", "-t", session, "Enter");
      await waitCount(/that looked like a share, a token or a key/g, 1);
      await waitCount(/[✔?] Your name/g, 2);
      tmux("send-keys", "-t", session, "alice", "Enter");
      await waitCount(/how will you give your share\?/g, 2);
      tmux("send-keys", "-t", session, "Enter");
      await waitCount(/[✔?] Share:/g, 2);
      tmux("send-keys", "-t", session, "-l", keys[1]!);
      tmux("send-keys", "-t", session, "Enter");
      await waitCount(/[✔?] Your name/g, 3);
      tmux("send-keys", "-t", session, "bob", "Enter");
      await waitCount(/EXIT=\d/g, 1);
      const final = screen();
      expect(final).toContain("EXIT=0");
      expect(final).toContain("it was not recorded and is not shown");
      // not the share, nor any 16-digit piece of it, anywhere on the screen or in its scrollback
      for (const key of [keys[0]!, keys[1]!]) {
        for (let i = 0; i + 16 <= key.length; i += 8) expect(final).not.toContain(key.slice(i, i + 16));
      }
      const recorded = readFileSync(transcript, "utf8");
      for (const key of [keys[0]!, keys[1]!]) expect(recorded).not.toContain(key.slice(0, 16));
      const operators = recorded
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { operator?: string }).operator)
        .filter((o) => o !== undefined);
      expect(new Set(operators)).toEqual(new Set(["alice", "bob"]));
    } finally {
      tmux("kill-session", "-t", session);
    }
  });
});
