/**
 * The CLI as bundles (esbuild, CommonJS): one start-up bundle (src/cli/entry.ts, all of src and commander) and, for
 * the executable, one bundle per heavy dependency (OpenPGP, age, the AWS SDK, the prompts, zod, yaml, secrets.js),
 * each loaded only by the code that needs it. bin/sealkeeper runs the start-up bundle, which takes the heavy
 * dependencies from node_modules; `npm run package` embeds the start-up bundle and the vendor bundles.
 *
 * `node --import tsx scripts/bundle.ts` writes dist/bundle (and its code cache). Run by `npm run build`.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Metafile, type Plugin } from "esbuild";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The heavy dependencies, each its own bundle; file names are flat (`@aws-sdk/client-kms` -> aws-sdk-client-kms). */
export const VENDOR = [
  "openpgp",
  "age-encryption",
  "@aws-sdk/client-kms",
  "@inquirer/prompts",
  "yaml",
  "zod",
  "secrets.js-grempe",
] as const;

export const vendorFile = (pkg: string): string => `${pkg.replace(/^@/, "").replace(/\//g, "-")}.cjs`;

/**
 * Loads a heavy dependency once, when the code that needs it runs: in the executable from its embedded vendor bundle
 * (node:sea asset), in the npm package from node_modules (the installed, audited tree). Prepended to the start-up
 * bundle, so nothing else is on the start-up path.
 */
const VENDOR_LOADER = `var __skVendorLoaded = Object.create(null);
function __skVendor(pkg, file) {
  if (pkg in __skVendorLoaded) return __skVendorLoaded[pkg];
  var sea = require("node:sea");
  var exported;
  if (sea.isSea()) {
    var mod = { exports: {} };
    var fn = require("node:vm").compileFunction(sea.getAsset("vendor/" + file, "utf8"),
      ["exports", "require", "module", "__filename", "__dirname"], { filename: "sealkeeper:vendor/" + file });
    fn.call(mod.exports, mod.exports, __skSeaRequire, mod, process.execPath, require("node:path").dirname(process.execPath));
    exported = mod.exports;
  } else {
    exported = require(pkg);
  }
  return (__skVendorLoaded[pkg] = exported);
}
// In the executable a dependency gets Node's built-ins and nothing from disk: createRequire (openpgp looks for an
// optional package with it) hands back the executable's own built-ins-only require.
function __skSeaRequire(id) {
  if (id !== "module" && id !== "node:module") return require(id);
  var m = require("node:module");
  return Object.assign(Object.create(m), { createRequire: function () { return require; } });
}`;

