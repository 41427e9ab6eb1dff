/**
 * "Never lost, for real" (issue 12), init: the BUILT CLI as a real child process against a real server (file storage,
 * one node, wiped between tests) through a fault-injecting proxy (test/harness/fault-proxy.ts). Every signal while
 * the server's answer is held back, --timeout shorter than that delay, stdout and stderr closed early, the parent
 * shell and its terminal killed: the node is initialised AND every sealed file opens with its operator's key (real
 * age and gpg) AND the shares unseal the node. Then the failures that do lose the answer (connection cut, cut half-way,
 * reset, SIGKILL): the CLI or the next `status` / `init` says exactly what happened. Two inits at once: one wins.
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, spawnCli, waitUntil } from "../harness/child-cli.js";
import type { TestNode } from "../harness/cluster.js";
import type { FaultProxy } from "../harness/fault-proxy.js";
import {
  answerLaterThanTimeout,
  type NeverLostBed,
  SIGNAL_CODES,
  SIGNALS,
  signalDuringHeldAnswer,
  startNeverLostBed,
} from "../harness/never-lost.js";
import { type AgeOperator, ageDecrypt, gpgDecrypt, type PgpOperator } from "../harness/operators.js";

let bed: NeverLostBed;
let node: TestNode;
let proxy: FaultProxy;
let work: string;
let alice: AgeOperator;
let bob: AgeOperator;
let carol: PgpOperator;
let holder: AgeOperator;
let n = 0;

beforeAll(async () => {
  bed = await startNeverLostBed("sk-never-lost-");
  ({ node, proxy, work, alice, bob, carol, holder } = bed);
}, 180_000);

afterAll(async () => {
  await bed?.close();
});

afterEach(async () => {
  // each test starts from an uninitialised node
  const c = node.client();
  const initialised = await c.initStatus().catch(() => true);
  await c.close();
  if (initialised) await node.wipe();
}, 120_000);

/** A fresh directory for one run: its own $HOME (rescue bundles, the pending journal) and output directory. */
function runDir(): { dir: string; home: string; out: string } {
  const dir = join(work, `run-${++n}`);
  const home = join(dir, "home");
  mkdirSync(home, { recursive: true });
  return { dir, home, out: join(dir, "ceremony") };
}

function initArgs(out: string, extra: string[] = []): string[] {
  return [
    "init",
    "--address",
    proxy.address,
    "--shares",
    "3",
    "--threshold",
    "2",
    "--operator",
    `alice=age:${alice.recipient}`,
    "--operator",
    `bob=age:${bob.recipient}`,
    "--operator",
    `carol=pgp:${carol.publicKeyPath}`,
    "--root-token-recipient",
    `age:${holder.recipient}`,
    "--out",
    out,
    ...extra,
  ];
}

/**
 * Every sealed file in `dir` opens with its operator's key (real age and gpg), and two of the shares unseal the node:
 * nothing was lost.
 */
async function assertNothingLost(dir: string): Promise<void> {
  const shares = [
    ageDecrypt(alice, join(dir, "alice.age")).trim(),
    ageDecrypt(bob, join(dir, "bob.age")).trim(),
    gpgDecrypt(carol, join(dir, "carol.asc")).trim(),
  ];
  for (const s of shares) expect(s).toMatch(/^[0-9a-f]{66}$/);
  expect(ageDecrypt(holder, join(dir, "root-token.age")).trim().length).toBeGreaterThan(20);
  const c = node.client();
  try {
    expect((await c.sealStatus()).initialized).toBe(true);
    await c.unseal({ key: shares[0]! });
    const after = await c.unseal({ key: shares[2]! });
    expect(after.sealed).toBe(false);
  } finally {
    await c.close();
  }
}

async function nodeInitialised(): Promise<boolean> {
  const c = node.client();
  try {
    return await c.initStatus();
  } finally {
    await c.close();
  }
}

