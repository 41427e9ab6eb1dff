import { createRequire } from "node:module";

/**
 * A Node built-in loaded on first use instead of at start-up: `const https = lazyBuiltin<typeof Https>("node:https")`,
 * then `https().Agent`. For the modules that cost start-up time and that short commands (`status`, `--help`) do not
 * always need: node:https (with node:tls about 7 ms here), node:crypto (about 5 ms with its internals). The type comes
 * from an `import type`, so nothing is loaded until the first call. docs/benchmarks.md, start-up.
 */
export function lazyBuiltin<T>(name: `node:${string}`): () => T {
  let loaded: T | undefined;
  return () => {
    loaded ??= createRequire(import.meta.url)(name) as T;
    return loaded;
  };
}