/** Resolves every import of a vendor package to a stub that asks the loader above for its bundle. */
const vendorStubs: Plugin = {
  name: "sealkeeper-vendor",
  setup(b) {
    const filter = new RegExp(`^(${VENDOR.map((v) => v.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: args.path, namespace: "sealkeeper-vendor" }));
    b.onLoad({ filter: /.*/, namespace: "sealkeeper-vendor" }, (args) => ({
      contents: `module.exports = __skVendor(${JSON.stringify(args.path)}, ${JSON.stringify(vendorFile(args.path))});`,
      loader: "js",
    }));
  },
};

/**
 * `await import("node:fs/promises")` stays a dynamic import in a CommonJS bundle, and a single executable's main
 * script cannot import() at all on Node 20: each becomes a stub that require()s the built-in.
 */
const builtinDynamicImports: Plugin = {
  name: "sealkeeper-builtin-import",
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) =>
      args.kind === "dynamic-import" ? { path: args.path, namespace: "sealkeeper-builtin" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "sealkeeper-builtin" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

/**
 * commander requires node:child_process at load (for git-style subcommands, which sealkeeper has none of), and that
 * pulls in net, dgram and the stream machinery: it gets the module on first use instead.
 */
const lazyChildProcess: Plugin = {
  name: "sealkeeper-lazy-child-process",
  setup(b) {
    b.onResolve({ filter: /^node:child_process$/ }, (args) =>
      /node_modules\/commander\//.test(args.importer) ? { path: args.path, namespace: "sealkeeper-lazy" } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: "sealkeeper-lazy" }, (args) => ({
      contents: `var m; module.exports = new Proxy({}, { get: (_, k) => (m ??= require(${JSON.stringify(args.path)}))[k] });`,
      loader: "js",
    }));
  },
};

/**
 * `import.meta.url` in ESM dependencies (openpgp's createRequire(import.meta.url)) would be an empty object in a
 * CommonJS bundle: it becomes the bundle's own file URL (the executable's path, in the executable).
 */
const IMPORT_META_URL = `var __skImportMetaUrl = require("node:url").pathToFileURL(__filename).href;`;

const common = {
  bundle: true,
  define: { "import.meta.url": "__skImportMetaUrl" },
  platform: "node",
  format: "cjs",
  target: "node20",
  // reproducible and reviewable: no minification, no source maps, no absolute paths in the output
  legalComments: "inline",
  logLevel: "warning",
  metafile: true,
  absWorkingDir: ROOT,
} as const;

export interface BundleResult {
  dir: string;
  main: string;
  vendor: { pkg: string; file: string }[];
  metafiles: Metafile[];
}

const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/**
 * Fails if a bundle still needs a module from outside (the executable has no node_modules to find it in) or still
 * has a dynamic import() (its main script cannot import() on Node 20).
 */
function assertSelfContained(meta: Metafile, what: string): void {
  for (const [out, o] of Object.entries(meta.outputs)) {
    // esbuild turns an import.meta it cannot map (anything but .url, see IMPORT_META_URL) into an empty object
    if (/\bvar import_meta\d* = \{\};/.test(readFileSync(join(ROOT, out), "utf8"))) {
      throw new Error(`bundle ${what} (${out}) uses import.meta, which is empty in CommonJS`);
    }
    for (const imp of o.imports) {
      if (imp.kind === "dynamic-import") throw new Error(`bundle ${what} (${out}) still has import("${imp.path}")`);
      if (imp.external && !builtins.has(imp.path)) {
        throw new Error(`bundle ${what} (${out}) still imports ${imp.path} from outside`);
      }
    }
  }
}

/** The start-up bundle; with `vendor`, also one bundle per heavy dependency (for the executable). */
export async function bundleCli(outRoot = join(ROOT, "dist"), opts: { vendor?: boolean } = {}): Promise<BundleResult> {
  const dir = join(outRoot, "bundle");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(opts.vendor ? join(dir, "vendor") : dir, { recursive: true });
  const main = join(dir, "sealkeeper.cjs");
  const metafiles: Metafile[] = [];
  const core = await build({
    ...common,
    entryPoints: ["src/cli/entry.ts"],
    outfile: main,
    banner: { js: `${IMPORT_META_URL}\n${VENDOR_LOADER}` },
    plugins: [vendorStubs, builtinDynamicImports, lazyChildProcess],
  });
  assertSelfContained(core.metafile, "sealkeeper.cjs");
  metafiles.push(core.metafile);
  const vendor: BundleResult["vendor"] = [];
  for (const pkg of opts.vendor ? VENDOR : []) {
    const file = vendorFile(pkg);
    const r = await build({
      ...common,
      stdin: { contents: `export * from ${JSON.stringify(pkg)};`, resolveDir: ROOT, sourcefile: `vendor:${pkg}` },
      outfile: join(dir, "vendor", file),
      banner: { js: IMPORT_META_URL },
      plugins: [builtinDynamicImports],
    });
    assertSelfContained(r.metafile, file);
    metafiles.push(r.metafile);
    vendor.push({ pkg, file });
  }
  if (dir === join(ROOT, "dist", "bundle")) writeCodeCache(main);
  return { dir, main, vendor, metafiles };
}

/**
 * The V8 code cache bin/sealkeeper hands to vm.Script: made by running `bin/sealkeeper --help` once, after a
 * `status` of an address where nothing listens (src/cli/entry.ts, SEALKEEPER_CODE_CACHE_WARMUP), so that it holds the
 * functions both start-ups compile (client, request, table), not only the top level. A fixed random seed makes it the
 * same bytes every build.
 */
function writeCodeCache(main: string): void {
  const warmup = JSON.stringify([["status", "-a", "http://127.0.0.1:9", "--timeout", "2s"]]);
  const r = spawnSync(process.execPath, ["--random-seed=1", join(ROOT, "bin", "sealkeeper"), "--help"], {
    env: {
      ...process.env,
      SEALKEEPER_WRITE_CODE_CACHE: `${main}.cache`,
      SEALKEEPER_CODE_CACHE_WARMUP: warmup,
      NO_COLOR: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (r.status !== 0) throw new Error(`bin/sealkeeper --help failed while making the code cache (exit ${r.status})`);
  // the bundle the cache was made from: bin/sealkeeper uses the cache only for these very bytes (V8 checks the length)
  writeFileSync(`${main}.cache.sha256`, `${createHash("sha256").update(readFileSync(main)).digest("hex")}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  await bundleCli();
}
