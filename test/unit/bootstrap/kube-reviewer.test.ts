import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  checkBinding,
  decideReviewer,
  markSpec,
  PENDING_TOKEN,
  REVIEWER_DEFAULTS,
  type ReviewerObserved,
  renderReviewerPlan,
  reviewerPending,
  reviewerToJson,
  validateReviewerOptions,
} from "../../../src/bootstrap/kube-reviewer.js";
import { readInCluster } from "../../../src/bootstrap/kubeconfig.js";
import { type ObservedState, planBootstrap } from "../../../src/bootstrap/plan.js";
import { parseSpec } from "../../../src/bootstrap/spec.js";
import { writeReviewerApplied } from "../../../src/cli/commands/bootstrap-kube.js";
import type { CliIO } from "../../../src/cli/io.js";
import { UsageError } from "../../../src/errors.js";
import { runSealkeeper } from "../../harness/run-cli.js";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
const dir = mkdtempSync(join(tmpdir(), "sealkeeper-reviewer-unit-"));
writeFileSync(join(dir, "ca.pem"), `${CA}\n`);

const SPEC = (extra = "") =>
  [
    "version: 1",
    "auth:",
    "  - path: kubernetes",
    "    type: kubernetes",
    "    config:",
    "      kubernetes_host: https://127.0.0.1:6443",
    "      kubernetes_ca_cert_file: ca.pem",
    "      disable_local_ca_jwt: true",
    ...(extra ? [`      ${extra}`] : []),
    "",
  ].join("\n");

const spec = (extra = "") => parseSpec(SPEC(extra), join(dir, "spec.yaml"), { env: { REVIEWER: "x.y.z" } });

/** The server after a first apply with a reviewer token (or without one). */
function converged(tokenSet: boolean, host = "https://127.0.0.1:6443"): ObservedState {
  return {
    mounts: {},
    auth: {
      token: { type: "token", description: "", options: {} },
      kubernetes: { type: "kubernetes", description: "", options: {} },
    },
    authConfigs: {
      kubernetes: {
        kubernetes_host: host,
        kubernetes_ca_cert: CA,
        issuer: "",
        disable_iss_validation: true,
        disable_local_ca_jwt: true,
        use_annotations_as_alias_metadata: false,
        pem_keys: [],
        token_reviewer_jwt_set: tokenSet,
      },
    },
    roles: {},
    policyNames: ["default", "root"],
    policies: {},
  };
}

const exists: ReviewerObserved = { serviceAccount: true, binding: true };
const none: ReviewerObserved = { serviceAccount: false, binding: false };
const noColor = { green: (s: string) => s };

describe("decideReviewer", () => {
  it("a fresh cluster: create the service account, the binding and a token for every kubernetes method", () => {
    const s = spec();
    const p = decideReviewer(s, converged(false), none, REVIEWER_DEFAULTS, "kubeconfig context test");
    expect(p).toMatchObject({ serviceAccount: "create", binding: "create", mintFor: ["kubernetes"], keep: [] });
    expect(p.bindingName).toBe("sealkeeper-token-reviewer-auth-delegator");
    expect(reviewerPending(p)).toBe(true);
    markSpec(s, p);
    const plan = planBootstrap(s, converged(false));
    const change = plan.changes.find((c) => c.id === "config auth/kubernetes/config");
    expect(change?.fields).toEqual([{ field: "token_reviewer_jwt", before: false, after: true, sensitive: true }]);
    expect(change?.requests[0]?.body?.token_reviewer_jwt).toBe(PENDING_TOKEN);
    // apply swaps in the real token
    markSpec(s, p, "minted.jwt.value");
    expect(planBootstrap(s, converged(false)).changes[0]?.requests[0]?.body?.token_reviewer_jwt).toBe(
      "minted.jwt.value",
    );
  });

  it("a rerun: everything exists and the server has a token: nothing to do, the token kept", () => {
    const s = spec();
    const p = decideReviewer(s, converged(true), exists, REVIEWER_DEFAULTS, "c");
    expect(p).toMatchObject({ serviceAccount: "exists", binding: "exists", mintFor: [], keep: ["kubernetes"] });
    expect(reviewerPending(p)).toBe(false);
    markSpec(s, p);
    expect(planBootstrap(s, converged(true)).changes).toEqual([]);
    expect(renderReviewerPlan(p, noColor)).toContain("Kubernetes: no changes.");
  });

  it("mints again when the service account is new, the method has none, another field changes, or on --rotate", () => {
    const cases: [ObservedState, ReviewerObserved, boolean, RegExp][] = [
      [converged(true), { serviceAccount: false, binding: true }, false, /the service account is new/],
      [converged(false), exists, false, /auth kubernetes\/ has no reviewer token/],
      [converged(true, "https://old:6443"), exists, false, /config is rewritten/],
      [converged(true), exists, true, /--rotate-reviewer-token/],
    ];
    for (const [observed, k8s, rotate, why] of cases) {
      const s = spec();
      const p = decideReviewer(s, observed, k8s, { ...REVIEWER_DEFAULTS, rotate }, "c");
      expect(p.mintFor).toEqual(["kubernetes"]);
      expect(p.reason).toMatch(why);
      markSpec(s, p);
      const change = planBootstrap(s, observed).changes.find((c) => c.id === "config auth/kubernetes/config");
      expect(change?.requests[0]?.body?.token_reviewer_jwt).toBe(PENDING_TOKEN);
      expect(change?.fields.map((f) => f.field)).toContain("token_reviewer_jwt");
    }
  });

  it("only the binding missing: it is created, the token kept", () => {
    const p = decideReviewer(spec(), converged(true), { serviceAccount: true, binding: false }, REVIEWER_DEFAULTS, "c");
    expect(p).toMatchObject({ binding: "create", mintFor: [], keep: ["kubernetes"] });
    expect(reviewerPending(p)).toBe(true);
  });

  it("refuses a spec that names its own reviewer token, and a spec without kubernetes auth", () => {
    expect(() =>
      decideReviewer(spec("token_reviewer_jwt_env: REVIEWER"), converged(true), exists, REVIEWER_DEFAULTS, "c"),
    ).toThrow(/auth kubernetes\/ already names its reviewer token/);
    const noKube = parseSpec("version: 1\n", join(dir, "empty.yaml"));
    expect(() => decideReviewer(noKube, converged(true), exists, REVIEWER_DEFAULTS, "c")).toThrow(
      /no kubernetes auth method/,
    );
  });
});

