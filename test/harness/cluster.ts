/**
 * Real Vault/OpenBao servers on loopback for integration tests, the demo and benchmarks.
 * Every server gets free ports and its own temp dir, and is killed when the test process exits, also on failure.
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { STALE_SEAL_CONFIG } from "../../src/autounseal/migrate.js";
import { VaultHttpError } from "../../src/errors.js";
import { VaultClient } from "../../src/vault/client.js";
import { resolveConnection } from "../../src/vault/env.js";
import { logChildOutput } from "./child-log.js";
import { spawnOwned } from "./owned-spawn.js";
import { serverBinaryPath, serverKind } from "./paths.js";
import { reservePort, reserveRun } from "./ports.js";

export interface NodeOptions {
  storage?: "raft" | "file";
  tls?: boolean;
  /** Raw HCL appended to the config (e.g. a seal "awskms" stanza). */
  extraConfig?: string;
  /** Extra listener settings (HCL lines inside listener "tcp"). */
  listenerExtra?: string;
  env?: Record<string, string>;
  /** Parent directory (the cluster's); default a new temp dir. */
  parentDir?: string;
  nodeId?: string;
  /** Raft leader address to retry_join. */
  retryJoin?: string;
  /** TLS material shared across a cluster. */
  tlsMaterial?: TlsMaterial;
}

export interface TlsMaterial {
  dir: string;
  caCertPath: string;
  certPath: string;
  keyPath: string;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

/** A free port for a test server (outside the ephemeral range, reserved across test processes: ports.ts). */
export function freePort(): Promise<number> {
  return reservePort();
}

/** Two consecutive free ports (api, cluster), so the cluster port is always api+1 as Vault's convention. */
function freePortPair(): Promise<number> {
  return reserveRun(2);
}

export class TestNode {
  readonly nodeId: string;
  readonly dir: string;
  readonly apiPort: number;
  readonly address: string;
  readonly caCertPath: string | undefined;
  readonly logPath: string;
  private proc: ChildProcess | undefined;
  private readonly configPath: string;
  private readonly env: Record<string, string>;

