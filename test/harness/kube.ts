/**
 * A real Kubernetes control plane on loopback for integration tests: etcd v3.7.3 and kube-apiserver v1.37.2 (built by
 * scripts/build-kube.sh), once per test file. Everything is made fresh per cluster with the real openssl: a CA, the API
 * server's certificate (127.0.0.1, localhost, kubernetes.default.svc...), an admin client certificate in
 * O=system:masters, and the RSA key pair the API server signs service-account tokens with. RBAC is on, the
 * service-account issuer is the in-cluster URL every Kubernetes 1.21+ cluster uses by default. No controller-manager:
 * no `default` service account, no legacy token Secrets (tests create what they need; `kubectl create token` works).
 *
 * Start-up waits on etcd's /health and the API server's /readyz (generous deadlines, no fixed sleeps); `stop()` ends
 * both and removes the directory. A process-exit hook kills whatever a crashed test left.
 */
import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { logChildOutput } from "./child-log.js";
import { freePort, sleep } from "./cluster.js";
import { spawnOwned } from "./owned-spawn.js";
import { kubeBinaryPath } from "./paths.js";

/** The issuer every cluster since Kubernetes 1.21 puts in its service-account tokens by default. */
export const KUBE_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface KubeRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface KubeStartup {
  /** Launch to etcd's /health answering true. */
  etcdMs: number;
  /** Launch to the API server's /readyz answering ok. */
  apiserverMs: number;
}

export interface KubeCluster {
  /** https://127.0.0.1:PORT: the kubernetes_host to configure. */
  server: string;
  /** The cluster CA (PEM file), for kubernetes_ca_cert_file. */
  caFile: string;
  /** The admin (system:masters) kubeconfig. */
  kubeconfig: string;
  issuer: string;
  dir: string;
  startup: KubeStartup;
  /** kubectl as the admin; `stdin` is piped in. */
  kubectl(args: string[], opts?: { stdin?: string }): Promise<KubeRun>;
  /** Like kubectl, but throws with kubectl's stderr unless it exits 0. Returns stdout. */
  kubectlOk(args: string[], opts?: { stdin?: string }): Promise<string>;
  /** `kubectl create token SA -n NS [--audience A] [--duration D]`: a token minted by the API server. */
  createToken(
    namespace: string,
    serviceAccount: string,
    opts?: { audience?: string; duration?: string },
  ): Promise<string>;
  /**
   * The same token with its time claims moved (iat/nbf/exp shifted by `shiftSeconds`), re-signed with the cluster's
   * own service-account signing key and key id: what the API server would have minted at another time. Used for an
   * expired token, which `kubectl create token` cannot give (the API server refuses durations under 10 minutes).
   */
  reissue(token: string, shiftSeconds: number): string;
  /** A raw HTTPS call to the API server with a bearer token (for TokenReview as a given identity). */
  api(
    method: string,
    path: string,
    opts?: { token?: string; body?: unknown },
  ): Promise<{ status: number; body: string }>;
  /** Resident memory of etcd and the API server now, in KiB (from /proc). */
  rssKiB(): { etcd: number; apiserver: number };
  /** Process ids (for the ESO harness and tests that need them). */
  pids(): { etcd: number | undefined; apiserver: number | undefined };
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const p of live) p.kill("SIGKILL");
});

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** The cluster's PKI, made with openssl in `dir`. */
export function makePki(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=sealkeeper-test-kubernetes-ca",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  const leaf = (name: string, subj: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subj], dir);
    openssl(
      [
        "x509",
        "-req",
        "-in",
        `${name}.csr`,
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        `${name}.crt`,
        "-days",
        "2",
        "-extfile",
        `${name}.ext`,
      ],
      dir,
    );
  };
  leaf(
    "apiserver",
    "/CN=kube-apiserver",
    [
      "basicConstraints=CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local",
      "",
    ].join("\n"),
  );
  leaf(
    "admin",
    "/O=system:masters/CN=sealkeeper-admin",
    ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth", ""].join("\n"),
  );
  // the service-account token signing key pair (RS256, as kube-apiserver's default)
  openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key"], dir);
  openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
}

function kubeconfigText(server: string, dir: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "  - name: sealkeeper-test",
    "    cluster:",
    `      server: ${server}`,
    `      certificate-authority: ${join(dir, "ca.crt")}`,
    "users:",
    "  - name: admin",
    "    user:",
    `      client-certificate: ${join(dir, "admin.crt")}`,
    `      client-key: ${join(dir, "admin.key")}`,
    "contexts:",
    "  - name: sealkeeper-test",
    "    context:",
    "      cluster: sealkeeper-test",
    "      user: admin",
    "current-context: sealkeeper-test",
    "",
  ].join("\n");
}