describe("the reviewer plan's views", () => {
  it("names the service account, the binding and the token's lifetime, never a token", () => {
    const p = decideReviewer(spec(), converged(false), none, REVIEWER_DEFAULTS, "kubeconfig context test, https://k");
    const text = renderReviewerPlan(p, noColor, new Date("2026-12-03T13:00:00Z"));
    expect(text).toBe(
      [
        "Kubernetes (kubeconfig context test, https://k), --create-reviewer:",
        "+ create serviceaccount kube-system/sealkeeper-token-reviewer",
        "+ create clusterrolebinding sealkeeper-token-reviewer-auth-delegator: ClusterRole system:auth-delegator to serviceaccount kube-system/sealkeeper-token-reviewer",
        "+ create token for serviceaccount kube-system/sealkeeper-token-reviewer (TokenRequest, expires in 365d, about 2027-12-03T13:00:00Z) as token_reviewer_jwt of auth kubernetes/: the service account is new",
        "",
        "",
      ].join("\n"),
    );
    expect(reviewerToJson(p)).toEqual({
      cluster: "kubeconfig context test, https://k",
      serviceAccount: { namespace: "kube-system", name: "sealkeeper-token-reviewer", action: "create" },
      clusterRoleBinding: {
        name: "sealkeeper-token-reviewer-auth-delegator",
        clusterRole: "system:auth-delegator",
        action: "create",
      },
      token: { action: "create", expirationSeconds: 31_536_000, for: ["kubernetes"], keep: [] },
    });
  });
});

describe("validateReviewerOptions and checkBinding", () => {
  it("refuses names the API server would refuse, and lifetimes outside its limits", () => {
    const bad: [Partial<typeof REVIEWER_DEFAULTS>, RegExp][] = [
      [{ namespace: "Kube_System" }, /--reviewer-namespace "Kube_System" is not a namespace name/],
      [{ name: "a/b" }, /--reviewer-name "a\/b" is not a service account name/],
      [{ expirationSeconds: 599 }, /--reviewer-token-ttl must be between 10m/],
    ];
    for (const [o, msg] of bad) expect(() => validateReviewerOptions({ ...REVIEWER_DEFAULTS, ...o })).toThrow(msg);
    expect(() =>
      validateReviewerOptions({ ...REVIEWER_DEFAULTS, name: "vault.reviewer", namespace: "vault" }),
    ).not.toThrow();
  });

  it("accepts a binding of system:auth-delegator to the reviewer, refuses any other", () => {
    const subject = { kind: "ServiceAccount", name: "sealkeeper-token-reviewer", namespace: "kube-system" };
    checkBinding(
      { roleRef: { kind: "ClusterRole", name: "system:auth-delegator" }, subjects: [subject] },
      REVIEWER_DEFAULTS,
    );
    expect(() =>
      checkBinding({ roleRef: { kind: "ClusterRole", name: "cluster-admin" }, subjects: [subject] }, REVIEWER_DEFAULTS),
    ).toThrow(
      /exists but does not bind the ClusterRole system:auth-delegator .* \(it binds ClusterRole cluster-admin\)/,
    );
    expect(() =>
      checkBinding(
        { roleRef: { kind: "ClusterRole", name: "system:auth-delegator" }, subjects: [{ ...subject, namespace: "x" }] },
        REVIEWER_DEFAULTS,
      ),
    ).toThrow(UsageError);
  });
});