describe("init: nothing lost", () => {
  for (const sig of SIGNALS) {
    it(`${sig} while the server's answer is delayed: deferred, everything written, exit ${SIGNAL_CODES[sig]}`, async () => {
      const { home, out } = runDir();
      proxy.arm("hold");
      const run = spawnCli(initArgs(out), { env: { HOME: home } });
      await run.waitForStderr(/init sent to/);
      const res = await signalDuringHeldAnswer(run, proxy, sig, "the only copy of the shares and the root token");
      expect(res.stdout).toContain("initialised: unseal shares, 2 of 3");
      expect(existsSync(join(out, "manifest.json"))).toBe(true);
      await assertNothingLost(out);
      // the pending record is settled: nothing to diagnose
      expect(readdirSync(join(home, ".local", "state", "sealkeeper", "pending"))).toEqual([]);
    });
  }

  it("--timeout shorter than the server's answer: it keeps waiting, says so, and writes everything", async () => {
    const { home, out } = runDir();
    proxy.arm("hold");
    const run = spawnCli(initArgs(out, ["--timeout", "1s"]), { env: { HOME: home } });
    await run.waitForStderr(/waiting for its answer with no time limit/);
    // the fault: an answer three times later than the timeout
    const res = await answerLaterThanTimeout(run, proxy);
    expect(res.code).toBe(0);
    await assertNothingLost(out);
  });

  it("stdout and stderr closed early (| head -c 1): output errors swallowed, files written", async () => {
    const { dir, home, out } = runDir();
    proxy.arm("hold");
    const script =
      `node ${JSON.stringify(join(import.meta.dirname, "..", "..", "bin", "sealkeeper"))} ` +
      `${initArgs(out)
        .map((a) => `'${a}'`)
        .join(" ")} 2>&1 | { head -c 1 > head.out; touch head.exited; }; echo "\${PIPESTATUS[0]}" > code`;
    const shell = spawn("bash", ["-c", script], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: home, NO_COLOR: "1" },
      stdio: "ignore",
    });
    const shellExit = new Promise<number | null>((r) => shell.on("close", (c) => r(c)));
    await proxy.triggered();
    // the reader is gone before the answer comes: every later line hits EPIPE
    await waitUntil("head to exit", () => existsSync(join(dir, "head.exited")));
    proxy.release();
    await shellExit;
    expect(readFileSync(join(dir, "code"), "utf8").trim()).toBe("0");
    expect(readFileSync(join(dir, "head.out"), "utf8")).toBe("p"); // "pre-flight ok: ..."
    await assertNothingLost(out);
  });

  it("the parent shell killed and its terminal gone (a dropped ssh session): SIGHUP deferred, files written", async () => {
    const { dir, home, out } = runDir();
    const sock = join(dir, "tmux.sock");
    proxy.arm("hold");
    const cmd =
      `cd ${JSON.stringify(dir)} && HOME=${JSON.stringify(home)} NO_COLOR=1 node ` +
      `${JSON.stringify(join(import.meta.dirname, "..", "..", "bin", "sealkeeper"))} ` +
      `${initArgs(out)
        .map((a) => `'${a}'`)
        .join(" ")}; echo $? > code`;
    execFileSync("tmux", ["-S", sock, "new-session", "-d", "-x", "200", "-y", "50", "bash", "-c", cmd]);
    await proxy.triggered();
    const shellPid = Number(
      execFileSync("tmux", ["-S", sock, "list-panes", "-F", "#{pane_pid}"]).toString("utf8").trim(),
    );
    const pendingDir = join(home, ".local", "state", "sealkeeper", "pending");
    await waitUntil("the pending record", () => existsSync(pendingDir) && readdirSync(pendingDir).length === 1);
    const cliPid = (JSON.parse(readFileSync(join(pendingDir, readdirSync(pendingDir)[0]!), "utf8")) as { pid: number })
      .pid;
    // the shell dies, then the terminal: tmux closes the pane's pty and sends SIGHUP, as sshd does (with its only
    // pane's shell gone, tmux may already have done so by itself)
    process.kill(shellPid, "SIGKILL");
    try {
      execFileSync("tmux", ["-S", sock, "kill-server"], { stdio: "ignore" });
    } catch {
      // the server already went with its last pane
    }
    const alive = () => {
      try {
        process.kill(cliPid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(alive()).toBe(true);
    proxy.release();
    await waitUntil("the CLI to finish", () => !alive());
    expect(existsSync(join(dir, "code"))).toBe(false); // nobody was left to record it
    await assertNothingLost(out);
    expect(readdirSync(pendingDir)).toEqual([]);
  });

  it("two inits at the same moment: exactly one initialises, the other says someone else did", async () => {
    const a = runDir();
    const b = runDir();
    proxy.arm("gate");
    const runA = spawnCli(initArgs(a.out), { env: { HOME: a.home } });
    const runB = spawnCli(initArgs(b.out), { env: { HOME: b.home } });
    // both passed their pre-flight (the node was uninitialised for both) and sent the init
    await waitUntil("both init requests", () => proxy.gated() === 2);
    proxy.release();
    const [ra, rb] = await Promise.all([runA.exited, runB.exited]);
    const codes = [ra.code, rb.code].sort();
    expect(codes).toEqual([0, 2]);
    const [winner, loser] = ra.code === 0 ? [a, b] : [b, a];
    const lost = ra.code === 0 ? rb : ra;
    expect(lost.stderr).toMatch(/was initialised by someone else while this init was being prepared/);
    expect(lost.stderr).toContain("nothing of theirs was touched");
    // the loser wrote no share file, no manifest, no rescue bundle
    expect(readdirSync(loser.out).filter((f) => f !== "transcript.jsonl")).toEqual([]);
    expect(readdirSync(loser.home).filter((f) => f.startsWith("sealkeeper-rescue-"))).toEqual([]);
    await assertNothingLost(winner.out);
  });
});

/** `bootstrap cluster` on this one node: its ceremony file (the same operators) and the reference spec. */
function bootstrapArgs(dir: string, out: string, extra: string[] = []): string[] {
  const ceremony = join(dir, "ceremony.yaml");
  writeFileSync(
    ceremony,
    [
      "shares: 3",
      "threshold: 2",
      "operators:",
      `  - { name: alice, recipient: "age:${alice.recipient}" }`,
      `  - { name: bob, recipient: "age:${bob.recipient}" }`,
      `  - { name: carol, recipient: "pgp:${carol.publicKeyPath}" }`,
      `rootToken: { recipient: "age:${holder.recipient}" }`,
      "",
    ].join("\n"),
  );
  // the reference spec, its audit log in this run's directory
  cpSync(join(REPO_ROOT, "examples", "reference"), join(dir, "spec"), { recursive: true });
  const spec = join(dir, "spec", "bootstrap.yaml");
  writeFileSync(spec, readFileSync(spec, "utf8").replace(/file_path: \S+/, `file_path: ${join(dir, "audit.log")}`));
  return ["bootstrap", "cluster", "--ceremony", ceremony, "-f", spec, "-a", proxy.address, "-o", out, ...extra];
}

describe("bootstrap cluster: its init is the same critical section", () => {
  it("SIGTERM (a cancelled CI job) while the init answer is held back: shares and root token written, the run stops right after init with 143", async () => {
    const { dir, home, out } = runDir();
    proxy.arm("hold");
    const run = spawnCli(bootstrapArgs(dir, out), { env: { HOME: home } });
    await run.waitForStderr(/init sent to/);
    const res = await signalDuringHeldAnswer(run, proxy, "SIGTERM", "the only copy of the shares and the root token");
    expect(res.stderr).toMatch(/SIGTERM received during init \(deferred until its answer was written\)/);
    expect(res.stderr).toMatch(/The shares are safe, sealed to each operator, in /);
    // it stopped before the next step: the node is initialised and still sealed, nothing was unsealed or applied
    expect(res.stderr).not.toMatch(/unsealed \d+ node/);
    const c = node.client();
    try {
      expect((await c.sealStatus()).sealed).toBe(true);
    } finally {
      await c.close();
    }
    await assertNothingLost(out);
  });

  it("--timeout shorter than the init answer: it keeps waiting, then goes on with the bootstrap", async () => {
    const { dir, home, out } = runDir();
    proxy.arm("hold");
    // the point is init's answer, received and written despite --timeout 1s; the run then goes on (how far the
    // reference spec gets on one file-storage node does not matter here)
    const run = spawnCli(bootstrapArgs(dir, out, ["--timeout", "1s"]), { env: { HOME: home } });
    await run.waitForStderr(/waiting for its answer with no time limit/);
    const res = await answerLaterThanTimeout(run, proxy);
    expect(res.stderr).toMatch(/init done: unseal shares 2 of 3/);
    expect(res.stderr).toMatch(/unsealed 1 node\(s\)/);
    await assertNothingLost(out);
  });
});

describe("init: when the answer is lost anyway, the CLI and the next run say exactly what happened", () => {
  for (const fault of ["cut", "half", "reset"] as const) {
    it(`connection ${fault === "cut" ? "closed after the request" : fault === "half" ? "cut half-way through the answer" : "reset"}: exit 2, then status and init diagnose it`, async () => {
      const { home, out } = runDir();
      proxy.arm(fault);
      const run = spawnCli(initArgs(out), { env: { HOME: home } });
      const res = await run.exited;
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/after the init request was sent, and the server initialised the node/);
      expect(res.stderr).toMatch(/wipe its storage/);
      expect(await nodeInitialised()).toBe(true);
      const lines = readFileSync(join(out, "transcript.jsonl"), "utf8").trim().split("\n");
      expect(lines.map((l) => (JSON.parse(l) as { action: string }).action)).toEqual([
        "init-start",
        "init-answer-lost",
      ]);
      await assertDiagnosed(home, out, /the connection was lost after the request was sent/);
    });
  }

  it("SIGKILL while the answer is delayed (the one fatal case): the next status and init say what happened", async () => {
    const { home, out } = runDir();
    proxy.arm("hold");
    const run = spawnCli(initArgs(out), { env: { HOME: home } });
    await proxy.triggered();
    run.child.kill("SIGKILL");
    const res = await run.exited;
    expect(res.signal).toBe("SIGKILL");
    proxy.release();
    await proxy.answered();
    expect(await nodeInitialised()).toBe(true);
    // the transcript line was on disk before the request went out
    const lines = readFileSync(join(out, "transcript.jsonl"), "utf8").trim().split("\n");
    expect((JSON.parse(lines.at(-1)!) as { action: string }).action).toBe("init-start");
    await assertDiagnosed(home, out, /the process ended \(SIGKILL, a crash, power loss\) after the request was sent/);
  });

  it("the record is tied to the node, not the URL's spelling, checked against it, and stale once it is unsealed (issue 27)", async () => {
    const { home, out } = runDir();
    proxy.arm("cut");
    expect((await spawnCli(initArgs(out), { env: { HOME: home } }).exited).code).toBe(2);
    // another spelling of the same address (localhost, a trailing slash): the same warning, and init refuses with it
    const variant = `${proxy.address.replace("127.0.0.1", "localhost")}/`;
    const status = await spawnCli(["status", "--address", variant, "--format", "json"], { env: { HOME: home } }).exited;
    expect(status.stderr).toMatch(/the connection was lost after the request was sent/);
    const [seen] = JSON.parse(status.stdout) as { lostInit?: { stale: boolean; text: string; records: string[] } }[];
    expect(seen!.lostInit).toMatchObject({ stale: false, records: [expect.stringMatching(/\.json$/)] });
    const init = await spawnCli(
      initArgs(`${out}-again`).map((a) => (a === proxy.address ? variant : a)),
      {
        env: { HOME: home },
      },
    ).exited;
    expect(init.code).toBe(2);
    expect(init.stderr).not.toContain("already initialised; nothing was changed");
    expect(init.stderr).toMatch(/nobody can ever unseal this cluster/);
    // someone else wipes the node and initialises and unseals it again: the record is stale, and said so
    await node.wipe();
    const c = node.client();
    const fresh = await c.init({ secret_shares: 1, secret_threshold: 1 });
    await c.unseal({ key: fresh.keys[0]! });
    await c.close();
    const after = await spawnCli(["status", "--address", proxy.address, "--format", "json"], { env: { HOME: home } })
      .exited;
    expect(after.stderr).toMatch(/^note: .* that lost its answer is stale: the node is unsealed now/m);
    expect(after.stderr).not.toMatch(/nobody can ever unseal/);
    expect((JSON.parse(after.stdout) as { lostInit?: { stale: boolean } }[])[0]!.lostInit?.stale).toBe(true);
    // and it was removed: the next look says nothing
    const again = await spawnCli(["status", "--address", proxy.address], { env: { HOME: home } }).exited;
    expect(again.stderr).not.toMatch(/lost its answer|nobody can ever unseal/);
  });
});

