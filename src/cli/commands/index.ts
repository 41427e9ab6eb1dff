import type { Command } from "commander";
import type { CliIO } from "../io.js";
import { registerAutounseal } from "./autounseal.js";
import { registerBootstrap } from "./bootstrap.js";
import { registerBootstrapCluster } from "./bootstrap-cluster.js";
import { registerCompletion } from "./completion.js";
import { registerInit } from "./init.js";
import { registerPolicy } from "./policy.js";
import { registerRekey } from "./rekey.js";
import { registerRoot } from "./root.js";
import { registerRootGenerate } from "./root-generate.js";
import { registerShamir } from "./shamir.js";
import { registerShares } from "./shares.js";
import { registerStatus } from "./status.js";
import { registerTranscript } from "./transcript.js";
import { registerUnseal } from "./unseal.js";

type Register = (program: Command, io: CliIO) => void;

/**
 * The one list of commands, by top-level name, in the order `--help` lists them. Each register function only declares
 * flags; heavy modules (OpenPGP, age, the AWS SDK) are imported inside the actions that need them, so `sealkeeper
 * --help` and `status` start fast.
 */
const COMMANDS: Record<string, Register[]> = {
  status: [registerStatus],
  init: [registerInit],
  unseal: [registerUnseal],
  transcript: [registerTranscript],
  shamir: [registerShamir],
  shares: [registerShares],
  autounseal: [registerAutounseal],
  bootstrap: [registerBootstrap, registerBootstrapCluster],
  policy: [registerPolicy],
  root: [registerRoot, registerRootGenerate],
  rekey: [registerRekey],
  completion: [registerCompletion],
};

/**
 * Declares the commands on `program`. Given the command line, only the command it names is declared: building all
 * of them (about 40 commands and their options) is most of what commander costs at start-up, and a run uses one.
 * Everything is declared when the line names no known command (help, a typo that gets a suggestion) and for
 * `completion`, which lists the others.
 */
export function registerCommands(program: Command, io: CliIO, argv?: readonly string[]): void {
  const first = argv?.find((a) => !a.startsWith("-"));
  const only =
    first !== undefined && first !== "completion" && Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  for (const register of only ?? Object.values(COMMANDS).flat()) register(program, io);
}
