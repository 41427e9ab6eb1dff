/**
 * `bootstrap plan|apply|verify --kubeconfig FILE [--context C]`: the cluster itself says where its API server is and
 * which CA signs it (the kubeconfig's cluster entry), and, when the spec validates the issuer, which issuer its
 * tokens carry (the OIDC discovery document, read with the kubeconfig's own credentials). These fill every kubernetes
 * auth method's kubernetes_host and kubernetes_ca_cert (and issuer), so plan shows them before apply writes them.
 * `--in-cluster` gets the same from the pod's environment and service-account files (readInCluster). kubeRequest is
 * the one HTTPS call to an API server (also kube-reviewer.ts's), over node:https with the cluster's CA and credentials.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import { UsageError } from "../errors.js";
import { BodyTooLargeError, formatBytes, MiB, readBoundedBody } from "../util/bounded-body.js";
import { trustOptions } from "../util/tls-trust.js";
import type { BootstrapSpec } from "./spec.js";

interface KubeconfigFile {
  "current-context"?: string;
  contexts?: { name: string; context?: { cluster?: string; user?: string } }[];
  clusters?: {
    name: string;
    cluster?: { server?: string; "certificate-authority"?: string; "certificate-authority-data"?: string };
  }[];
  users?: {
    name: string;
    user?: {
      token?: string;
      "client-certificate"?: string;
      "client-certificate-data"?: string;
      "client-key"?: string;
      "client-key-data"?: string;
    };
  }[];
}

export interface KubeconfigCluster {
  context: string;
  server: string;
  /** PEM */
  ca?: string;
  credentials: { token?: string; cert?: string; key?: string };
}