/** `status` warns and `init` refuses, both naming the lost init, the directory to check and the way out. */
async function assertDiagnosed(home: string, out: string, how: RegExp): Promise<void> {
  const status = await spawnCli(["status", "--address", proxy.address], { env: { HOME: home } }).exited;
  expect(status.code).toBe(2); // sealed
  expect(status.stderr).toMatch(how);
  expect(status.stderr).toContain(`No manifest is in ${out} and no rescue bundle names this node`);
  expect(status.stderr).toMatch(/check first: .*manifest\.json and the share files/);
  expect(status.stderr).toMatch(/nobody can ever unseal this cluster: stop every node, wipe its storage/);
  const again = await spawnCli(initArgs(`${out}-again`), { env: { HOME: home } }).exited;
  expect(again.code).toBe(2);
  expect(again.stderr).toMatch(how);
  expect(again.stderr).not.toContain("already initialised; nothing was changed");
  // another operator's machine (no record) gets the plain answer
  const elsewhere = join(work, `elsewhere-${++n}`);
  mkdirSync(elsewhere);
  const other = await spawnCli(["status", "--address", proxy.address], { env: { HOME: elsewhere } }).exited;
  expect(other.stderr).not.toMatch(how);
  writeFileSync(join(elsewhere, ".keep"), "");
}
