/**
 * The AWS KMS emulator for tests: moto's server mode (pinned, installed by scripts/setup.sh into a venv under the
 * cache), bound to loopback on a free port. Keys live in its memory: create them in the test that uses them.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logChildOutput } from "./child-log.js";
import { freePort, sleep } from "./cluster.js";
import { spawnOwned } from "./owned-spawn.js";
import { cacheRoot } from "./paths.js";

export const MOTO_VERSION = "5.2.5";

/** Dummy credentials and region every test uses against the emulator (moto accepts any). */
export const KMS_TEST_REGION = "eu-west-1";
export const KMS_TEST_CREDENTIALS = { accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "sealkeeper-test-secret" } as const;

export interface KmsEmulator {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  stop(): Promise<void>;
}

/** Where scripts/setup.sh installs moto_server (MOTO_SERVER overrides), or null when it is not installed. */
export function kmsEmulatorBinary(env: NodeJS.ProcessEnv = process.env): string | null {
  const candidates = [
    env.MOTO_SERVER,
    join(cacheRoot(env), `moto-${env.MOTO_VERSION ?? MOTO_VERSION}`, "bin", "moto_server"),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** Starts moto_server on 127.0.0.1 and waits until it answers. Throws when moto is not installed. */
export async function startKmsEmulator(
  opts: { env?: Record<string, string>; tls?: { certPath: string; keyPath: string; caCertPath: string } } = {},
): Promise<KmsEmulator> {
  const bin = kmsEmulatorBinary();
  if (!bin) throw new Error("moto_server not found: run scripts/setup.sh (or set MOTO_SERVER)");
  const dir = mkdtempSync(join(tmpdir(), "sealkeeper-kms-"));
  const logPath = join(dir, "moto.log");
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // moto reads no AWS_* for its own operation; a clean env keeps the host's settings out of it
    const tlsArgs = opts.tls ? ["-c", opts.tls.certPath, "-k", opts.tls.keyPath] : [];
    const proc = spawnOwned(bin, ["-H", "127.0.0.1", "-p", String(port), ...tlsArgs], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONUNBUFFERED: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    logChildOutput(proc, logPath);
    live.add(proc);
    proc.on("exit", () => live.delete(proc));
    const endpoint = `${opts.tls ? "https" : "http"}://127.0.0.1:${port}`;
    const ca = opts.tls ? readFileSync(opts.tls.caCertPath, "utf8") : undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        // moto answers its own dashboard API without credentials
        if ((await probe(`${endpoint}/moto-api/data.json`, ca)) === 200) {
          return {
            endpoint,
            async stop() {
              if (proc.exitCode === null && proc.signalCode === null) {
                const exited = new Promise<void>((r) => proc.once("exit", () => r()));
                proc.kill("SIGTERM");
                const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
                await exited;
                clearTimeout(timer);
              }
              rmSync(dir, { recursive: true, force: true });
            },
          };
        }
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    proc.kill("SIGKILL");
    // a lost port race shows up as an early exit: try another port
  }
  throw new Error(
    `moto_server did not start:\n${existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-2000) : ""}`,
  );
}

/** The status of one GET (node:http or node:https with the given CA), rejecting when nothing answers within 1 s. */
function probe(url: string, ca: string | undefined): Promise<number> {
  const transport = url.startsWith("https:") ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.get(url, { timeout: 1000, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
  });
}

/**
 * Creates a key in the emulator and writes the seal "awskms" stanza for it (with the test credentials, 0600) to
 * `path`: what an operator adds to each node's configuration for a migration. Returns the key's ARN.
 */
export async function writeTestSealStanza(
  emu: KmsEmulator,
  path: string,
  target: "vault" | "openbao" = "vault",
): Promise<string> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const kms = await import("@aws-sdk/client-kms");
  const { renderSealStanza } = await import("../../src/autounseal/awskms-config.js");
  const client = new kms.KMSClient({
    region: KMS_TEST_REGION,
    endpoint: emu.endpoint,
    credentials: { accessKeyId: KMS_TEST_CREDENTIALS.accessKey, secretAccessKey: KMS_TEST_CREDENTIALS.secretKey },
  });
  const key = await client.send(new kms.CreateKeyCommand({}));
  client.destroy();
  const arn = key.KeyMetadata!.Arn!;
  writeFileSync(
    path,
    renderSealStanza({
      region: KMS_TEST_REGION,
      keyId: arn,
      endpoint: emu.endpoint,
      target,
      credentials: KMS_TEST_CREDENTIALS,
    }),
    { mode: 0o600 },
  );
  return arn;
}
