/**
 * `bootstrap plan|apply --create-reviewer` (with --kubeconfig or --in-cluster): the token reviewer of the spec's
 * kubernetes auth methods, made in the cluster itself. A ServiceAccount (default kube-system/sealkeeper-token-reviewer),
 * a ClusterRoleBinding of it to system:auth-delegator (`NAME-auth-delegator`) and a long-lived token for it from the
 * TokenRequest API (no legacy token Secret: those need kube-controller-manager to be filled, and are discouraged since
 * Kubernetes 1.24); the token becomes each method's token_reviewer_jwt.
 *
 * observeReviewer reads the cluster (GETs only); decideReviewer (pure) says what apply will do; applyReviewer
 * creates what is missing and mints the token. The token lives in memory only: never logged, printed or written.
 *
 * Reruns: the server never returns the reviewer JWT, only token_reviewer_jwt_set. A method keeps its reviewer token
 * (no token is minted, nothing is written) when the service account already existed, the method has a token set and
 * nothing else in its config changes; otherwise (a new service account, a method without a token, a config write for
 * another field, which would clear a token it did not carry, or --rotate-reviewer-token) a new token is minted.
 */
import { UsageError } from "../errors.js";
import { formatSeconds } from "./duration.js";
import type { ObservedState } from "./kinds/kind.js";
import { planK8sConfig } from "./kinds/kubernetes-config.js";
import {
  clusterSource,
  type KubeconfigCluster,
  type KubeResponse,
  kubeRequest,
  kubeStatusMessage,
} from "./kubeconfig.js";
import type { BootstrapSpec } from "./spec.js";

export const REVIEWER_CLUSTER_ROLE = "system:auth-delegator";

export interface ReviewerOptions {
  namespace: string;
  name: string;
  /** The TokenRequest's expirationSeconds. */
  expirationSeconds: number;
  /** Mint a new token even when every method keeps its own. */
  rotate: boolean;
}

export const REVIEWER_DEFAULTS: ReviewerOptions = {
  namespace: "kube-system",
  name: "sealkeeper-token-reviewer",
  expirationSeconds: 365 * 86_400,
  rotate: false,
};

