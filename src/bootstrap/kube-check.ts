/**
 * The Kubernetes end of a kubernetes auth method, checked from where `bootstrap verify` runs: the spec's
 * kubernetes_host, its CA and its reviewer token are used the way Vault uses them (a TokenReview POST with the
 * reviewer as bearer), so that the misconfigurations a login would only report as "permission denied" are named:
 * a CA that does not verify the API server, a reviewer token the API server does not accept, a reviewer whose service
 * account may not create TokenReviews (no system:auth-delegator binding), and an issuer that does not match the one
 * the cluster puts in its tokens (read from its OIDC discovery document) when issuer validation is on.
 *
 * An API server that cannot be reached from here is a note, not a failure: Vault may well reach it from its network.
 */

import { BodyTooLargeError, formatBytes, MiB, readBoundedBody } from "../util/bounded-body.js";
import { trustOptions } from "../util/tls-trust.js";
import type { AuthSpec } from "./spec.js";

export type KubeCheckStatus = "ok" | "fail" | "unreachable" | "skipped";

export interface KubeAuthCheck {
  /** The auth method, e.g. kubernetes/ */
  auth: string;
  check: "reviewer" | "issuer";
  status: KubeCheckStatus;
  message: string;
}

interface HttpAnswer {
  status: number;
  body: string;
}

type Caller = (url: string, opts: { ca?: string; token: string; method: string; body?: string }) => Promise<HttpAnswer>;