/** Reads the kubeconfig's context (default its current-context): server, CA and the user's credentials. */
export function readKubeconfig(file: string, context?: string): KubeconfigCluster {
  let doc: KubeconfigFile;
  try {
    doc = (parse(readFileSync(file, "utf8")) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new UsageError(
      `cannot read kubeconfig ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const name = context ?? doc["current-context"];
  if (!name) throw new UsageError(`kubeconfig ${file} has no current-context: give --context`);
  const ctx = doc.contexts?.find((c) => c.name === name)?.context;
  if (!ctx) throw new UsageError(`kubeconfig ${file} has no context ${name}`);
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new UsageError(`kubeconfig ${file}: context ${name} names no cluster with a server`);
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const base = dirname(file);
  const fileOrData = (path: string | undefined, data: string | undefined): string | undefined => {
    if (data) return Buffer.from(data, "base64").toString("utf8");
    if (path) return readFileSync(isAbsolute(path) ? path : resolve(base, path), "utf8");
    return undefined;
  };
  return {
    context: name,
    server: cluster.server.replace(/\/+$/, ""),
    ca: fileOrData(cluster["certificate-authority"], cluster["certificate-authority-data"])?.trim(),
    credentials: {
      token: user.token,
      cert: fileOrData(user["client-certificate"], user["client-certificate-data"]),
      key: fileOrData(user["client-key"], user["client-key-data"]),
    },
  };
}

/** An API server's answer: its status and body (a TokenRequest's body holds a token: never print it). */
export interface KubeResponse {
  status: number;
  body: string;
}

/** The API server's answers read here (discovery, a token review, a self-subject review) are a few KiB. */
const KUBE_BODY_LIMIT = 4 * MiB;

/**
 * One HTTPS call to the cluster's API server with the cluster's CA and credentials (client certificate or bearer
 * token), the way kubectl would make it. Resolves with any status; rejects (UsageError) only when no answer came.
 */
export async function kubeRequest(
  k: KubeconfigCluster,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
): Promise<KubeResponse> {
  const https = await import("node:https");
  const url = `${k.server}${path}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<KubeResponse>((res, rej) => {
    const req = https.request(
      url,
      {
        method,
        timeout: timeoutMs,
        // the cluster's CA, else the default trust (with a NODE_EXTRA_CA_CERTS the launcher deferred)
        ...trustOptions({ ca: k.ca || undefined, cert: k.credentials.cert, key: k.credentials.key }),
        headers: {
          accept: "application/json",
          ...(payload !== undefined ? { "content-type": "application/json" } : {}),
          ...(k.credentials.token ? { authorization: `Bearer ${k.credentials.token}` } : {}),
        },
      },
      (r) => {
        readBoundedBody(r, KUBE_BODY_LIMIT).then(
          (bytes) => res({ status: r.statusCode ?? 0, body: bytes.toString("utf8") }),
          (e: Error) => {
            req.destroy();
            rej(
              new UsageError(
                `${url} ${e instanceof BodyTooLargeError ? `answered more than ${formatBytes(e.limit)}: stopped reading` : `closed the connection during the answer`}`,
              ),
            );
          },
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e) =>
      rej(new UsageError(`cannot reach ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)),
    );
    req.end(payload);
  });
}

/** The message of a Kubernetes Status answer (what kubectl prints for a failed call), else the bare status. */
export function kubeStatusMessage(r: KubeResponse): string {
  try {
    const m = (JSON.parse(r.body) as { message?: unknown }).message;
    if (typeof m === "string" && m !== "") return `${r.status}: ${m}`;
  } catch {
    // not a Status object
  }
  return String(r.status);
}

/** The cluster's service-account issuer, from its OIDC discovery document. */
export async function discoverIssuer(k: KubeconfigCluster, timeoutMs = 10_000): Promise<string> {
  const url = `${k.server}/.well-known/openid-configuration`;
  const r = await kubeRequest(k, "GET", "/.well-known/openid-configuration", undefined, timeoutMs);
  if (r.status !== 200) throw new UsageError(`${url} answered ${r.status}: cannot read the cluster's issuer`);
  const issuer = (JSON.parse(r.body) as { issuer?: string }).issuer;
  if (!issuer) throw new UsageError(`${url} names no issuer`);
  return issuer;
}

/** Where a pod finds its service account's token, CA and namespace; SEALKEEPER_SERVICEACCOUNT_DIR overrides it. */
export const SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * `--in-cluster`: the API server and credentials a pod has, as client-go's rest.InClusterConfig finds them:
 * KUBERNETES_SERVICE_HOST / _PORT, and the pod's service account token, CA and namespace in SERVICEACCOUNT_DIR (or
 * the directory SEALKEEPER_SERVICEACCOUNT_DIR names).
 */
export function readInCluster(env: Record<string, string | undefined>): KubeconfigCluster & { namespace?: string } {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new UsageError(
      "--in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: this is not a pod (use --kubeconfig outside a cluster)",
    );
  }
  const dir = env.SEALKEEPER_SERVICEACCOUNT_DIR || SERVICEACCOUNT_DIR;
  const read = (name: string, required: boolean): string | undefined => {
    try {
      return readFileSync(resolve(dir, name), "utf8").trim();
    } catch (err) {
      if (!required) return undefined;
      throw new UsageError(
        `--in-cluster: cannot read the pod's service account ${name} ${resolve(dir, name)}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
        {
          hint: "mount the service account token (automountServiceAccountToken: true), or set SEALKEEPER_SERVICEACCOUNT_DIR",
        },
      );
    }
  };
  const token = read("token", true);
  if (!token) throw new UsageError(`--in-cluster: the service account token ${resolve(dir, "token")} is empty`);
  const ca = read("ca.crt", true);
  const namespace = read("namespace", false);
  return {
    context: "in-cluster",
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ca,
    credentials: { token },
    ...(namespace ? { namespace } : {}),
  };
}

/** Where the cluster's facts came from, for the plan's notes: `kubeconfig context C` or `in-cluster`. */
export function clusterSource(k: KubeconfigCluster): string {
  return k.context === "in-cluster" ? "the pod's service account (in-cluster)" : `kubeconfig context ${k.context}`;
}

/**
 * Fills every kubernetes auth method's host and CA from the cluster (and its issuer from the cluster's discovery
 * document when the spec sets disable_iss_validation: false). Returns one line per method filled, for the plan.
 */
export async function fillFromCluster(spec: BootstrapSpec, k: KubeconfigCluster, flag: string): Promise<string[]> {
  const notes: string[] = [];
  for (const a of spec.auth) {
    if (a.type !== "kubernetes" || !a.config) continue;
    a.config.kubernetes_host = k.server;
    if (k.ca) a.config.kubernetes_ca_cert = k.ca;
    let issuer = "";
    if (a.config.disable_iss_validation === false) {
      issuer = await discoverIssuer(k);
      a.config.issuer = issuer;
    }
    notes.push(
      `auth ${a.path}/: kubernetes_host ${k.server}${k.ca ? " and its CA" : ""}${issuer ? `, issuer ${issuer} (OIDC discovery)` : ""} from ${clusterSource(k)}`,
    );
  }
  if (notes.length === 0) throw new UsageError(`${flag}: the spec has no kubernetes auth method with a config to fill`);
  return notes;
}
