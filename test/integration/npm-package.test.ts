/**
 * The npm package as published: `npm pack` of this tree, the tarball installed with production dependencies only
 * into an empty directory, then `npx sealkeeper` from there: --help, shamir split (and combine back), and a scripted
 * unseal of a real server node.
 *
 * The pack runs with --ignore-scripts: `prepare` (the build) already ran in this tree (npm ci, scripts/setup.sh), and
 * rebuilding dist/ here would change it under the other test files running at the same time.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startNode, type TestNode } from "../harness/cluster.js";
import { spawnSealkeeper } from "../harness/spawn-cli.js";

let node: TestNode;
let app: string;
let keys: string[];

const npx = (argv: string[], stdin = "") =>
  spawnSealkeeper("npx", ["--no-install", "sealkeeper"], argv, {
    cwd: app,
    env: { ...process.env, NO_COLOR: "1", VAULT_ADDR: undefined, VAULT_TOKEN: undefined },
    stdin,
  });

beforeAll(async () => {
  const nodeReady = startNode();
  const packs = mkdtempSync(join(tmpdir(), "sk-pack-"));
  const packed = JSON.parse(
    execFileSync("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", packs], { encoding: "utf8" }),
  ) as { filename: string }[];
  const tarball = join(packs, packed[0]!.filename);
  app = mkdtempSync(join(tmpdir(), "sk-npm-app-"));
  writeFileSync(join(app, "package.json"), `${JSON.stringify({ name: "ceremony", private: true })}\n`);
  execFileSync(
    "npm",
    ["install", "--omit=dev", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", resolve(tarball)],
    { cwd: app, stdio: ["ignore", "ignore", "inherit"] },
  );
  rmSync(packs, { recursive: true, force: true });
  node = await nodeReady;
  const c = node.client();
  keys = (await c.init({ secret_shares: 3, secret_threshold: 2 })).keys;
  await c.close();
}, 300_000);

afterAll(async () => {
  await node?.stop();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe("the npm package, installed from its tarball with production dependencies only", () => {
  it("holds the built CLI and no development dependency", () => {
    const root = join(app, "node_modules", "sealkeeper");
    expect(existsSync(join(root, "dist", "bundle", "sealkeeper.cjs"))).toBe(true);
    expect(readdirSync(join(root, "dist")).filter((f) => f.startsWith("sealkeeper-") || f === "sea")).toEqual([]);
    for (const dev of ["typescript", "vitest", "esbuild", "tsx", "postject", "@biomejs/biome"]) {
      expect(existsSync(join(app, "node_modules", dev)), dev).toBe(false);
    }
    expect(existsSync(join(app, "node_modules", "openpgp"))).toBe(true);
  });

  it("npx sealkeeper --help", async () => {
    const r = await npx(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: sealkeeper /);
    expect(r.stdout).toContain("unseal [options]");
    expect(r.stderr).toBe("");
  });

  it("shamir split, and combine gives the secret back", async () => {
    const split = await npx(["shamir", "split", "-n", "5", "-t", "3"], "a ceremony secret");
    expect(split.code, split.stderr).toBe(0);
    const shares = split.stdout.trim().split("\n");
    expect(shares).toHaveLength(5);
    const combine = await npx(["shamir", "combine"], `${shares[4]}\n${shares[0]}\n${shares[2]}\n`);
    expect(combine.code, combine.stderr).toBe(0);
    expect(combine.stdout).toBe("a ceremony secret");
  });

  it("scripted unseal of a real server node from stdin", async () => {
    const sealed = await npx(["status", "-a", node.address]);
    expect(sealed.code).toBe(2);
    const r = await npx(["unseal", "-a", node.address, "--format", "json"], `${keys[1]}\n${keys[0]}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).nodes[0].state).toBe("unsealed");
    const c = node.client();
    expect((await c.sealStatus()).sealed).toBe(false);
    await c.close();
    expect(readFileSync(join(app, "package.json"), "utf8")).toContain('"sealkeeper"');
  });
});
