/**
 * bootstrap in a pipeline (issue 35): exit codes that mean one thing, JSON on failure, an interrupted apply that says
 * what it did, two applies at once, and the CI/CD example of docs/bootstrap.md run as written, twice.
 */

import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, spawnCli } from "../harness/child-cli.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { runSealkeeper } from "../harness/run-cli.js";

let dev: DevServer;
let dir: string;

function policySpec(n: number, prefix = "p"): string {
  const lines = ["version: 1", "policies:"];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${String(i).padStart(4, "0")}`;
    lines.push(`  - name: ${name}`, `    rules: [{ path: secret/data/${name}, capabilities: [read] }]`);
  }
  return `${lines.join("\n")}\n`;
}

beforeAll(async () => {
  dev = await startDevServer();
  dir = mkdtempSync(join(tmpdir(), "sk-pipeline-"));
}, 120_000);

afterAll(async () => {
  await dev?.stop();
});

const env = () => ({ VAULT_ADDR: dev.address, VAULT_TOKEN: dev.rootToken });

describe("bootstrap in a pipeline", () => {
  it("the CI/CD example of docs/bootstrap.md runs as written, twice: applies, then finds nothing to do", () => {
    const doc = readFileSync(join(process.cwd(), "docs", "bootstrap.md"), "utf8");
    const block = /<!-- ci-example:start -->\n```sh\n([\s\S]*?)```\n<!-- ci-example:end -->/.exec(doc)?.[1];
    expect(block).toBeDefined();
    const work = join(dir, "ci");
    const bin = join(work, "bin");
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(work, "bootstrap.sh"), block!);
    // `sealkeeper` on PATH, as `npm i -g` or the single executable would put it
    writeFileSync(join(bin, "sealkeeper"), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, "sealkeeper"), 0o755);
    writeFileSync(
      join(work, "bootstrap.yaml"),
      `${policySpec(5, "ci")}mounts:\n  - path: ci-kv\n    type: kv\n    options: { version: 2 }\n`,
    );
    const run = () =>
      spawnSync("bash", ["bootstrap.sh"], {
        cwd: work,
        env: { PATH: `${bin}:${process.env.PATH}`, NO_COLOR: "1", HOME: work, ...env() },
        encoding: "utf8",
        timeout: 120_000,
      });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/changes pending, applying/);
    expect(JSON.parse(readFileSync(join(work, "apply.json"), "utf8")).applied).toHaveLength(6);
    expect(JSON.parse(readFileSync(join(work, "verify.json"), "utf8")).ok).toBe(true);
    const second = run();
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/nothing to change/);
  });

  it("a refused token exits 1 (never 2, which means drift) with a JSON error document", async () => {
    const spec = join(dir, "small.yaml");
    writeFileSync(spec, policySpec(3, "small"));
    const root = dev.client();
    const weak = (await root.write<{ auth: { client_token: string } }>("auth/token/create", { policies: ["default"] }))
      .auth.client_token;
    await root.close();
    // (verify of a spec with no roles asks nothing of the server, so only a token it cannot use at all fails it)
    const cases: [string[], string[]][] = [
      [
        ["plan", "--detailed-exitcode"],
        [weak, "hvs.not-a-real-token-aaaaaaaaaaaaaa"],
      ],
      [["apply"], [weak, "hvs.not-a-real-token-aaaaaaaaaaaaaa"]],
      [["verify"], ["hvs.not-a-real-token-aaaaaaaaaaaaaa"]],
    ];
    for (const [cmd, tokens] of cases) {
      for (const token of tokens) {
        const r = await runSealkeeper(["bootstrap", cmd[0]!, "-f", spec, ...cmd.slice(1), "--format", "json"], {
          env: { VAULT_ADDR: dev.address, VAULT_TOKEN: token },
        });
        expect(r.code, `${cmd.join(" ")}: ${r.stderr}`).toBe(1);
        const docErr = JSON.parse(r.stdout).error;
        expect(docErr).toMatchObject({ code: "server", exitCode: 1, status: 403 });
      }
    }
    // drift still exits 2
    const drift = await runSealkeeper(["bootstrap", "plan", "-f", spec, "--detailed-exitcode"], { env: env() });
    expect(drift.code).toBe(2);
  });

  it("SIGTERM mid-apply: no new step, says how far it got, exit 143; the rerun converges", async () => {
    const spec = join(dir, "big.yaml");
    writeFileSync(spec, policySpec(1500, "big"));
    const child = spawnCli(["bootstrap", "apply", "-f", spec, "--format", "json", "--concurrency", "2"], {
      env: { ...env(), HOME: dir },
    });
    await child.waitForStderr(/progress: \d+ of 1500 steps applied/);
    child.child.kill("SIGTERM");
    const end = await child.exited;
    expect(end.code, end.stderr).toBe(143);
    expect(end.stderr).toMatch(/SIGTERM received: no new step starts/);
    const m = /apply stopped by SIGTERM after (\d+) of 1500 steps/.exec(end.stderr);
    expect(m).not.toBeNull();
    const applied = Number(m![1]);
    expect(applied).toBeGreaterThan(0);
    expect(applied).toBeLessThan(1500);
    const docErr = JSON.parse(end.stdout).error;
    expect(docErr).toMatchObject({ code: "interrupted", exitCode: 143, applied, total: 1500 });
    expect(docErr.hint).toMatch(/converges/);
    // the server holds exactly what was reported, and the rerun finishes the rest
    const plan = await runSealkeeper(["bootstrap", "plan", "-f", spec, "--format", "json"], { env: env() });
    expect(JSON.parse(plan.stdout).changes).toHaveLength(1500 - applied);
    const rerun = await runSealkeeper(["bootstrap", "apply", "-f", spec], { env: env() });
    expect(rerun.code, rerun.stderr).toBe(0);
    expect((await runSealkeeper(["bootstrap", "plan", "-f", spec, "--detailed-exitcode"], { env: env() })).code).toBe(
      0,
    );
  });

  it("two applies of one spec at once: exactly one runs; with --lock-timeout the second waits and writes nothing", async () => {
    const spec = join(dir, "twice.yaml");
    writeFileSync(spec, policySpec(400, "twice"));
    const apply = (extra: string[] = []) =>
      runSealkeeper(["bootstrap", "apply", "-f", spec, "--format", "json", ...extra], { env: env() });
    const [a, b] = await Promise.all([apply(), apply()]);
    const codes = [a.code, b.code].sort();
    expect(codes).toEqual([0, 1]);
    const loser = a.code === 1 ? a : b;
    expect(loser.stderr).toMatch(/another apply of this spec holds the lock sealkeeper\/locks\/apply-twice/);
    expect(JSON.parse(loser.stdout).error.hint).toMatch(/--lock-timeout/);

    writeFileSync(spec, policySpec(400, "twice2"));
    const [c, d] = await Promise.all([apply(["--lock-timeout", "2m"]), apply(["--lock-timeout", "2m"])]);
    expect([c.code, d.code]).toEqual([0, 0]);
    const requests = [JSON.parse(c.stdout).requests, JSON.parse(d.stdout).requests].sort((x, y) => x - y);
    // one run wrote the 400 new policies; the other waited, planned after it, and had nothing to write
    expect(requests).toEqual([0, 400]);
  });

  it("a lock whose holder died is taken over once it has expired, and the run says so", async () => {
    const spec = join(dir, "stale.yaml");
    writeFileSync(spec, policySpec(2, "stale"));
    const root = dev.client();
    await root.write("sys/mounts/sealkeeper", { type: "kv", options: { version: "2" } }).catch(() => undefined); // present already when an earlier test applied
    await root.write("sealkeeper/data/locks/apply-stale", {
      data: {
        owner: "ci-runner-7 pid 4242",
        run: "dead",
        acquired: "2026-01-01T00:00:00Z",
        expires: "2026-01-01T00:05:00Z",
      },
    });
    const r = await runSealkeeper(["bootstrap", "apply", "-f", spec], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/took over the apply lock of ci-runner-7 pid 4242/);
    // released at the end
    expect(await root.read("sealkeeper/data/locks/apply-stale")).toBeUndefined();
    await root.close();
  });
});