function logTail(path: string): string {
  return existsSync(path) ? readFileSync(path, "utf8").slice(-3000) : "(no log)";
}

function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function stopProc(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function spawnLogged(bin: string, args: string[], logPath: string, env: NodeJS.ProcessEnv): ChildProcess {
  const proc = spawnOwned(bin, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  logChildOutput(proc, logPath);
  live.add(proc);
  proc.on("exit", () => live.delete(proc));
  return proc;
}

/** GET with the cluster CA (and optionally the admin client certificate); resolves with status and body. */
function httpsCall(
  url: string,
  opts: { ca: string; cert?: string; key?: string; method?: string; token?: string; body?: string; timeoutMs?: number },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: "application/json" };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const req = request(
      url,
      {
        method: opts.method ?? "GET",
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        headers,
        timeout: opts.timeoutMs ?? 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

function b64json(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/**
 * Manifests for the namespaces and service accounts a test logs in with (`[namespace, name]` pairs), plus (unless
 * `reviewer: false`, for `--create-reviewer`, which makes its own) the reviewer vault/vault-auth bound to
 * system:auth-delegator (as Vault's docs set it up), for `kubectl apply -f -`.
 */
export function kubeIdentities(serviceAccounts: [string, string][], opts: { reviewer?: boolean } = {}): string {
  const reviewer = opts.reviewer !== false;
  const all: [string, string][] = [
    ...serviceAccounts,
    ...(reviewer ? [["vault", "vault-auth"] as [string, string]] : []),
  ];
  return [...new Set(all.map(([ns]) => ns))]
    .map((ns) => `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns} }\n`)
    .concat(
      all.map(([ns, sa]) => `apiVersion: v1\nkind: ServiceAccount\nmetadata: { name: ${sa}, namespace: ${ns} }\n`),
      reviewer
        ? [
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: { name: vault-auth-delegator }\n" +
              'roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator" }\n' +
              "subjects: [{ kind: ServiceAccount, name: vault-auth, namespace: vault }]\n",
          ]
        : [],
    )
    .join("---\n");
}

/** The claims of a JWT (no verification: for tests that inspect what the API server minted). */
export function jwtClaims(token: string): Record<string, unknown> {
  return b64json(token.split(".")[1] ?? "");
}

/**
 * Starts etcd and kube-apiserver on loopback and waits until the API server is ready. `apiserverArgs` are appended
 * to the API server's command line.
 */
export async function startKubeCluster(opts: { apiserverArgs?: string[] } = {}): Promise<KubeCluster> {
  for (const c of ["etcd", "kube-apiserver", "kubectl"] as const) {
    if (!existsSync(kubeBinaryPath(c)))
      throw new Error(`${kubeBinaryPath(c)} is missing: run scripts/setup.sh (or bash scripts/build-kube.sh all)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "sealkeeper-kube-"));
  makePki(dir);
  const ca = readFileSync(join(dir, "ca.crt"), "utf8");
  const cert = readFileSync(join(dir, "admin.crt"), "utf8");
  const key = readFileSync(join(dir, "admin.key"), "utf8");
  const env = { PATH: process.env.PATH, HOME: dir };

  // etcd: its own data dir, client and peer ports on 127.0.0.1; a lost port race shows as an early exit: retry
  let etcd: ChildProcess | undefined;
  let etcdUrl = "";
  let etcdMs = 0;
  const etcdLog = join(dir, "etcd.log");
  for (let attempt = 0; attempt < 3 && !etcdUrl; attempt++) {
    const [client, peer] = [await freePort(), await freePort()];
    const t0 = Date.now();
    const url = `http://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    etcd = spawnLogged(
      kubeBinaryPath("etcd"),
      [
        "--name=sealkeeper",
        `--data-dir=${join(dir, `etcd-data-${attempt}`)}`,
        `--listen-client-urls=${url}`,
        `--advertise-client-urls=${url}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=sealkeeper=${peerUrl}`,
        "--log-level=warn",
      ],
      etcdLog,
      env,
    );
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && etcd.exitCode === null) {
      try {
        const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
        if (res.ok && ((await res.json()) as { health?: string }).health === "true") {
          etcdUrl = url;
          etcdMs = Date.now() - t0;
          break;
        }
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    if (!etcdUrl) await stopProc(etcd);
  }
  if (!etcdUrl) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`etcd did not become healthy:\n${logTail(etcdLog)}`);
  }

  let apiserver: ChildProcess | undefined;
  let server = "";
  let apiserverMs = 0;
  const apiLog = join(dir, "kube-apiserver.log");
  mkdirSync(join(dir, "apiserver-certs"));
  for (let attempt = 0; attempt < 3 && !server; attempt++) {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const t0 = Date.now();
    apiserver = spawnLogged(
      kubeBinaryPath("kube-apiserver"),
      [
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${port}`,
        `--etcd-servers=${etcdUrl}`,
        `--etcd-prefix=/sealkeeper-${attempt}`,
        `--tls-cert-file=${join(dir, "apiserver.crt")}`,
        `--tls-private-key-file=${join(dir, "apiserver.key")}`,
        `--client-ca-file=${join(dir, "ca.crt")}`,
        `--service-account-issuer=${KUBE_ISSUER}`,
        `--service-account-key-file=${join(dir, "sa.pub")}`,
        `--service-account-signing-key-file=${join(dir, "sa.key")}`,
        "--authorization-mode=RBAC",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--endpoint-reconciler-type=none",
        `--cert-dir=${join(dir, "apiserver-certs")}`,
        // an unauthenticated client is anonymous (RBAC gives it only the health and discovery paths)
        "--anonymous-auth=true",
        "--profiling=false",
        "--v=0",
        ...(opts.apiserverArgs ?? []),
      ],
      apiLog,
      env,
    );
    const deadline = Date.now() + 150_000;
    while (Date.now() < deadline && apiserver.exitCode === null) {
      try {
        const r = await httpsCall(`${url}/readyz`, { ca, cert, key, timeoutMs: 3000 });
        if (r.status === 200 && r.body.trim() === "ok") {
          server = url;
          apiserverMs = Date.now() - t0;
          break;
        }
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    if (!server) await stopProc(apiserver);
  }
  if (!server) {
    await stopProc(etcd);
    const tail = logTail(apiLog);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`kube-apiserver did not become ready within 150 s:\n${tail}`);
  }

  const kubeconfig = join(dir, "admin.kubeconfig");
  writeFileSync(kubeconfig, kubeconfigText(server, dir), { mode: 0o600 });
  const caFile = join(dir, "ca.crt");
  const saKey = createPrivateKey(readFileSync(join(dir, "sa.key")));

  const kubectl = (args: string[], o: { stdin?: string } = {}): Promise<KubeRun> =>
    new Promise((resolve) => {
      const child = execFile(
        kubeBinaryPath("kubectl"),
        [`--kubeconfig=${kubeconfig}`, ...args],
        { env: { PATH: process.env.PATH, HOME: dir }, maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
        (err, stdout, stderr) =>
          resolve({
            code: err ? (typeof err.code === "number" ? err.code : 1) : 0,
            stdout: String(stdout),
            stderr: String(stderr),
          }),
      );
      if (o.stdin !== undefined) child.stdin?.end(o.stdin);
      else child.stdin?.end();
    });
  const kubectlOk = async (args: string[], o: { stdin?: string } = {}): Promise<string> => {
    const r = await kubectl(args, o);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  return {
    server,
    caFile,
    kubeconfig,
    issuer: KUBE_ISSUER,
    dir,
    startup: { etcdMs, apiserverMs },
    kubectl,
    kubectlOk,
    async createToken(namespace, serviceAccount, o = {}) {
      const args = ["create", "token", serviceAccount, "-n", namespace];
      if (o.audience !== undefined) args.push(`--audience=${o.audience}`);
      if (o.duration !== undefined) args.push(`--duration=${o.duration}`);
      return (await kubectlOk(args)).trim();
    },
    reissue(token, shiftSeconds) {
      const [h, p] = token.split(".");
      const header = b64json(h ?? "");
      const claims = b64json(p ?? "");
      for (const c of ["iat", "nbf", "exp"]) {
        if (typeof claims[c] === "number") claims[c] = (claims[c] as number) + shiftSeconds;
      }
      const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
      const input = `${enc(header)}.${enc(claims)}`;
      return `${input}.${sign("RSA-SHA256", Buffer.from(input), saKey).toString("base64url")}`;
    },
    api: (method, path, o = {}) =>
      httpsCall(`${server}${path}`, {
        ca,
        method,
        token: o.token,
        body: o.body === undefined ? undefined : JSON.stringify(o.body),
        ...(o.token ? {} : { cert, key }),
      }),
    rssKiB: () => ({ etcd: rssOf(etcd?.pid), apiserver: rssOf(apiserver?.pid) }),
    pids: () => ({ etcd: etcd?.pid, apiserver: apiserver?.pid }),
    async stop() {
      await stopProc(apiserver);
      await stopProc(etcd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