describe("readInCluster", () => {
  const saDir = (files: Record<string, string>) => {
    const d = mkdtempSync(join(dir, "sa-"));
    for (const [f, v] of Object.entries(files)) writeFileSync(join(d, f), v);
    return d;
  };

  it("reads the API server from KUBERNETES_SERVICE_HOST/_PORT and the service account's files", () => {
    const d = saDir({ token: "tok.en.value\n", "ca.crt": `${CA}\n`, namespace: "vault" });
    const k = readInCluster({
      KUBERNETES_SERVICE_HOST: "10.0.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      SEALKEEPER_SERVICEACCOUNT_DIR: d,
    });
    expect(k).toEqual({
      context: "in-cluster",
      server: "https://10.0.0.1:443",
      ca: CA,
      credentials: { token: "tok.en.value" },
      namespace: "vault",
    });
    const v6 = readInCluster({
      KUBERNETES_SERVICE_HOST: "fd00::1",
      KUBERNETES_SERVICE_PORT: "443",
      SEALKEEPER_SERVICEACCOUNT_DIR: d,
    });
    expect(v6.server).toBe("https://[fd00::1]:443");
  });

  it("names what is missing: the service env, the token, the CA", () => {
    expect(() => readInCluster({})).toThrow(/KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set/);
    const env = (d: string) => ({
      KUBERNETES_SERVICE_HOST: "10.0.0.1",
      KUBERNETES_SERVICE_PORT: "443",
      SEALKEEPER_SERVICEACCOUNT_DIR: d,
    });
    expect(() => readInCluster(env(saDir({ "ca.crt": CA })))).toThrow(
      /cannot read the pod's service account token .*\/token: ENOENT/,
    );
    expect(() => readInCluster(env(saDir({ token: "t" })))).toThrow(
      /cannot read the pod's service account ca.crt .*: ENOENT/,
    );
    expect(() => readInCluster(env(saDir({ token: "", "ca.crt": CA })))).toThrow(/token .* is empty/);
  });
});

describe("the CLI's cluster flags", () => {
  const specFile = join(dir, "cli.yaml");
  writeFileSync(specFile, SPEC());
  const kc = join(dir, "kubeconfig");
  writeFileSync(kc, "apiVersion: v1\nkind: Config\n");
  mkdirSync(join(dir, "empty-sa"), { recursive: true });
  const run = (args: string[], env: Record<string, string> = {}) =>
    runSealkeeper(["bootstrap", ...args], { env: { VAULT_ADDR: "http://127.0.0.1:1", VAULT_TOKEN: "t", ...env } });

  it("refuses --kubeconfig with --in-cluster, --create-reviewer without a cluster, reviewer flags without it", async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [
        ["plan", "-f", specFile, "--kubeconfig", kc, "--in-cluster"],
        {},
        "--kubeconfig and --in-cluster exclude each other",
      ],
      [["apply", "-f", specFile, "--create-reviewer"], {}, "--create-reviewer needs --kubeconfig or --in-cluster"],
      [["plan", "-f", specFile, "--in-cluster", "--reviewer-name", "x"], {}, "--reviewer-name needs --create-reviewer"],
      [["plan", "-f", specFile, "--context", "c"], {}, "--context needs --kubeconfig"],
      [["plan", "-f", specFile, "--in-cluster"], {}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"],
      [
        ["plan", "-f", specFile, "--in-cluster", "--create-reviewer"],
        {
          KUBERNETES_SERVICE_HOST: "127.0.0.1",
          KUBERNETES_SERVICE_PORT: "1",
          SEALKEEPER_SERVICEACCOUNT_DIR: join(dir, "empty-sa"),
        },
        "cannot read the pod's service account token",
      ],
      [
        ["plan", "-f", specFile, "--kubeconfig", kc, "--create-reviewer", "--reviewer-token-ttl", "soon"],
        {},
        '--reviewer-token-ttl: cannot parse "soon"',
      ],
    ];
    for (const [args, env, msg] of cases) {
      const r = await run(args, env);
      expect(r.code, args.join(" ")).toBe(1);
      expect(r.stderr).toContain(msg);
    }
  });
});

describe("writeReviewerApplied", () => {
  const capture = () => {
    let text = "";
    const io = {
      stderr: {
        write: (s: string) => {
          text += s;
          return true;
        },
      },
    } as unknown as CliIO;
    return { io, text: () => text };
  };

  it("names what was created and when the token expires, and warns when the API server shortened it", () => {
    const now = new Date("2026-12-03T13:00:00Z");
    const full = capture();
    writeReviewerApplied(
      full.io,
      { created: ["serviceaccount kube-system/r"], token: { value: "sec.ret.jwt", expiresAt: "2027-12-03T13:00:00Z" } },
      REVIEWER_DEFAULTS,
      now,
    );
    expect(full.text()).toBe(
      "created serviceaccount kube-system/r\nminted a token for serviceaccount kube-system/sealkeeper-token-reviewer (TokenRequest), expires 2027-12-03T13:00:00Z\n",
    );
    const capped = capture();
    writeReviewerApplied(
      capped.io,
      { created: [], token: { value: "sec.ret.jwt", expiresAt: "2026-12-04T13:00:00Z" } },
      REVIEWER_DEFAULTS,
      now,
    );
    expect(capped.text()).toContain("warning: the API server shortened the reviewer token's lifetime");
    expect(full.text() + capped.text()).not.toContain("sec.ret.jwt");
  });
});
