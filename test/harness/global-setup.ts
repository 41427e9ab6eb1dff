import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { serverBinaryPath } from "./paths.js";

/**
 * Vitest global setup for integration tests: make sure the real server binary exists (build it once if not), and
 * that dist/ is current, for the tests that run the built CLI in a real terminal.
 */
export default function setup(): void {
  if (!existsSync(serverBinaryPath())) {
    process.stderr.write("integration: building the real server (first run only; a cold build takes 10-20 minutes)\n");
    execFileSync("bash", ["scripts/build-server.sh"], { stdio: ["ignore", "ignore", "inherit"] });
    if (!existsSync(serverBinaryPath())) throw new Error(`server build did not produce ${serverBinaryPath()}`);
  }
  try {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch {
    // type errors are reported by `npm run typecheck`; tsc still emitted dist/
  }
}