/** The API server refuses a TokenRequest under 10 minutes; over 2^32 s is refused by its validation too. */
export const MIN_TOKEN_SECONDS = 600;
export const MAX_TOKEN_SECONDS = 2 ** 32;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Checks the names the flags chose (a clear error here instead of the API server's 422 at apply). */
export function validateReviewerOptions(o: ReviewerOptions): void {
  if (!DNS_LABEL.test(o.namespace))
    throw new UsageError(`--reviewer-namespace ${JSON.stringify(o.namespace)} is not a namespace name (a DNS label)`);
  // the binding's name is NAME-auth-delegator: the service account's name must leave room for it
  if (!DNS_SUBDOMAIN.test(o.name) || o.name.length > 253 - "-auth-delegator".length)
    throw new UsageError(`--reviewer-name ${JSON.stringify(o.name)} is not a service account name (a DNS subdomain)`);
  if (o.expirationSeconds < MIN_TOKEN_SECONDS || o.expirationSeconds > MAX_TOKEN_SECONDS)
    throw new UsageError(
      `--reviewer-token-ttl must be between 10m and ${formatSeconds(MAX_TOKEN_SECONDS)} (the API server's limits)`,
    );
}

export function bindingName(o: ReviewerOptions): string {
  return `${o.name}-auth-delegator`;
}

/** What the cluster holds of the reviewer. */
export interface ReviewerObserved {
  serviceAccount: boolean;
  binding: boolean;
}

export interface ReviewerPlan {
  options: ReviewerOptions;
  /** e.g. `kubeconfig context prod (https://...)`. */
  cluster: string;
  serviceAccount: "create" | "exists";
  binding: "create" | "exists";
  bindingName: string;
  /** Auth paths whose token_reviewer_jwt becomes the new token; empty: no token is minted. */
  mintFor: string[];
  /** Auth paths keeping the reviewer token the server has. */
  keep: string[];
  /** Why a token is minted (one line), for the plan. */
  reason: string;
}

export function reviewerPending(p: ReviewerPlan): boolean {
  return p.serviceAccount === "create" || p.binding === "create" || p.mintFor.length > 0;
}

const SA_PATH = (o: ReviewerOptions) => `/api/v1/namespaces/${o.namespace}/serviceaccounts/${o.name}`;
const CRB_PATH = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings";

function refused(what: string, r: KubeResponse, k: KubeconfigCluster): UsageError {
  return new UsageError(`--create-reviewer: ${what} answered ${kubeStatusMessage(r)}`, {
    hint:
      r.status === 401 || r.status === 403
        ? `the identity of ${clusterSource(k)} needs: get/create serviceaccounts and serviceaccounts/token in the reviewer's namespace, get/create clusterrolebindings, and bind on the ClusterRole ${REVIEWER_CLUSTER_ROLE} (docs/bootstrap.md)`
        : undefined,
  });
}

/**
 * Reads the service account and the binding (GETs only: plan changes nothing). A binding of that name that does not
 * bind system:auth-delegator to this service account is an error, never overwritten.
 */
export async function observeReviewer(k: KubeconfigCluster, o: ReviewerOptions): Promise<ReviewerObserved> {
  const sa = await kubeRequest(k, "GET", SA_PATH(o));
  if (sa.status !== 200 && sa.status !== 404) throw refused(`GET serviceaccount ${o.namespace}/${o.name}`, sa, k);
  if (sa.status === 404) {
    const ns = await kubeRequest(k, "GET", `/api/v1/namespaces/${o.namespace}`);
    if (ns.status === 404)
      throw new UsageError(`--create-reviewer: namespace ${o.namespace} does not exist`, {
        hint: "create it first, or choose another with --reviewer-namespace",
      });
    // 403: may not read namespaces; the create at apply will tell
  }
  const name = bindingName(o);
  const crb = await kubeRequest(k, "GET", `${CRB_PATH}/${name}`);
  if (crb.status !== 200 && crb.status !== 404) throw refused(`GET clusterrolebinding ${name}`, crb, k);
  if (crb.status === 200) checkBinding(JSON.parse(crb.body) as ClusterRoleBinding, o);
  return { serviceAccount: sa.status === 200, binding: crb.status === 200 };
}

interface ClusterRoleBinding {
  roleRef?: { kind?: string; name?: string };
  subjects?: { kind?: string; name?: string; namespace?: string }[];
}

/** Throws unless the binding gives system:auth-delegator to the reviewer's service account. */
export function checkBinding(b: ClusterRoleBinding, o: ReviewerOptions): void {
  const roleOk = b.roleRef?.kind === "ClusterRole" && b.roleRef.name === REVIEWER_CLUSTER_ROLE;
  const subjectOk = (b.subjects ?? []).some(
    (s) => s.kind === "ServiceAccount" && s.name === o.name && s.namespace === o.namespace,
  );
  if (roleOk && subjectOk) return;
  throw new UsageError(
    `--create-reviewer: clusterrolebinding ${bindingName(o)} exists but does not bind the ClusterRole ${REVIEWER_CLUSTER_ROLE} to serviceaccount ${o.namespace}/${o.name} (it binds ${b.roleRef?.kind ?? "?"} ${b.roleRef?.name ?? "?"})`,
    { hint: "sealkeeper does not overwrite it: delete it, or choose another --reviewer-name" },
  );
}

/** The kubernetes auth methods of the spec that have a config (the ones a reviewer token is for). */
function reviewedMethods(spec: BootstrapSpec) {
  return spec.auth.filter((a) => a.type === "kubernetes" && a.config);
}

/**
 * What apply will do in the cluster and which methods get a new token (pure). The spec must not name its own
 * reviewer token for a method the reviewer is created for.
 */
export function decideReviewer(
  spec: BootstrapSpec,
  observed: ObservedState,
  k8s: ReviewerObserved,
  o: ReviewerOptions,
  cluster: string,
): ReviewerPlan {
  const methods = reviewedMethods(spec);
  if (methods.length === 0)
    throw new UsageError("--create-reviewer: the spec has no kubernetes auth method with a config");
  const mintFor: string[] = [];
  const keep: string[] = [];
  const reasons = new Set<string>();
  for (const a of methods) {
    const config = a.config!;
    if (config.token_reviewer_jwt !== undefined && config.token_reviewer_jwt_source === undefined) {
      throw new UsageError(
        `--create-reviewer: auth ${a.path}/ already names its reviewer token (token_reviewer_jwt_file or _env in the spec)`,
        { hint: "drop it from the spec, or do not pass --create-reviewer" },
      );
    }
    const have = observed.auth[a.path]?.type === "kubernetes" ? observed.authConfigs[a.path] : undefined;
    let why = "";
    if (o.rotate) why = "--rotate-reviewer-token";
    else if (!k8s.serviceAccount) why = "the service account is new";
    else if (!have?.token_reviewer_jwt_set) why = `auth ${a.path}/ has no reviewer token`;
    else if (planK8sConfig(a.path, { ...config, token_reviewer_jwt_source: "kept" }, have))
      why = `auth ${a.path}/'s config is rewritten (a write without the token would clear it)`;
    if (why) {
      mintFor.push(a.path);
      reasons.add(why);
    } else keep.push(a.path);
  }
  return {
    options: o,
    cluster,
    serviceAccount: k8s.serviceAccount ? "exists" : "create",
    binding: k8s.binding ? "exists" : "create",
    bindingName: bindingName(o),
    mintFor,
    keep,
    reason: [...reasons].join("; "),
  };
}

/**
 * Marks the spec's methods for the planner: `keep` ones keep the server's token; `mintFor` ones get `token` (before
 * apply mints it: a stand-in that the plan masks and that is never sent, see PENDING_TOKEN).
 */
export function markSpec(spec: BootstrapSpec, p: ReviewerPlan, token: string = PENDING_TOKEN): void {
  for (const a of reviewedMethods(spec)) {
    const config = a.config!;
    if (p.mintFor.includes(a.path)) {
      config.token_reviewer_jwt = token;
      config.token_reviewer_jwt_source = "minted";
    } else if (p.keep.includes(a.path)) {
      delete config.token_reviewer_jwt;
      config.token_reviewer_jwt_source = "kept";
    }
  }
}

/** The stand-in for the token in a plan (not a JWT: a server would refuse it, and apply checks it is gone). */
export const PENDING_TOKEN = "(the token --create-reviewer mints at apply)";

export interface AppliedReviewer {
  /** What was created, e.g. `serviceaccount kube-system/sealkeeper-token-reviewer`. */
  created: string[];
  /** Absent when every method keeps its token. */
  token?: {
    /** Secret: the reviewer's token. */
    value: string;
    /** The API server's expirationTimestamp (RFC 3339). */
    expiresAt: string;
  };
}

/** Creates the service account and the binding when missing, then mints the token when a method needs one. */
export async function applyReviewer(k: KubeconfigCluster, p: ReviewerPlan): Promise<AppliedReviewer> {
  const o = p.options;
  const created: string[] = [];
  const labels = { "app.kubernetes.io/managed-by": "sealkeeper" };
  if (p.serviceAccount === "create") {
    const r = await kubeRequest(k, "POST", `/api/v1/namespaces/${o.namespace}/serviceaccounts`, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: o.name, namespace: o.namespace, labels },
    });
    // 409: created meanwhile (a concurrent run): the same account
    if (r.status !== 201 && r.status !== 409) throw refused(`create serviceaccount ${o.namespace}/${o.name}`, r, k);
    created.push(`serviceaccount ${o.namespace}/${o.name}`);
  }
  if (p.binding === "create") {
    const r = await kubeRequest(k, "POST", CRB_PATH, {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: p.bindingName, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: REVIEWER_CLUSTER_ROLE },
      subjects: [{ kind: "ServiceAccount", name: o.name, namespace: o.namespace }],
    });
    if (r.status === 409) {
      const again = await kubeRequest(k, "GET", `${CRB_PATH}/${p.bindingName}`);
      if (again.status === 200) checkBinding(JSON.parse(again.body) as ClusterRoleBinding, o);
    } else if (r.status !== 201) throw refused(`create clusterrolebinding ${p.bindingName}`, r, k);
    created.push(`clusterrolebinding ${p.bindingName}`);
  }
  if (p.mintFor.length === 0) return { created };
  const r = await kubeRequest(k, "POST", `${SA_PATH(o)}/token`, {
    apiVersion: "authentication.k8s.io/v1",
    kind: "TokenRequest",
    spec: { expirationSeconds: o.expirationSeconds },
  });
  // never quote a 201's body (it holds the token); an error answer is a Status without one
  if (r.status !== 201 && r.status !== 200) throw refused(`TokenRequest for ${o.namespace}/${o.name}`, r, k);
  let status: { token?: unknown; expirationTimestamp?: unknown } | undefined;
  try {
    status = (JSON.parse(r.body) as { status?: typeof status }).status;
  } catch {
    status = undefined;
  }
  if (typeof status?.token !== "string" || status.token === "")
    throw new UsageError(`--create-reviewer: the TokenRequest for ${o.namespace}/${o.name} returned no token`);
  const expiresAt = typeof status.expirationTimestamp === "string" ? status.expirationTimestamp : "";
  return { created, token: { value: status.token, expiresAt } };
}

