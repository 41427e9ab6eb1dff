import { Writable } from "node:stream";
import { type CliIO, processIO } from "./io.js";
import { runCli } from "./main.js";

// Node 20 prints a notice for the AWS SDK on this runtime; the SDK works, the notice only confuses operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/**
 * Build time only (scripts/bundle.ts, while it makes the V8 code cache bin/sealkeeper hands to vm.Script): runs the
 * given command lines first, output discarded, so that the cache holds the functions they compile too and not only
 * those of the one command the build runs. Without it `status` compiled its whole path lazily at every start
 * (about 50 ms of CPU here, docs/benchmarks.md).
 */
async function warmUp(spec: string): Promise<void> {
  const sink = () => new Writable({ write: (_chunk, _encoding, callback) => callback() });
  for (const argv of JSON.parse(spec) as string[][]) {
    const io: CliIO = { ...processIO(), stdout: sink(), stderr: sink(), env: { NO_COLOR: "1" } };
    await runCli(argv, io);
  }
}

// No top-level await: the same entry is bundled as CommonJS for the executable (scripts/package.ts).
const warm = process.env.SEALKEEPER_CODE_CACHE_WARMUP;
void (warm ? warmUp(warm) : Promise.resolve())
  .then(() => runCli(process.argv.slice(2), processIO()))
  .then((code) => {
    process.exitCode = code;
  });
