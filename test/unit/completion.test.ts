import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { beforeAll, describe, expect, it } from "vitest";
import { registerCommands } from "../../src/cli/commands/index.js";
import { type CompletionNode, describeCommandTree, renderBashCompletion } from "../../src/cli/completion.js";
import type { CliIO } from "../../src/cli/io.js";
import { runSealkeeper } from "../harness/run-cli.js";

const hasZsh = spawnSync("zsh", ["-c", "true"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "sk-completion-"));
// a file the file-valued flags should offer
const sample = join(dir, "alice.asc");
writeFileSync(sample, "");

let bashScript: string;
let zshScript: string;
let tree: CompletionNode;

/** The same program tree the CLI builds, read independently of the completion command. */
function buildTree(): CompletionNode {
  const program = new Command().name("sealkeeper").version("0.0.0", "-v, --version");
  registerCommands(program, {} as CliIO);
  return describeCommandTree(program);
}

function walk(node: CompletionNode): CompletionNode[] {
  return [node, ...node.subcommands.flatMap(walk)];
}

/** Runs the bash completion function once per case; returns COMPREPLY of each, one array per case. */
function completeBash(cases: string[][]): string[][] {
  const lines = cases.map((words) => {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(" ");
    return `COMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; COMPREPLY=(); _sealkeeper; printf '%s\\t' "\${COMPREPLY[@]}"; echo`;
  });
  const r = spawnSync("bash", ["--norc", "-c", `source "$1"\n${lines.join("\n")}`, "bash", join(dir, "sk.bash")], {
    encoding: "utf8",
  });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout
    .split("\n")
    .slice(0, cases.length)
    .map((l) => l.split("\t").filter((w) => w !== ""));
}

beforeAll(async () => {
  const bash = await runSealkeeper(["completion", "bash"]);
  expect(bash.code).toBe(0);
  bashScript = bash.stdout;
  writeFileSync(join(dir, "sk.bash"), bashScript);
  const zsh = await runSealkeeper(["completion", "zsh"]);
  expect(zsh.code).toBe(0);
  zshScript = zsh.stdout;
  writeFileSync(join(dir, "sk.zsh"), zshScript);
  tree = buildTree();
});

