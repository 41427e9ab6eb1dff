/**
 * `bootstrap plan|apply|verify --kubeconfig FILE [--context C]`: the cluster itself says where its API server is and
 * which CA signs it (the kubeconfig's cluster entry), and, when the spec validates the issuer, which issuer its
 * tokens carry (the OIDC discovery document, read with the kubeconfig's own credentials). These fill every kubernetes
 * auth method's kubernetes_host and kubernetes_ca_cert (and issuer), so plan shows them before apply writes them.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parse } from "yaml";
import { UsageError } from "../errors.js";
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

/** The cluster's service-account issuer, from its OIDC discovery document. */
export async function discoverIssuer(k: KubeconfigCluster, timeoutMs = 10_000): Promise<string> {
  const https = await import("node:https");
  const url = `${k.server}/.well-known/openid-configuration`;
  const body = await new Promise<string>((res, rej) => {
    const req = https.request(
      url,
      {
        method: "GET",
        timeout: timeoutMs,
        ...(k.ca ? { ca: k.ca } : {}),
        ...(k.credentials.cert && k.credentials.key ? { cert: k.credentials.cert, key: k.credentials.key } : {}),
        headers: {
          accept: "application/json",
          ...(k.credentials.token ? { authorization: `Bearer ${k.credentials.token}` } : {}),
        },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on("data", (c: Buffer) => chunks.push(c));
        r.on("end", () =>
          r.statusCode === 200
            ? res(Buffer.concat(chunks).toString("utf8"))
            : rej(new UsageError(`${url} answered ${r.statusCode}: cannot read the cluster's issuer`)),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", (e) =>
      rej(new UsageError(`cannot read ${url}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)),
    );
    req.end();
  });
  const issuer = (JSON.parse(body) as { issuer?: string }).issuer;
  if (!issuer) throw new UsageError(`${url} names no issuer`);
  return issuer;
}

/**
 * Fills every kubernetes auth method's host and CA from the kubeconfig (and its issuer from the cluster's discovery
 * document when the spec sets disable_iss_validation: false). Returns one line per method filled, for the plan.
 */
export async function fillFromKubeconfig(spec: BootstrapSpec, file: string, context?: string): Promise<string[]> {
  const k = readKubeconfig(file, context);
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
      `auth ${a.path}/: kubernetes_host ${k.server}${k.ca ? " and its CA" : ""}${issuer ? `, issuer ${issuer} (OIDC discovery)` : ""} from kubeconfig context ${k.context}`,
    );
  }
  if (notes.length === 0)
    throw new UsageError("--kubeconfig: the spec has no kubernetes auth method with a config to fill");
  return notes;
}
