/**
 * The cluster side of `bootstrap plan|apply|verify`: which cluster (--kubeconfig FILE [--context C] or --in-cluster)
 * and, for plan and apply, --create-reviewer and its flags. Only argv handling and output here; the work is in
 * src/bootstrap/kubeconfig.ts and kube-reviewer.ts.
 */
import type { Command } from "commander";
import { parseTtlSeconds } from "../../bootstrap/duration.js";
import type { ReviewerOptions } from "../../bootstrap/kube-reviewer.js";
import type { KubeconfigCluster } from "../../bootstrap/kubeconfig.js";
import type { BootstrapSpec } from "../../bootstrap/spec.js";
import { UsageError } from "../../errors.js";
import type { CliIO } from "../io.js";

export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  createReviewer?: boolean;
  reviewerNamespace?: string;
  reviewerName?: string;
  reviewerTokenTtl?: string;
  rotateReviewerToken?: boolean;
}

/** --kubeconfig, --context, --in-cluster (plan, apply, verify). */
export function addClusterOptions(cmd: Command): Command {
  return cmd
    .option(
      "--kubeconfig <file>",
      "fill kubernetes_host, the CA (and issuer) of the spec's kubernetes auth from this cluster",
    )
    .option("--context <name>", "with --kubeconfig: the context to use (default: its current-context)")
    .option(
      "--in-cluster",
      "like --kubeconfig, from the pod this runs in (KUBERNETES_SERVICE_HOST/_PORT and its service account; SEALKEEPER_SERVICEACCOUNT_DIR overrides the directory)",
    );
}

/** --create-reviewer and its flags (plan, apply). */
export function addReviewerOptions(cmd: Command): Command {
  return cmd
    .option(
      "--create-reviewer",
      "with --kubeconfig or --in-cluster: create the token reviewer (service account, system:auth-delegator binding, a TokenRequest token) and set it as token_reviewer_jwt",
    )
    .option("--reviewer-namespace <ns>", "the reviewer service account's namespace (default kube-system)")
    .option("--reviewer-name <name>", "the reviewer service account's name (default sealkeeper-token-reviewer)")
    .option("--reviewer-token-ttl <duration>", "the reviewer token's lifetime (default 8760h: a year; at least 10m)")
    .option("--rotate-reviewer-token", "mint a new reviewer token even when the server has one");
}

/**
 * The cluster the flags name (undefined: none), after the flag combinations are checked. Reads files and env only.
 */
export async function clusterFromFlags(flags: KubeFlags, io: CliIO): Promise<KubeconfigCluster | undefined> {
  if (flags.kubeconfig && flags.inCluster)
    throw new UsageError("--kubeconfig and --in-cluster exclude each other: give one (the cluster to read)");
  if (flags.context && !flags.kubeconfig) throw new UsageError("--context needs --kubeconfig");
  const reviewerFlag = (
    [
      ["--reviewer-namespace", flags.reviewerNamespace],
      ["--reviewer-name", flags.reviewerName],
      ["--reviewer-token-ttl", flags.reviewerTokenTtl],
      ["--rotate-reviewer-token", flags.rotateReviewerToken],
    ] as const
  ).find(([, v]) => v !== undefined)?.[0];
  if (reviewerFlag && !flags.createReviewer) throw new UsageError(`${reviewerFlag} needs --create-reviewer`);
  if (flags.createReviewer && !flags.kubeconfig && !flags.inCluster)
    throw new UsageError("--create-reviewer needs --kubeconfig or --in-cluster: the cluster to create the reviewer in");
  const k = await import("../../bootstrap/kubeconfig.js");
  if (flags.kubeconfig) {
    const { resolve } = await import("node:path");
    return k.readKubeconfig(resolve(io.cwd, flags.kubeconfig), flags.context);
  }
  return flags.inCluster ? k.readInCluster(io.env) : undefined;
}

/** Fills the spec's kubernetes auth from the cluster; a line on stderr per method. */
export async function fillSpecFromCluster(
  spec: BootstrapSpec,
  cluster: KubeconfigCluster,
  flags: KubeFlags,
  io: CliIO,
): Promise<void> {
  const { fillFromCluster } = await import("../../bootstrap/kubeconfig.js");
  const flag = flags.inCluster ? "--in-cluster" : "--kubeconfig";
  for (const note of await fillFromCluster(spec, cluster, flag)) io.stderr.write(`${note}\n`);
}

/** The reviewer's options from the flags (undefined without --create-reviewer). */
export async function reviewerOptionsFromFlags(flags: KubeFlags): Promise<ReviewerOptions | undefined> {
  if (!flags.createReviewer) return undefined;
  const { REVIEWER_DEFAULTS, validateReviewerOptions } = await import("../../bootstrap/kube-reviewer.js");
  let expirationSeconds = REVIEWER_DEFAULTS.expirationSeconds;
  if (flags.reviewerTokenTtl !== undefined) {
    const s = parseTtlSeconds(flags.reviewerTokenTtl);
    if (s === undefined)
      throw new UsageError(`--reviewer-token-ttl: cannot parse "${flags.reviewerTokenTtl}" (e.g. 8760h, 30d, 3600)`);
    expirationSeconds = s;
  }
  const o: ReviewerOptions = {
    namespace: flags.reviewerNamespace ?? REVIEWER_DEFAULTS.namespace,
    name: flags.reviewerName ?? REVIEWER_DEFAULTS.name,
    expirationSeconds,
    rotate: flags.rotateReviewerToken === true,
  };
  validateReviewerOptions(o);
  return o;
}

/** apply's lines about what it did in the cluster (never the token). */
export function writeReviewerApplied(
  io: CliIO,
  applied: import("../../bootstrap/kube-reviewer.js").AppliedReviewer,
  o: ReviewerOptions,
  now: Date = new Date(),
): void {
  for (const c of applied.created) io.stderr.write(`created ${c}\n`);
  if (!applied.token) return;
  const { expiresAt } = applied.token;
  io.stderr.write(
    `minted a token for serviceaccount ${o.namespace}/${o.name} (TokenRequest), expires ${expiresAt || "(not said)"}\n`,
  );
  const until = Date.parse(expiresAt);
  if (Number.isFinite(until) && until < now.getTime() + (o.expirationSeconds - 300) * 1000) {
    io.stderr.write(
      "warning: the API server shortened the reviewer token's lifetime (its --service-account-max-token-expiration): rerun with --rotate-reviewer-token before it expires\n",
    );
  }
}