describe("sealkeeper completion bash", () => {
  it("is valid bash", () => {
    const r = spawnSync("bash", ["-n", join(dir, "sk.bash")], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("names every command and subcommand, and a sample of flags", () => {
    const paths = walk(tree).map((n) => n.path.join(" "));
    expect(paths.length).toBeGreaterThan(25);
    for (const path of paths) expect(bashScript).toContain(`'${path}')`);
    // an independent sample, so a tree-reading bug cannot hide a command
    for (const path of ["status", "init", "unseal", "root generate", "root revoke", "rekey", "shamir split"]) {
      expect(paths).toContain(path);
    }
    for (const path of ["bootstrap plan", "bootstrap apply", "autounseal migrate", "shares check", "completion"]) {
      expect(paths).toContain(path);
    }
    for (const flag of ["--share-file", "--token-recipient", "--detailed-exitcode", "--recovery-operator", "--yes"]) {
      expect(bashScript).toContain(flag);
    }
  });

  it("completes commands, subcommands, flags and their values", () => {
    const got = completeBash([
      ["sealkeeper", ""],
      ["sealkeeper", "ro"],
      ["sealkeeper", "root", ""],
      ["sealkeeper", "root", "generate", "--token-r"],
      ["sealkeeper", "unseal", "-a", "http://127.0.0.1:8200", "--share-file", join(dir, "ali")],
      ["sealkeeper", "unseal", "-a", "http://127.0.0.1:8200", "--ide"],
      ["sealkeeper", "unseal", "--address", ""],
      ["sealkeeper", "completion", ""],
      ["sealkeeper", "autounseal", "awskms", "--target", "o"],
      ["sealkeeper", "help", "r"],
      ["sealkeeper", "transcript", "verify", join(dir, "al")],
      ["sealkeeper", "bootstrap", "plan", "--file", "=", join(dir, "al")],
    ]);
    expect(got[0]).toEqual(expect.arrayContaining(["status", "init", "unseal", "root", "rekey", "completion"]));
    expect(got[1]).toEqual(["root"]);
    expect(got[2]).toEqual(["revoke", "generate", "help"]);
    expect(got[3]).toEqual(["--token-recipient"]);
    expect(got[4]).toEqual([sample]);
    expect(got[5]).toEqual(["--identity"]);
    expect(got[6]).toEqual([]); // a URL: nothing to offer, and never file names
    expect(got[7]).toEqual(["bash", "zsh"]);
    expect(got[8]).toEqual(["openbao"]);
    expect(got[9]).toEqual(["root", "rekey"]);
    expect(got[10]).toEqual([sample]);
    expect(got[11]).toEqual([sample]);
  });

  it("offers exactly each command's own flags (no drift from the program tree)", () => {
    const nodes = walk(tree).filter((n) => n.flags.length > 0);
    const got = completeBash(nodes.map((n) => ["sealkeeper", ...n.path, "-"]));
    nodes.forEach((node, i) => {
      const expected = node.flags.flatMap((f) => f.names).filter((n) => n.startsWith("-"));
      expect({ path: node.path.join(" "), flags: [...got[i]!].sort() }).toEqual({
        path: node.path.join(" "),
        flags: [...expected].sort(),
      });
    });
  });

  it("walks past flag values: a value that names a subcommand does not select it", () => {
    // no group of the real CLI has a value flag, so a synthetic program: `tool --profile sub <TAB>`
    const program = new Command().name("tool").option("--profile <name>", "don't: a quote to escape");
    program.command("sub").option("--deep", "a flag of sub");
    program.command("other");
    const script = join(dir, "tool.bash");
    writeFileSync(script, renderBashCompletion(describeCommandTree(program)));
    const r = spawnSync(
      "bash",
      [
        "--norc",
        "-c",
        `source "$1"
COMP_WORDS=(tool --profile sub ''); COMP_CWORD=3; _tool; echo "\${COMPREPLY[*]}"
COMP_WORDS=(tool sub ''); COMP_CWORD=2; _tool; echo "\${COMPREPLY[*]}"`,
        "bash",
        script,
      ],
      { encoding: "utf8" },
    );
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("sub other help\n--deep -h --help\n");
  });
});

describe("sealkeeper completion zsh", () => {
  it.skipIf(!hasZsh)("is valid zsh", () => {
    const r = spawnSync("zsh", ["-n", join(dir, "sk.zsh")], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it.skipIf(!hasZsh)("completes with descriptions (compsys functions stubbed to record what is offered)", () => {
    const stubs = `
_describe() { local arr=\${@[-1]}; print -rl -- "describe \${@[2]}" \${(P)arr} }
compadd() { shift; print -r -- "compadd $*" }
_files() { print -r -- "files $*" }
_message() { print -r -- "message $*" }
t() { words=("$@"); CURRENT=\${#words}; _sealkeeper; print -- "--" }`;
    const cases = [
      `t sealkeeper root ''`,
      `t sealkeeper root generate --token`,
      `t sealkeeper root generate --share-file ''`,
      `t sealkeeper completion ''`,
      `t sealkeeper unseal --address ''`,
      `t sealkeeper rekey --out ''`,
    ];
    const r = spawnSync("zsh", ["-f", "-c", `source "$1"\n${stubs}\n${cases.join("\n")}`, "zsh", join(dir, "sk.zsh")], {
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    const out = r.stdout.split("--\n");
    expect(out[0]).toContain("describe commands\n");
    expect(out[0]).toMatch(/^revoke:revoke the root token/m);
    expect(out[0]).toMatch(/^generate:break-glass/m);
    expect(out[1]).toContain("describe options\n");
    expect(out[1]).toMatch(/^--token-recipient:seal the decoded token/m);
    expect(out[2]).toBe("files \n");
    expect(out[3]).toBe("compadd bash zsh\n");
    expect(out[4]).toBe("message url\n");
    expect(out[5]).toBe("files -/\n");
  });

  it("starts with #compdef so it can be installed in $fpath", () => {
    expect(zshScript.startsWith("#compdef sealkeeper\n")).toBe(true);
  });
});

describe("sealkeeper completion: bad input", () => {
  it("refuses an unknown shell, naming it", async () => {
    const r = await runSealkeeper(["completion", "fish"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'fish'");
    expect(r.stderr).toContain("bash, zsh");
    expect(r.stdout).toBe("");
  });

  it("requires a shell", async () => {
    const r = await runSealkeeper(["completion"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("shell");
  });
});
