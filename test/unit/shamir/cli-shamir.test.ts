import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { combineShares } from "../../../src/shamir/combine.js";
import { decodeShare } from "../../../src/shamir/encoding.js";
import { runSealkeeper } from "../../harness/run-cli.js";

// ASCII, so that raw output survives the harness's utf8 capture; 16 bytes, so shares are 17
const secret = Buffer.from("an unseal key 16");
const lines = (s: string) => s.split("\n").filter((l) => l !== "");

async function splitLines(args: string[] = [], input: Buffer | string = secret): Promise<string[]> {
  const run = await runSealkeeper(["shamir", "split", "-n", "5", "-t", "3", ...args], { stdin: input });
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return lines(run.stdout);
}

describe("sealkeeper shamir split", () => {
  it("reads raw bytes from stdin and prints base64 shares one per line", async () => {
    const shares = await splitLines();
    expect(shares).toHaveLength(5);
    for (const s of shares) expect(s).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const bytes = shares.map((s) => decodeShare(s));
    expect(bytes[0]!.length).toBe(secret.length + 1);
    expect(Buffer.from(combineShares(bytes.slice(2))).equals(secret)).toBe(true);
  });

  it("takes hex/base64 secrets and writes hex shares; --format json has threshold, shares and a digest", async () => {
    const run = await runSealkeeper(
      ["shamir", "split", "--shares", "4", "--threshold", "2", "--secret-encoding", "hex", "--share-encoding", "hex"],
      { stdin: `${secret.toString("hex")}\n`, env: { VAULT_FORMAT: "json" } },
    );
    expect(run.code).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(Object.keys(out)).toEqual(["threshold", "shares", "digest"]);
    expect(out.threshold).toBe(2);
    expect(out.shares).toHaveLength(4);
    for (const s of out.shares) expect(s).toMatch(/^[0-9a-f]{34}$/);
    expect(out.digest).toMatch(/^\$scrypt\$/);
    const b64 = await splitLines(["--secret-encoding", "base64"], `${secret.toString("base64")}\n`);
    expect(Buffer.from(combineShares(b64.slice(0, 3).map((s) => decodeShare(s)))).equals(secret)).toBe(true);
  });

  it.each([
    [["-n", "5", "-t", "1"], "error: threshold must be an integer from 2 to 255, got 1"],
    [["-n", "256", "-t", "3"], "error: shares must be an integer from 2 to 255, got 256"],
    [["-n", "3", "-t", "4"], "error: threshold (4) must not exceed shares (3)"],
    [["-n", "x", "-t", "2"], 'error: shares must be an integer from 2 to 255, got "x"'],
    [["-n", "3", "-t", "2", "--share-encoding", "raw"], 'error: share encoding must be hex, base64; got "raw"'],
  ])("refuses %j", async (args, message) => {
    const run = await runSealkeeper(["shamir", "split", ...args], { stdin: secret });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr.split("\n")[0]).toBe(message);
  });

  it("refuses an empty secret and a bad hex secret, and warns about a trailing newline in raw mode", async () => {
    const empty = await runSealkeeper(["shamir", "split", "-n", "3", "-t", "2"], { stdin: "" });
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain("secret must not be empty");
    const bad = await runSealkeeper(["shamir", "split", "-n", "3", "-t", "2", "--secret-encoding", "hex"], {
      stdin: "xyz",
    });
    expect(bad.stderr).toContain("the secret is not valid hex");
    const nl = await runSealkeeper(["shamir", "split", "-n", "3", "-t", "2"], { stdin: "pass\n" });
    expect(nl.code).toBe(0);
    expect(nl.stderr).toContain("warning: the secret ends with a newline");
  });
});