/** The plan's Kubernetes section, one line per object (never the token). `now` for the expiry shown. */
export function renderReviewerPlan(
  p: ReviewerPlan,
  paint: { green(s: string): string },
  now: Date = new Date(),
): string {
  const o = p.options;
  const mark = (create: boolean) => (create ? paint.green("+") : "=");
  const sa = `serviceaccount ${o.namespace}/${o.name}`;
  const lines = [
    `Kubernetes (${p.cluster}), --create-reviewer:`,
    p.serviceAccount === "create" ? `${mark(true)} create ${sa}` : `${mark(false)} ${sa} exists`,
    p.binding === "create"
      ? `${mark(true)} create clusterrolebinding ${p.bindingName}: ClusterRole ${REVIEWER_CLUSTER_ROLE} to ${sa}`
      : `${mark(false)} clusterrolebinding ${p.bindingName} exists (${REVIEWER_CLUSTER_ROLE} to ${sa})`,
  ];
  if (p.mintFor.length > 0) {
    const until = new Date(now.getTime() + o.expirationSeconds * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
    lines.push(
      `${mark(true)} create token for ${sa} (TokenRequest, expires in ${formatSeconds(o.expirationSeconds)}, about ${until}) as token_reviewer_jwt of ${p.mintFor.map((m) => `auth ${m}/`).join(", ")}: ${p.reason}`,
    );
  }
  if (p.keep.length > 0) {
    lines.push(
      `= ${p.keep.map((m) => `auth ${m}/`).join(", ")} keep${p.keep.length === 1 ? "s" : ""} the reviewer token it has (the server never shows it; --rotate-reviewer-token mints a new one)`,
    );
  }
  lines.push(reviewerPending(p) ? "" : "Kubernetes: no changes.");
  return `${lines.join("\n")}\n`;
}

/** The same for --format json. */
export function reviewerToJson(p: ReviewerPlan, applied?: AppliedReviewer): unknown {
  return {
    cluster: p.cluster,
    serviceAccount: { namespace: p.options.namespace, name: p.options.name, action: p.serviceAccount },
    clusterRoleBinding: { name: p.bindingName, clusterRole: REVIEWER_CLUSTER_ROLE, action: p.binding },
    token: {
      action: p.mintFor.length > 0 ? "create" : "keep",
      expirationSeconds: p.options.expirationSeconds,
      for: p.mintFor,
      keep: p.keep,
      ...(applied?.token?.expiresAt ? { expiresAt: applied.token.expiresAt } : {}),
    },
  };
}
