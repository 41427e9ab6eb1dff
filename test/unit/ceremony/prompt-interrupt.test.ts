/**
 * Issue 26.3: Ctrl-C, Ctrl-D and signals at a share prompt end the run as "stop here" does, with what stopped it
 * (the real @inquirer/prompts over injected streams; the whole CLI under a real terminal and real signals is
 * test/integration/prompt-interrupt.test.ts).
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { newNode, runQuorum } from "../../../src/ceremony/quorum.js";
import { interactiveShareSource } from "../../../src/ceremony/share-source.js";
import { PromptInterrupted, ttyPrompter } from "../../../src/prompt/prompter.js";

const SHARE = `${"ab".repeat(32)}01`;

async function until(screen: () => string, text: string, from = 0): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const at = screen().indexOf(text, from);
    if (at >= 0) return at + text.length;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`never saw ${text}:\n${screen()}`);
}

function ceremony() {
  const input = new PassThrough();
  const output = new PassThrough();
  let screen = "";
  output.on("data", (c: Buffer) => {
    screen += c.toString("utf8");
  });
  const node = newNode("local", 0, 3);
  const run = runQuorum({
    targets: [{ node, submit: async () => ({ progress: node.progress + 1, complete: false }) }],
    source: interactiveShareSource(ttyPrompter({ input, output }), { cwd: "/" }),
    describe: () => undefined,
    prompt: ([n]) => ({ progressLine: `${n!.progress}/3`, remaining: 3 - n!.progress }),
  });
  return { input, screen: () => screen, run, node };
}

describe("an interrupted share prompt ends the run with what stopped it", () => {
  it("Ctrl-C at the hidden Share: prompt after one share: SIGINT, exit code 130, the share counted stays", async () => {
    const c = ceremony();
    let at = await until(c.screen, "how will you give your share?");
    c.input.write("\r");
    at = await until(c.screen, "Share:", at);
    c.input.write(`${SHARE}\r`);
    at = await until(c.screen, "Your name", at);
    c.input.write("alice\r");
    at = await until(c.screen, "how will you give your share?", at);
    c.input.write("\r");
    await until(c.screen, "Share:", at);
    c.input.write("\x03");
    const run = await c.run;
    expect(run.interrupted).toBeInstanceOf(PromptInterrupted);
    expect(run.interrupted).toMatchObject({ how: "SIGINT", exitCode: 130 });
    expect(run.given).toHaveLength(1);
    expect(c.node.progress).toBe(1);
  });

  it("Ctrl-D on an empty line at the choice: end of input, exit code 130, nothing given", async () => {
    const c = ceremony();
    await until(c.screen, "how will you give your share?");
    c.input.write("\x04");
    const run = await c.run;
    expect(run.interrupted).toMatchObject({ how: "EOF", exitCode: 130 });
    expect(run.given).toHaveLength(0);
  });

  it("SIGTERM sent to the process while a prompt is open: exit code 143, the process lives to say so", async () => {
    const before = process.listenerCount("SIGTERM");
    const c = ceremony();
    await until(c.screen, "how will you give your share?");
    process.emit("SIGTERM", "SIGTERM");
    const run = await c.run;
    expect(run.interrupted).toMatchObject({ how: "SIGTERM", exitCode: 143 });
    expect(process.listenerCount("SIGTERM")).toBe(before);
  });
});