describe("sealkeeper shamir combine", () => {
  it("reads shares from stdin and files, skips blank lines, auto-detects hex and base64, writes raw", async () => {
    const shares = await splitLines();
    const dir = mkdtempSync(join(tmpdir(), "sk-shamir-"));
    const file = join(dir, "more.txt");
    writeFileSync(file, `\n${Buffer.from(shares[3]!, "base64").toString("hex")}\r\n\n`);
    const run = await runSealkeeper(["shamir", "combine", "--share-file", file], {
      stdin: `\n${shares[0]}\n\n  ${shares[4]}  \n`,
    });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(Buffer.from(run.stdout).equals(secret)).toBe(true);
  });

  it("writes hex or base64 with a newline when asked", async () => {
    const shares = await splitLines();
    const hex = await runSealkeeper(["shamir", "combine", "--secret-encoding", "hex"], {
      stdin: shares.slice(1, 4).join("\n"),
    });
    expect(hex.stdout).toBe(`${secret.toString("hex")}\n`);
    const b64 = await runSealkeeper(["shamir", "combine", "--secret-encoding", "base64"], {
      stdin: shares.slice(0, 3).join("\n"),
      stdoutIsTTY: true,
    });
    expect(b64.stdout).toBe(`${secret.toString("base64")}\n`);
  });

  it("refuses to print the secret to a terminal unless an encoding is given", async () => {
    const shares = await splitLines();
    const run = await runSealkeeper(["shamir", "combine"], { stdin: shares.join("\n"), stdoutIsTTY: true });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("refusing to write the secret to a terminal");
  });

  it("warns when a share is given on the command line", async () => {
    const shares = await splitLines();
    const run = await runSealkeeper(["shamir", "combine", "--share", shares[0]!, "--share", shares[1]!], {
      stdin: shares[2]!,
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("warning: a share was given on the command line");
    expect(run.stderr).not.toContain(shares[0]!);
    expect(Buffer.from(run.stdout).equals(secret)).toBe(true);
  });

  it("names the share at fault by its file and line, never by its value", async () => {
    const shares = await splitLines();
    const dup = await runSealkeeper(["shamir", "combine"], { stdin: [shares[0], shares[1], shares[0]].join("\n") });
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("error: share 3 is a copy of share 1 (share 3 is line 3 of stdin)");
    const zero = Buffer.from(shares[1]!, "base64");
    zero[zero.length - 1] = 0;
    const x0 = await runSealkeeper(["shamir", "combine"], { stdin: `${shares[0]}\n${zero.toString("hex")}\n` });
    expect(x0.stderr).toContain("share 2 has x-coordinate 0");
    const short = await runSealkeeper(["shamir", "combine"], { stdin: `${shares[0]}\n\nAAAA\n` });
    expect(short.stderr).toContain("share 2 is 2 bytes but share 1 is 17"); // "AAAA" is hex first
    expect(short.stderr).toContain("line 3 of stdin");
    const junk = await runSealkeeper(["shamir", "combine"], { stdin: `${shares[0]}\nnot*base64\n` });
    expect(junk.stderr).toContain("share 2 (line 2 of stdin) is neither hex nor base64");
    for (const r of [dup, x0, short, junk]) {
      expect(r.stdout).toBe("");
      for (const s of shares) expect(r.stderr).not.toContain(s);
    }
  });

  it("explains a single share (secret_shares=1) and an empty input", async () => {
    const one = await runSealkeeper(["shamir", "combine"], { stdin: `${secret.toString("base64")}\n` });
    expect(one.code).toBe(1);
    expect(one.stderr).toContain("at least 2 shares are needed to combine, got 1");
    expect(one.stderr).toContain("secret_shares=1");
    const none = await runSealkeeper(["shamir", "combine"], { stdin: "\n\n" });
    expect(none.stderr).toContain("error: no shares given");
  });

  it("checks a digest before writing anything", async () => {
    const split = await runSealkeeper(["shamir", "split", "-n", "3", "-t", "2", "--format", "json"], { stdin: secret });
    const { shares, digest } = JSON.parse(split.stdout) as { shares: string[]; digest: string };
    const ok = await runSealkeeper(["shamir", "combine", "--digest", digest], { stdin: shares.slice(1).join("\n") });
    expect(Buffer.from(ok.stdout).equals(secret)).toBe(true);
    const wrong = Buffer.from(shares[1]!, "base64");
    wrong[0]! ^= 0x01;
    const mixed = [shares[0], wrong.toString("base64")].join("\n");
    const bad = await runSealkeeper(["shamir", "combine", "--digest", digest], { stdin: mixed });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toContain("does not match the digest");
  });

  it("reads raw binary shares, one per file", async () => {
    const shares = (await splitLines()).map((s) => Buffer.from(s, "base64"));
    const dir = mkdtempSync(join(tmpdir(), "sk-shamir-raw-"));
    const files = shares.slice(0, 3).map((s, i) => {
      const f = join(dir, `share-${i}.bin`);
      writeFileSync(f, s);
      return f;
    });
    const run = await runSealkeeper([
      "shamir",
      "combine",
      "--share-encoding",
      "raw",
      ...files.flatMap((f) => ["--share-file", f]),
    ]);
    expect(run.code).toBe(0);
    expect(Buffer.from(run.stdout).equals(secret)).toBe(true);
  });
});

describe("sealkeeper shamir verify", () => {
  it("exits 0 for consistent shares", async () => {
    const shares = await splitLines();
    const run = await runSealkeeper(["shamir", "verify", "-t", "3"], { stdin: shares.join("\n") });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/result\s+consistent/);
    expect(run.stdout).toMatch(/subsets\s+10 \(all covered, exactly\)/);
  });

  it("exits 2 and names a tampered share with n >= t + 2", async () => {
    const shares = await splitLines();
    const bad = Buffer.from(shares[2]!, "base64");
    bad[5]! ^= 0x10;
    shares[2] = bad.toString("base64");
    const run = await runSealkeeper(["shamir", "verify", "--threshold", "3", "--format", "json"], {
      stdin: shares.join("\n"),
    });
    expect(run.code).toBe(2);
    const report = JSON.parse(run.stdout);
    expect(report).toMatchObject({ ok: false, consistent: false, culprits: [{ share: 3, source: "line 3 of stdin" }] });
    const table = await runSealkeeper(["shamir", "verify", "-t", "3"], { stdin: shares.join("\n") });
    expect(table.code).toBe(2);
    expect(table.stdout).toMatch(/culprits\s+share 3 \(line 3 of stdin\)/);
  });

  it("exits 2 without naming anyone when n = t + 1, and checks a digest", async () => {
    const split = await runSealkeeper(["shamir", "split", "-n", "4", "-t", "3", "--format", "json"], { stdin: secret });
    const { shares, digest } = JSON.parse(split.stdout) as { shares: string[]; digest: string };
    const good = await runSealkeeper(["shamir", "verify", "-t", "3", "--digest", digest], { stdin: shares.join("\n") });
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/digest\s+match/);
    const bad = Buffer.from(shares[0]!, "base64");
    bad[0]! ^= 1;
    const run = await runSealkeeper(["shamir", "verify", "-t", "3"], {
      stdin: [bad.toString("base64"), ...shares.slice(1)].join("\n"),
    });
    expect(run.code).toBe(2);
    expect(run.stdout).toMatch(/culprits\s+cannot be named/);
    expect(run.stderr).toContain("naming the bad share needs at least 5 shares, got 4");
  });
});
