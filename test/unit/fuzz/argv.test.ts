/**
 * Fuzz: a share or key given on the command line where a path goes (issue 25, item 2). Every flag and argument of
 * every command that takes a path (<file>, <dir>, <path>), given a generated share or key: the run is refused before
 * the command reads anything, the message names the flag, and no output holds the value (nor 16 characters of it).
 */
import { createHash } from "node:crypto";
import { fc } from "@fast-check/vitest";
import { Command } from "commander";
import { afterAll, describe, expect, it } from "vitest";
import { registerCommands } from "../../../src/cli/commands/index.js";
import type { CliIO } from "../../../src/cli/io.js";
import { runSealkeeper } from "../../harness/run-cli.js";
import { expectNoSecret, params, RUNS, reportCounts, secretsIn, tick } from "./fuzz-kit.js";

const PATH = /[<[](?:[a-z-]*-)?(?:file|dir|path)[\]>]/;

interface PathFlag {
  /** The command's words, e.g. ["shares", "check"]. */
  words: string[];
  /** The flag (e.g. "--share-file"), or undefined for a positional argument. */
  flag?: string;
  /** The other options the command requires, with a harmless value each. */
  required: string[];
  /** The command's required positional arguments, with a harmless value each. */
  args: string[];
  /** Which positional argument is the path under test (else the flag is). */
  argIndex?: number;
}

/** Every path flag and path argument of every command, found from the program's own declarations. */
function pathFlags(): PathFlag[] {
  const program = new Command();
  registerCommands(program, {} as CliIO, []);
  const out: PathFlag[] = [];
  const walk = (cmd: Command, words: string[]) => {
    if (cmd.commands.length > 0) for (const sub of cmd.commands) walk(sub, [...words, sub.name()]);
    if (words.length === 0) return;
    const required = cmd.options
      .filter((o) => o.mandatory)
      .flatMap((o) => [o.long ?? o.short!, requiredValue(o.flags)]);
    const isPath = (name: string) => /^(?:[a-z-]*-)?(?:file|dir|path)s?$/.test(name);
    const args = cmd.registeredArguments
      .filter((a) => a.required)
      .map((a) => (isPath(a.name()) ? "/nonexistent/x" : "x"));
    for (const o of cmd.options) if (PATH.test(o.flags)) out.push({ words, flag: o.long ?? o.short!, required, args });
    cmd.registeredArguments.forEach((a, i) => {
      if (isPath(a.name())) out.push({ words, required, args, argIndex: i });
    });
  };
  walk(program, []);
  return out;
}

/** A value a required option accepts that is no secret (a path for a path, a number for a count). */
function requiredValue(flags: string): string {
  if (PATH.test(flags)) return "/nonexistent/x";
  if (/<n>|<seconds>/.test(flags)) return "1";
  if (/<url>|<api>/.test(flags)) return "http://127.0.0.1:1";
  return "x";
}

const BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A share or key as the servers and tools make them, from full-entropy bytes (fast-check's byte arrays lean to runs of
 * zeros, which no server hands out): an unseal share in hex or base64, a 32-byte key, an age secret key, a Vault
 * token, a legacy or OpenBao service token. Seeded by fast-check, so a failure replays and shrinks to its seed.
 */
const realSecretArb: fc.Arbitrary<string> = fc.tuple(fc.nat(), fc.nat({ max: 5 })).map(([n, kind]) => {
  const bytes = Buffer.concat([0, 1, 2].map((i) => createHash("sha256").update(`${n}:${i}`).digest()));
  const pick = (alphabet: string, len: number) =>
    Array.from(bytes.subarray(0, len), (b) => alphabet[b % alphabet.length]).join("");
  const share = Buffer.concat([bytes.subarray(0, 32), Buffer.from([1 + (bytes[40]! % 255)])]);
  return [
    share.toString("hex"),
    share.toString("base64"),
    bytes.subarray(0, 32).toString("hex"),
    `AGE-SECRET-KEY-1${pick(BECH32, 58).toUpperCase()}`,
    `hvs.${pick(BASE62, 24)}`,
    `s.${pick(BASE62, 24)}`,
  ][kind]!;
});

const flags = pathFlags();
afterAll(() => reportCounts({ "argv path flags": RUNS.medium }));

describe("a share or key given to a path flag", () => {
  it("there are path flags to check (the share-input ones among them)", () => {
    const names = flags.map((f) => `${f.words.join(" ")} ${f.flag ?? `<arg ${f.argIndex}>`}`);
    expect(names).toEqual(expect.arrayContaining(["unseal --share-file", "unseal --identity", "shares check --file"]));
    expect(flags.length).toBeGreaterThan(20);
  });

  it("is refused naming the flag, and never printed", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...flags), realSecretArb, async (f, secret) => {
        tick("argv path flags");
        const positional = [...f.args];
        if (f.argIndex !== undefined) positional[f.argIndex] = secret;
        const args = [...f.words, ...f.required, ...(f.flag ? [f.flag, secret] : []), ...positional];
        const run = await runSealkeeper(args, { env: { HOME: "/nonexistent" } });
        expect(run.code).toBe(1);
        expectNoSecret(`${run.stdout}\n${run.stderr}`, { secrets: [secret, ...secretsIn(secret)] });
        expect(run.stderr).toMatch(/takes a path, but was given what looks like a share or a key/);
        expect(run.stderr).toMatch(/shell history/);
      }),
      params("argv path flags", RUNS.medium),
    );
  });
});
