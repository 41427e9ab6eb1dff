import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { existsSync } from "node:fs";

const SETPRIV = "/usr/bin/setpriv";
const haveSetpriv = process.platform === "linux" && existsSync(SETPRIV);

/**
 * spawn() for the long-lived programs the harness starts (servers, moto, etcd, kube-apiserver, ESO): on Linux the
 * program is exec'd through util-linux's `setpriv --pdeathsig KILL` (Debian marks util-linux essential), so the
 * kernel kills it when the test process that started it dies, however it dies. The harness's exit hooks stop
 * everything on a normal exit and on Ctrl-C, but a worker ended by SIGTERM (a cancelled CI job, vitest tearing
 * down a timed-out worker) or SIGKILL runs no hook, and its servers used to keep running, holding ports and CPU.
 * setpriv execs the program, so the child's pid is the program's own and signals sent to it reach the program.
 */
export function spawnOwned(command: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  if (!haveSetpriv) return spawn(command, args, opts);
  return spawn(SETPRIV, ["--pdeathsig", "KILL", "--", command, ...args], opts);
}
