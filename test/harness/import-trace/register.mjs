// Registers a resolve hook that appends every resolved module URL to $IMPORT_TRACE_FILE (one per line).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