async function httpsCall(
  url: string,
  opts: { ca?: string; token: string; method: string; body?: string; timeoutMs: number },
): Promise<HttpAnswer> {
  const u = new URL(url);
  const transport = u.protocol === "https:" ? await import("node:https") : await import("node:http");
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: "application/json", authorization: `Bearer ${opts.token}` };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const req = transport.request(
      u,
      {
        method: opts.method,
        headers,
        timeout: opts.timeoutMs,
        ...(u.protocol === "https:" ? trustOptions({ ca: opts.ca || undefined }) : {}),
      },
      (res) => {
        readBoundedBody(res, 4 * MiB).then(
          (bytes) => resolve({ status: res.statusCode ?? 0, body: bytes.toString("utf8") }),
          (err: Error) => {
            req.destroy();
            reject(err);
          },
        );
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

const UNREACHABLE = new Set(["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT"]);

function describeNetworkError(err: unknown, host: string): { status: KubeCheckStatus; message: string } {
  const code = (err as NodeJS.ErrnoException).code ?? "";
  if (UNREACHABLE.has(code)) {
    return {
      status: "unreachable",
      message: `${host} cannot be reached from here (${code}); not checked (Vault may still reach it from its network)`,
    };
  }
  if (/CERT|SELF_SIGNED|VERIFY|SIGNATURE|SSL|TLS/i.test(code)) {
    return {
      status: "fail",
      message: `the API server's certificate does not verify with kubernetes_ca_cert (${code}): the CA is not this cluster's`,
    };
  }
  if (err instanceof BodyTooLargeError) {
    return { status: "fail", message: `${host} answered more than ${formatBytes(err.limit)}: stopped reading` };
  }
  return { status: "fail", message: `${host}: ${code || (err as Error).message}` };
}

/** Checks every kubernetes auth method of the spec that has a config. */
export async function checkKubernetesAuth(
  auth: readonly AuthSpec[],
  opts: { timeoutMs?: number; call?: Caller } = {},
): Promise<KubeAuthCheck[]> {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const call: Caller = opts.call ?? ((url, o) => httpsCall(url, { ...o, timeoutMs }));
  const out: KubeAuthCheck[] = [];
  for (const a of auth) {
    const c = a.type === "kubernetes" ? a.config : undefined;
    if (!c) continue;
    const id = `${a.path}/`;
    const host = c.kubernetes_host.replace(/\/+$/, "");
    const reviewer = c.token_reviewer_jwt;
    if (!reviewer) {
      out.push({
        auth: id,
        check: "reviewer",
        status: "skipped",
        message:
          "no token_reviewer_jwt in the spec: not checked (the server never returns one, e.g. --create-reviewer's); without one on the server, each login's own token reviews itself (its service account needs system:auth-delegator)",
      });
      continue;
    }
    if (!/^https:/i.test(host) && !/^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:|\/|$)/i.test(host)) {
      out.push({
        auth: id,
        check: "reviewer",
        status: "skipped",
        message: `${host} is plain HTTP and not loopback: the reviewer token is not sent there from here`,
      });
      continue;
    }
    let reviewOk = false;
    try {
      // the reviewer reviews its own token: the very call Vault makes for a login, with a token known to be valid
      const res = await call(`${host}/apis/authentication.k8s.io/v1/tokenreviews`, {
        ca: c.kubernetes_ca_cert,
        token: reviewer,
        method: "POST",
        body: JSON.stringify({
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenReview",
          spec: { token: reviewer },
        }),
      });
      out.push({ auth: id, check: "reviewer", ...reviewVerdict(res) });
      reviewOk = res.status === 201 || res.status === 200;
    } catch (err) {
      out.push({ auth: id, check: "reviewer", ...describeNetworkError(err, host) });
      continue;
    }
    // issuer validation on and an issuer given: the server compares the token's iss with it. (With no issuer, Vault
    // 1.21.0 accepts the cluster's tokens although its docs name kubernetes/serviceaccount as the default: observed in
    // test/integration/kube-auth.test.ts, so nothing is claimed about that case.)
    if (c.disable_iss_validation !== false || !c.issuer) continue;
    const want = c.issuer;
    if (!reviewOk) {
      out.push({ auth: id, check: "issuer", status: "skipped", message: "not checked: the reviewer check failed" });
      continue;
    }
    try {
      const res = await call(`${host}/.well-known/openid-configuration`, {
        ca: c.kubernetes_ca_cert,
        token: reviewer,
        method: "GET",
      });
      const issuer = res.status === 200 ? (JSON.parse(res.body) as { issuer?: string }).issuer : undefined;
      if (!issuer) {
        out.push({
          auth: id,
          check: "issuer",
          status: "skipped",
          message: `the cluster's OIDC discovery document could not be read (${res.status})`,
        });
      } else if (issuer === want) {
        out.push({ auth: id, check: "issuer", status: "ok", message: `the cluster issues its tokens as ${issuer}` });
      } else {
        out.push({
          auth: id,
          check: "issuer",
          status: "fail",
          message: `issuer validation is on and expects ${JSON.stringify(want)}, but the cluster issues its tokens as ${JSON.stringify(issuer)}: every login is refused (set issuer: ${issuer}, or leave disable_iss_validation out and let the TokenReview check it)`,
        });
      }
    } catch (err) {
      out.push({ auth: id, check: "issuer", ...describeNetworkError(err, host) });
    }
  }
  return out;
}

function reviewVerdict(res: HttpAnswer): { status: KubeCheckStatus; message: string } {
  if (res.status === 401) {
    return {
      status: "fail",
      message:
        "the API server does not accept the reviewer token (401): it expired, its service account was deleted, or it is from another cluster",
    };
  }
  if (res.status === 403) {
    let who = "the reviewer";
    try {
      const m = /User "([^"]+)"/.exec((JSON.parse(res.body) as { message?: string }).message ?? "");
      if (m) who = m[1] ?? who;
    } catch {
      // no Status body
    }
    return {
      status: "fail",
      message: `${who} may not create tokenreviews (403): bind its service account to the ClusterRole system:auth-delegator`,
    };
  }
  if (res.status !== 201 && res.status !== 200) {
    return { status: "fail", message: `the TokenReview API answered ${res.status}` };
  }
  let review: { status?: { authenticated?: boolean; user?: { username?: string }; error?: string } } = {};
  try {
    review = JSON.parse(res.body) as typeof review;
  } catch {
    return { status: "fail", message: "the TokenReview API answered something that is not JSON" };
  }
  if (!review.status?.authenticated) {
    return {
      status: "fail",
      message: `the API server does not authenticate the reviewer token${review.status?.error ? ` (${review.status.error})` : ""}`,
    };
  }
  return {
    status: "ok",
    message: `${review.status.user?.username ?? "the reviewer"} may review tokens (TokenReview answered)`,
  };
}