  constructor(opts: {
    nodeId: string;
    dir: string;
    apiPort: number;
    tls?: TlsMaterial;
    config: string;
    env: Record<string, string>;
  }) {
    this.nodeId = opts.nodeId;
    this.dir = opts.dir;
    this.apiPort = opts.apiPort;
    this.address = `${opts.tls ? "https" : "http"}://127.0.0.1:${opts.apiPort}`;
    this.caCertPath = opts.tls?.caCertPath;
    this.configPath = join(opts.dir, "config.hcl");
    this.logPath = join(opts.dir, "server.log");
    this.env = opts.env;
    writeFileSync(this.configPath, opts.config);
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts the server and waits until its API answers seal-status. */
  async start(): Promise<void> {
    if (this.running) return;
    const proc = spawnOwned(serverBinaryPath(), ["server", `-config=${this.configPath}`], {
      env: serverEnv(this.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    logChildOutput(proc, this.logPath);
    live.add(proc);
    proc.on("exit", () => live.delete(proc));
    this.proc = proc;
    await this.waitForApi();
  }

  /** Graceful stop (SIGTERM), then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    await this.signal("SIGTERM", 10_000);
  }

  /** Kills the server at once (SIGKILL): a crash, not a shutdown. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL", 5_000);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** Stops the node, wipes its storage and starts it again: uninitialised, as after a fresh install. */
  async wipe(): Promise<void> {
    await this.stop();
    rmSync(join(this.dir, "data"), { recursive: true, force: true });
    mkdirSync(join(this.dir, "data"), { recursive: true });
    await this.start();
  }

  /**
   * Rewrites this node's config file; it takes effect at the next start (an operator editing the config and
   * restarting the server, e.g. to turn on a listener option).
   */
  editConfig(edit: (hcl: string) => string): void {
    writeFileSync(this.configPath, edit(readFileSync(this.configPath, "utf8")));
  }

  /** A client for this node (with the test CA when TLS is on). */
  client(token?: string): VaultClient {
    return new VaultClient({
      ...resolveConnection({ address: this.address, caCert: this.caCertPath }, {}),
      token,
      timeoutMs: 15_000,
    });
  }

  readLog(): string {
    return existsSync(this.logPath) ? readFileSync(this.logPath, "utf8") : "";
  }

  private async signal(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.running) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill(sig);
    const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  private async waitForApi(): Promise<void> {
    const client = this.client();
    const deadline = Date.now() + 60_000;
    try {
      while (Date.now() < deadline) {
        if (!this.running) {
          throw new Error(`server ${this.nodeId} exited during start-up:\n${this.readLog().slice(-3000)}`);
        }
        try {
          await client.sealStatus();
          return;
        } catch (err) {
          // an answer too: an OpenBao 2.6 standby unsealed with migrate=true (by a concurrent `autounseal migrate`)
          // answers seal-status 500 until the seal is migrated (STALE_SEAL_CONFIG in src/autounseal/migrate.ts)
          if (err instanceof VaultHttpError && err.errors.some((e) => STALE_SEAL_CONFIG.test(e))) return;
          await sleep(100);
        }
      }
      throw new Error(`server ${this.nodeId} did not answer within 60 s:\n${this.readLog().slice(-3000)}`);
    } finally {
      await client.close();
    }
  }
}

/** The server's environment: ours minus variables that would silently change its config (see PROTOCOL.md). */
function serverEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  return { ...env, ...extra };
}

/** Writes the config and starts one real (non-dev) node. */
export async function startNode(opts: NodeOptions = {}): Promise<TestNode> {
  const node = await createNode(opts);
  await node.start();
  return node;
}

async function createNode(opts: NodeOptions): Promise<TestNode> {
  const parent = opts.parentDir ?? mkdtempSync(join(tmpdir(), "sealkeeper-node-"));
  const nodeId = opts.nodeId ?? "n1";
  const dir = join(parent, nodeId);
  mkdirSync(join(dir, "data"), { recursive: true });
  const port = await freePortPair();
  const tls = opts.tls ? (opts.tlsMaterial ?? makeTlsMaterial(parent)) : undefined;
  const scheme = tls ? "https" : "http";
  const storage = opts.storage ?? "raft";
  const retryJoin = opts.retryJoin
    ? `\n  retry_join {\n    leader_api_addr = "${opts.retryJoin}"${tls ? `\n    leader_ca_cert_file = "${tls.caCertPath}"` : ""}\n  }`
    : "";
  const storageHcl =
    storage === "raft"
      ? `storage "raft" {\n  path = "${join(dir, "data")}"\n  node_id = "${nodeId}"${retryJoin}\n}`
      : `storage "file" {\n  path = "${join(dir, "data")}"\n}`;
  const listenerTls = tls
    ? `tls_cert_file = "${tls.certPath}"\n  tls_key_file = "${tls.keyPath}"`
    : "tls_disable = true";
  const mlock = serverKind() === "vault" ? "disable_mlock = true\n" : "";
  const config = `${storageHcl}
listener "tcp" {
  address = "127.0.0.1:${port}"
  cluster_address = "127.0.0.1:${port + 1}"
  ${listenerTls}
  ${opts.listenerExtra ?? ""}
}
api_addr = "${scheme}://127.0.0.1:${port}"
cluster_addr = "https://127.0.0.1:${port + 1}"
${mlock}ui = false
log_level = "info"
${opts.extraConfig ?? ""}
`;
  return new TestNode({ nodeId, dir, apiPort: port, tls, config, env: opts.env ?? {} });
}

export interface TestCluster {
  dir: string;
  nodes: TestNode[];
  stop(): Promise<void>;
}

/** A raft cluster of n real nodes on loopback; nodes 2..n retry_join node 1. All sealed and uninitialised. */
export async function startCluster(n = 3, opts: NodeOptions = {}): Promise<TestCluster> {
  const dir = opts.parentDir ?? mkdtempSync(join(tmpdir(), "sealkeeper-cluster-"));
  const tlsMaterial = opts.tls ? (opts.tlsMaterial ?? makeTlsMaterial(dir)) : undefined;
  const first = await createNode({ ...opts, storage: "raft", parentDir: dir, nodeId: "n1", tlsMaterial });
  const nodes = [first];
  for (let i = 2; i <= n; i++) {
    nodes.push(
      await createNode({
        ...opts,
        storage: "raft",
        parentDir: dir,
        nodeId: `n${i}`,
        tlsMaterial,
        retryJoin: first.address,
      }),
    );
  }
  await Promise.all(nodes.map((node) => node.start()));
  return {
    dir,
    nodes,
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      if (process.env.SEALKEEPER_KEEP_TEST_DIRS !== "1") rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface InitResult {
  keys: string[];
  keysB64: string[];
  rootToken: string;
}

/**
 * Initialises nodes[0] through the raw HTTP API and unseals every node (the leader first, then the followers, which
 * join it). Waits until one node is active and the others are standbys.
 */
export async function initAndUnseal(
  nodes: TestNode[],
  opts: { shares?: number; threshold?: number } = {},
): Promise<InitResult> {
  const leader = nodes[0]!.client();
  const res = await leader.init({ secret_shares: opts.shares ?? 5, secret_threshold: opts.threshold ?? 3 });
  await leader.close();
  const keys = res.keys;
  await unsealNodes(nodes, keys.slice(0, opts.threshold ?? 3));
  return { keys, keysB64: res.keys_base64, rootToken: res.root_token };
}

/**
 * Unseals each node in order with the given keys, then waits for the HA roles to settle. A raft follower reports
 * initialized=false until its retry_join reaches the leader, and after the threshold it finishes unsealing in the
 * background (answering "sealed, progress 0" at once): so wait for the join, submit the keys once, then wait for the
 * unseal, and only resubmit after a quiet period (resubmitting while it joins gets a 500 from Vault).
 */
export async function unsealNodes(nodes: TestNode[], keys: string[]): Promise<void> {
  // the leader first, then the followers together: a follower's join challenge should not wait on another's unseal
  const [leader, ...followers] = nodes;
  if (leader) await unsealOne(leader, keys);
  await Promise.all(followers.map((node) => unsealOne(node, keys)));
  await waitForHa(nodes);
}

async function unsealOne(node: TestNode, keys: string[]): Promise<void> {
  const c = node.client();
  try {
    const deadline = Date.now() + 150_000;
    let submittedAt = 0;
    for (;;) {
      if (Date.now() > deadline) {
        throw new Error(`${node.nodeId} did not unseal within 150 s; its log ends:\n${node.readLog().slice(-2500)}`);
      }
      const status = await c.sealStatus().catch(() => undefined);
      if (status && !status.sealed) return;
      if (!status?.initialized || Date.now() - submittedAt < 10_000) {
        await sleep(200);
        continue;
      }
      submittedAt = Date.now();
      for (const key of keys) {
        const s = await c.unseal({ key }).catch(() => undefined);
        if (!s?.sealed) break;
      }
    }
  } finally {
    await c.close();
  }
}

/** Waits until every node answers health 200 (active) or 429 (standby), with exactly one active. */
export async function waitForHa(nodes: TestNode[], timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const statuses = await Promise.all(
      nodes.map(async (n) => {
        const c = n.client();
        try {
          return (await c.health()).status;
        } catch {
          return 0;
        } finally {
          await c.close();
        }
      }),
    );
    if (statuses.every((s) => s === 200 || s === 429) && statuses.filter((s) => s === 200).length === 1) return;
    await sleep(200);
  }
  throw new Error("cluster did not settle to one active node and standbys");
}

/** The active node and the standbys, once the cluster has settled to one active node. */
export async function clusterRoles(nodes: TestNode[]): Promise<{ active: TestNode; standbys: TestNode[] }> {
  await waitForHa(nodes);
  for (const n of nodes) {
    const c = n.client();
    try {
      if ((await c.health()).status === 200) return { active: n, standbys: nodes.filter((x) => x !== n) };
    } finally {
      await c.close();
    }
  }
  throw new Error("no active node");
}

export interface DevServer {
  address: string;
  rootToken: string;
  stop(): Promise<void>;
  client(token?: string): VaultClient;
}

/** A dev-mode server (in memory, initialised and unsealed): fast, for bootstrap tests that need no ceremony. */
export async function startDevServer(opts: { env?: Record<string, string>; args?: string[] } = {}): Promise<DevServer> {
  const port = await freePort();
  const rootToken = `dev-${randomBytes(12).toString("hex")}`;
  const dir = mkdtempSync(join(tmpdir(), "sealkeeper-dev-"));
  const logPath = join(dir, "server.log");
  const proc = spawnOwned(
    serverBinaryPath(),
    [
      "server",
      "-dev",
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      ...(opts.args ?? []),
    ],
    { env: serverEnv(opts.env ?? {}), stdio: ["ignore", "pipe", "pipe"] },
  );
  logChildOutput(proc, logPath);
  live.add(proc);
  proc.on("exit", () => live.delete(proc));
  const address = `http://127.0.0.1:${port}`;
  const mk = (token?: string) =>
    new VaultClient({ ...resolveConnection({ address }, {}), token: token ?? rootToken, timeoutMs: 15_000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dev server exited:\n${readFileSync(logPath, "utf8").slice(-3000)}`);
    const c = mk();
    try {
      const s = await c.sealStatus();
      if (!s.sealed) break;
    } catch {
      // not up yet
    } finally {
      await c.close();
    }
    if (Date.now() > deadline) throw new Error("dev server did not start within 60 s");
    await sleep(100);
  }
  return {
    address,
    rootToken,
    client: mk,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise<void>((r) => proc.once("exit", () => r()));
        proc.kill("SIGTERM");
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A throwaway CA and a server certificate for 127.0.0.1 and localhost, made with the real openssl. */
export function makeTlsMaterial(parent: string): TlsMaterial {
  const dir = join(parent, "tls");
  mkdirSync(dir, { recursive: true });
  const ssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
  ssl(
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=sealkeeper test CA",
  );
  ssl(
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  );
  writeFileSync(
    join(dir, "san.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  ssl(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "san.ext",
  );
  return { dir, caCertPath: join(dir, "ca.pem"), certPath: join(dir, "server.pem"), keyPath: join(dir, "server.key") };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
