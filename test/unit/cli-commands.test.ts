import { PassThrough, Writable } from "node:stream";
import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { registerCommands } from "../../src/cli/commands/index.js";
import type { CliIO } from "../../src/cli/io.js";
import { runCli } from "../../src/cli/main.js";

/** An in-process CLI run's streams, collected. */
function captureIO() {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) =>
    new Writable({
      write(chunk, _encoding, callback) {
        into.push(String(chunk));
        callback();
      },
    });
  const io: CliIO = {
    stdout: sink(out),
    stderr: sink(err),
    stdin: new PassThrough(),
    env: { NO_COLOR: "1" },
    stdinIsTTY: false,
    stdoutIsTTY: false,
    stderrIsTTY: false,
    cwd: process.cwd(),
  };
  return { io, stdout: () => out.join(""), stderr: () => err.join("") };
}

const names = (argv?: string[]) => {
  const program = new Command();
  registerCommands(program, {} as CliIO, argv);
  return program.commands.map((c) => c.name());
};

const ALL = [
  "status",
  "init",
  "unseal",
  "transcript",
  "shamir",
  "shares",
  "autounseal",
  "bootstrap",
  "policy",
  "root",
  "rekey",
  "completion",
];

describe("registerCommands: only the command the line names", () => {
  it("declares everything without a command line, for help, and for a line naming no known command", () => {
    expect(names()).toEqual(ALL);
    expect(names([])).toEqual(ALL);
    expect(names(["--help"])).toEqual(ALL);
    expect(names(["help", "status"])).toEqual(ALL);
    expect(names(["stat"])).toEqual(ALL);
    // names of Object.prototype are not commands
    expect(names(["constructor"])).toEqual(ALL);
    expect(names(["__proto__"])).toEqual(ALL);
  });

  it("declares one command (bootstrap and root are each two register functions on one group)", () => {
    expect(names(["status", "-a", "http://127.0.0.1:8200"])).toEqual(["status"]);
    expect(names(["-v", "unseal"])).toEqual(["unseal"]);
    const program = new Command();
    registerCommands(program, {} as CliIO, ["bootstrap", "plan"]);
    expect(program.commands.map((c) => c.name())).toEqual(["bootstrap"]);
    const subs = program.commands[0]!.commands.map((c) => c.name()).sort();
    const full = new Command();
    registerCommands(full, {} as CliIO);
    expect(subs).toEqual(
      full.commands
        .find((c) => c.name() === "bootstrap")!
        .commands.map((c) => c.name())
        .sort(),
    );
    expect(subs).toContain("cluster");
    expect(names(["root", "generate"])).toEqual(["root"]);
  });

  it("declares everything for completion, which lists the others", () => {
    expect(names(["completion", "bash"])).toEqual(ALL);
  });

  it("help and suggestions are unchanged: a typo still gets 'Did you mean status?'", async () => {
    const io = captureIO();
    expect(await runCli(["stat"], io.io)).toBe(1);
    expect(io.stderr()).toContain("Did you mean status?");
    const help = captureIO();
    expect(await runCli(["--help"], help.io)).toBe(0);
    for (const n of ALL) expect(help.stdout()).toContain(`  ${n}`);
  });
});
