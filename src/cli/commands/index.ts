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

/**
 * The one list of commands. Each register function only declares flags; heavy modules (OpenPGP, age, the AWS SDK)
 * are imported inside the actions that need them, so `sealkeeper --help` and `status` start fast.
 */
export function registerCommands(program: Command, io: CliIO): void {
  registerStatus(program, io);
  registerInit(program, io);
  registerUnseal(program, io);
  registerTranscript(program, io);
  registerShamir(program, io);
  registerShares(program, io);
  registerAutounseal(program, io);
  registerBootstrap(program, io);
  registerBootstrapCluster(program, io);
  registerPolicy(program, io);
  registerRoot(program, io);
  registerRootGenerate(program, io);
  registerRekey(program, io);
  registerCompletion(program, io);
}
