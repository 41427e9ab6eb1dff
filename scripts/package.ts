/**
 * `npm run package`: the ceremony-machine executable. Builds the bundles (scripts/bundle.ts), makes a Node single
 * executable application of them (the start-up bundle as the main script with V8's code cache, the vendor bundles as
 * assets), and writes next to it a CycloneDX SBOM of exactly what went in and SHA256SUMS:
 *
 *   OUT/sealkeeper-linux-x64   OUT/sealkeeper-linux-x64.cdx.json   OUT/SHA256SUMS   (work files in OUT/bundle, OUT/sea)
 *
 * `node --import tsx scripts/package.ts [--out DIR]` (default dist/). No network; writes only under OUT. The
 * executable is this machine's Node binary plus the blob: two builds from the same commit with the same Node give
 * the same bytes (.ci/run checks it). Only the running architecture is built: Node cannot make another
 * architecture's code cache, and no other Node binary can be fetched here.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Metafile } from "esbuild";
import { type BundleResult, bundleCli, ROOT } from "./bundle.js";

/** Node's SEA sentinel (the same string in every Node build that supports single executable applications). */
const SEA_FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

export const exeName = (a = arch()): string => `sealkeeper-${platform()}-${a}`;

const sha256 = (data: Buffer | string): string => createHash("sha256").update(data).digest("hex");

interface Pkg {
  name: string;
  version: string;
  license?: string;
  dir: string;
}

/** Every npm package with at least one file in a bundle, from the bundler's own record of its inputs. */
function packagesIn(metafiles: Metafile[]): Pkg[] {
  const dirs = new Set<string>();
  for (const meta of metafiles) {
    for (const [input, info] of Object.entries(meta.inputs)) {
      if (info.bytes === 0) continue;
      const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (m) dirs.add(m[1]!);
    }
  }
  return [...dirs]
    .map((dir) => {
      const p = JSON.parse(readFileSync(join(ROOT, dir, "package.json"), "utf8")) as Omit<Pkg, "dir">;
      return { name: p.name, version: p.version, license: p.license, dir };
    })
    .sort((a, b) => (a.name === b.name ? a.dir.localeCompare(b.dir) : a.name.localeCompare(b.name)));
}

function sbom(exe: string, bundles: BundleResult, files: { name: string; sha: string }[]): string {
  const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { name: string; version: string };
  const lock = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as {
    packages: Record<string, { integrity?: string; dev?: boolean }>;
  };
  const pkgs = packagesIn(bundles.metafiles);
  const dev = pkgs.filter((p) => lock.packages[p.dir]?.dev);
  if (dev.length > 0) throw new Error(`dev-only packages ended up in the bundle: ${dev.map((p) => p.name).join(", ")}`);
  const purl = (p: Pkg) => `pkg:npm/${p.name.replace(/^@/, "%40")}@${p.version}`;
  const doc = {
    bomFormat: "CycloneDX",
    specVersion: "1.5",
    version: 1,
    metadata: {
      tools: { components: [{ type: "application", name: "sealkeeper scripts/package.ts (esbuild metafiles)" }] },
      component: {
        type: "application",
        "bom-ref": exe,
        name: exe,
        version: root.version,
        purl: `pkg:npm/${root.name}@${root.version}`,
        hashes: [{ alg: "SHA-256", content: files.find((f) => f.name === exe)!.sha }],
      },
    },
    components: [
      {
        type: "platform",
        "bom-ref": "node",
        name: "node",
        version: process.versions.node,
        description: `the Node.js runtime the executable is made of (${platform()}-${arch()}, V8 ${process.versions.v8})`,
        hashes: [{ alg: "SHA-256", content: sha256(readFileSync(process.execPath)) }],
      },
      ...files
        .filter((f) => f.name !== exe)
        .map((f) => ({
          type: "file",
          "bom-ref": `file:${f.name}`,
          name: f.name,
          hashes: [{ alg: "SHA-256", content: f.sha }],
        })),
      ...pkgs.map((p) => {
        const integrity = lock.packages[p.dir]?.integrity;
        const [alg, b64] = integrity?.split("-") ?? [];
        return {
          type: "library",
          "bom-ref": `${purl(p)}#${p.dir}`,
          name: p.name,
          version: p.version,
          purl: purl(p),
          ...(p.license ? { licenses: [{ expression: p.license }] } : {}),
          ...(alg === "sha512" && b64
            ? { hashes: [{ alg: "SHA-512", content: Buffer.from(b64, "base64").toString("hex") }] }
            : {}),
          properties: [{ name: "sealkeeper:lockfile-path", value: p.dir }],
        };
      }),
    ],
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export interface PackageResult {
  exe: string;
  sums: string;
  sbom: string;
}

export async function packageCli(outRoot = join(ROOT, "dist")): Promise<PackageResult> {
  const bundles = await bundleCli(outRoot, { vendor: true });
  const sea = join(outRoot, "sea");
  rmSync(sea, { recursive: true, force: true });
  mkdirSync(sea, { recursive: true });
  // paths relative to the working directory: nothing in the blob depends on where the tree is
  const rel = (p: string) => relative(outRoot, p);
  const config = {
    main: rel(bundles.main),
    output: rel(join(sea, "sealkeeper.blob")),
    disableExperimentalSEAWarning: true,
    useCodeCache: true,
    useSnapshot: false,
    assets: Object.fromEntries(
      bundles.vendor.map((v) => [`vendor/${v.file}`, rel(join(bundles.dir, "vendor", v.file))]),
    ),
  };
  writeFileSync(join(sea, "sea-config.json"), `${JSON.stringify(config, null, 2)}\n`);
  // V8 seeds its code-cache serializer from the random seed: a fixed seed makes the blob byte-identical between
  // builds. The seed is not part of V8's flag hash, so the executable (run without it) still accepts the cache.
  execFileSync(process.execPath, ["--random-seed=1", "--experimental-sea-config", rel(join(sea, "sea-config.json"))], {
    cwd: outRoot,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exe = exeName();
  const exePath = join(outRoot, exe);
  rmSync(exePath, { force: true });
  copyFileSync(process.execPath, exePath);
  chmodSync(exePath, 0o755);
  const { inject } = createRequire(import.meta.url)("postject") as {
    inject: (file: string, name: string, data: Buffer, opts: { sentinelFuse: string }) => Promise<void>;
  };
  await inject(exePath, "NODE_SEA_BLOB", readFileSync(join(sea, "sealkeeper.blob")), { sentinelFuse: SEA_FUSE });
  chmodSync(exePath, 0o755);

  const files = [
    { name: exe, sha: sha256(readFileSync(exePath)) },
    { name: `bundle/${rel(bundles.main).replace(/^bundle\//, "")}`, sha: sha256(readFileSync(bundles.main)) },
    ...bundles.vendor.map((v) => ({
      name: `bundle/vendor/${v.file}`,
      sha: sha256(readFileSync(join(bundles.dir, "vendor", v.file))),
    })),
  ];
  const sbomName = `${exe}.cdx.json`;
  const sbomText = sbom(exe, bundles, files);
  writeFileSync(join(outRoot, sbomName), sbomText);
  const sums = `${sha256(readFileSync(exePath))}  ${exe}\n${sha256(sbomText)}  ${sbomName}\n`;
  writeFileSync(join(outRoot, "SHA256SUMS"), sums);
  return { exe: exePath, sums: join(outRoot, "SHA256SUMS"), sbom: join(outRoot, sbomName) };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const i = process.argv.indexOf("--out");
  const out = i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]!) : undefined;
  const r = await packageCli(out);
  process.stdout.write(readFileSync(r.sums, "utf8"));
}
