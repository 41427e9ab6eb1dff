import { processIO } from "./io.js";
import { runCli } from "./main.js";

// Node 20 prints a notice for the AWS SDK on this runtime; the SDK works, the notice only confuses operators.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

// No top-level await: the same entry is bundled as CommonJS for the executable (scripts/package.ts).
void runCli(process.argv.slice(2), processIO()).then((code) => {
  process.exitCode = code;
});
