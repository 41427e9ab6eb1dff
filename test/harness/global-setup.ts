import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { kubeBinaryPath, type ServerKind, serverBinaryPath, serverBuildScript, serverKind } from "./paths.js";

interface ProjectLike {
  config: { env?: Record<string, string | undefined> };
}

/**
 * Vitest global setup for an integration project (one per server, see vitest.config.ts): make sure that server's
 * binary exists (build it once if not; the build scripts take a lock, so two projects wait for one build), and that
 * dist/ is current, for the tests that run the built CLI in a real terminal (once per run, not once per project).
 */
export default function setup(project?: ProjectLike): void {
  const kind: ServerKind = serverKind({ ...process.env, ...project?.config.env });
  if (!existsSync(serverBinaryPath(kind))) {
    process.stderr.write(
      `integration: building the real ${kind} server (first run only; a cold build takes 10-25 min)\n`,
    );
    execFileSync("bash", [serverBuildScript(kind)], { stdio: ["ignore", "ignore", "inherit"] });
    if (!existsSync(serverBinaryPath(kind))) throw new Error(`server build did not produce ${serverBinaryPath(kind)}`);
  }
  // the Kubernetes test bed (kube-apiserver, kubectl, etcd, ESO, helm): scripts/setup.sh builds it; a run without
  // setup builds it here once (build-kube.sh takes a lock per component, so two projects wait for one build)
  const kube = (["kube-apiserver", "kubectl", "etcd", "external-secrets", "helm"] as const).map((c) =>
    kubeBinaryPath(c),
  );
  // SEALKEEPER_SKIP_KUBE_BUILD=1: a developer running files that need no Kubernetes while the bed still builds
  // (docs/testing.md); CI never sets it, and the files that need the bed fail without it
  if (kube.some((b) => !existsSync(b)) && process.env.SEALKEEPER_SKIP_KUBE_BUILD !== "1") {
    process.stderr.write("integration: building the Kubernetes test bed (first run only; cold 20-40 min)\n");
    execFileSync("bash", ["scripts/build-kube.sh", "all"], { stdio: ["ignore", "ignore", "inherit"] });
  }
  const g = globalThis as { sealkeeperDistBuilt?: boolean };
  if (g.sealkeeperDistBuilt) return;
  g.sealkeeperDistBuilt = true;
  try {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch {
    // type errors are reported by `npm run typecheck`; tsc still emitted dist/
  }
  // bin/sealkeeper runs the bundle: rebuild it too, so child-process tests run the code under test
  execFileSync(process.execPath, ["--import", "tsx", "scripts/bundle.ts"], { stdio: ["ignore", "ignore", "inherit"] });
}
