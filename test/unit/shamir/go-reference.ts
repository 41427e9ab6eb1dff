import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** test/go/shamir: a Go program around Vault's own shamir package (see main.go there). */
export const goModuleDir = fileURLToPath(new URL("../../go/shamir/", import.meta.url));

export interface GoRequest {
  op: "split" | "combine";
  secret?: string;
  parts?: number;
  threshold?: number;
  shares?: string[];
}
export interface GoResult {
  shares?: string[];
  secret?: string;
  error?: string;
}

const goEnv = { ...process.env, GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" };

/**
 * Builds the reference program once per source version into os.tmpdir() and returns its path. Throws a clear error
 * when Go is not installed: the cross-implementation test is mandatory, so it fails rather than skips.
 */
export function buildGoReference(): string {
  const version = spawnSync("go", ["version"], { encoding: "utf8" });
  if (version.error || version.status !== 0) {
    throw new Error(
      "the Go toolchain (`go`) is not installed or not on PATH: the Shamir cross-implementation test needs it " +
        "(CI installs it)",
    );
  }
  const hash = createHash("sha256").update(version.stdout);
  for (const f of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(join(goModuleDir, f)));
  const dir = join(tmpdir(), "sealkeeper-shamir-ref");
  const bin = join(dir, `shamir-ref-${hash.digest("hex").slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const partial = `${bin}.${process.pid}.tmp`;
  // Only the main package and Vault's stdlib-only shamir package are compiled.
  execFileSync("go", ["build", "-o", partial, "."], { cwd: goModuleDir, env: goEnv, stdio: "pipe", timeout: 300_000 });
  renameSync(partial, bin); // atomic: a parallel worker either sees no binary or a complete one
  return bin;
}

/** Runs a batch of requests through the Go reference. */
export function runGoReference(bin: string, requests: GoRequest[]): GoResult[] {
  const out = execFileSync(bin, [], { input: JSON.stringify(requests), maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(out.toString("utf8")) as GoResult[];
}

export { goEnv };
