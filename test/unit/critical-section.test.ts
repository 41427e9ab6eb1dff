/**
 * Critical sections and the loss-tolerant output layer, in real child processes with real signals and real pipes.
 * (The integration tests run the whole CLI the same way against a real server: test/integration/never-lost-init.)
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const doneFile = join(mkdtempSync(join(tmpdir(), "sk-critical-")), "done");

/** Runs a TypeScript snippet (with tsx) as a child; `onLine` sees its stdout lines as they come. */
function runSnippet(
  code: string,
  onLine: (line: string, child: ReturnType<typeof spawn>) => void = () => {},
  shell?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const args = ["--import", "tsx", "--input-type=module", "-e", code];
  const child = shell
    ? spawn(
        "bash",
        ["-c", `${process.execPath} ${args.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ")} ${shell}`],
        {
          cwd: ROOT,
          env: { ...process.env, DONE_FILE: doneFile },
        },
      )
    : spawn(process.execPath, args, { cwd: ROOT });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c: Buffer) => {
    const before = out;
    out += c.toString();
    for (const line of out
      .slice(before.lastIndexOf("\n") + 1)
      .split("\n")
      .slice(0, -1))
      onLine(line, child);
  });
  child.stderr!.on("data", (c: Buffer) => {
    err += c.toString();
  });
  return new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout: out, stderr: err })),
  );
}

const SECTION = `
import { enterCriticalSection, deferredExitCode } from "./src/util/critical-section.ts";
const leave = enterCriticalSection({ doing: "writing the test files", wouldLose: "them", say: (l) => process.stderr.write(l + "\\n") });
process.stdout.write("entered\\n");
await new Promise((r) => process.stdin.once("data", r).resume());
`;

describe("critical sections", () => {
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
    ["SIGHUP", 129],
  ] as const) {
    it(`${sig} inside is deferred, announced once, and named by the exit code ${code}`, async () => {
      const child = spawn(
        process.execPath,
        [
          "--import",
          "tsx",
          "--input-type=module",
          "-e",
          `${SECTION}
          leave();
          process.stdout.write("left\\n");
          process.exitCode = deferredExitCode() ?? 0;`,
        ],
        { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] },
      );
      let out = "";
      let err = "";
      child.stderr.on("data", (c: Buffer) => {
        err += c.toString();
        // both signals were delivered and handled: let the section end
        if (/received while/.test(err)) setImmediate(() => child.stdin.end("go\n"));
      });
      child.stdout.on("data", (c: Buffer) => {
        out += c.toString();
        if (out === "entered\n") {
          child.kill(sig);
          child.kill(sig);
        }
      });
      const res = await new Promise<{ code: number | null }>((r) => child.on("close", (c) => r({ code: c })));
      expect(out).toBe("entered\nleft\n");
      expect(err.match(/received while/g)).toHaveLength(1);
      expect(err).toContain(`${sig} received while writing the test files; stopping now would lose them`);
      expect(res.code).toBe(code);
    });
  }

  it("outside a section (after leaving) signals behave as usual: the process ends by the signal", async () => {
    const res = await runSnippet(
      `import { enterCriticalSection } from "./src/util/critical-section.ts";
       enterCriticalSection({ doing: "x", wouldLose: "y", say: () => {} })();
       process.stdout.write("outside\\n");
       setInterval(() => {}, 1000);`,
      (line, child) => {
        if (line === "outside") child.kill("SIGTERM");
      },
    );
    expect(res.signal).toBe("SIGTERM");
  });
});

describe("loss-tolerant output", () => {
  it("a reader gone early (| head -c 1): every later write is swallowed and the work finishes", async () => {
    const res = await runSnippet(
      `import { lossTolerant } from "./src/cli/io.ts";
       import { writeFileSync } from "node:fs";
       const out = lossTolerant(process.stdout);
       for (let i = 0; i < 2000; i++) { out.write("line " + i + " ".repeat(100) + "\\n"); await new Promise((r) => setTimeout(r, 1)); }
       writeFileSync(process.env.DONE_FILE, "done");`,
      () => {},
      `| head -c 1 >/dev/null; test -f "$DONE_FILE" && echo finished`,
    );
    expect(res.stdout).toBe("finished\n");
    expect(res.stderr).not.toMatch(/EPIPE|Error/);
  });
});
