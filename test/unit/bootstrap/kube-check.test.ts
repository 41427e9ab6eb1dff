/**
 * kube-check's verdicts for each answer an API server can give (the real answers are proven against a real
 * kube-apiserver in test/integration/kube-auth.test.ts; here, the mapping and the network-error cases).
 */
import { describe, expect, it } from "vitest";
import { checkKubernetesAuth } from "../../../src/bootstrap/kube-check.js";
import type { AuthSpec } from "../../../src/bootstrap/spec.js";

const auth = (config: Partial<NonNullable<AuthSpec["config"]>>): AuthSpec[] => [
  {
    path: "kubernetes",
    type: "kubernetes",
    source: { file: "spec.yaml", line: 3 },
    config: { kubernetes_host: "https://10.1.2.3:6443", token_reviewer_jwt: "rev.jwt.x", ...config },
  },
];
const answer = (status: number, body: unknown) => async () => ({ status, body: JSON.stringify(body) });

describe("checkKubernetesAuth", () => {
  it("names the missing system:auth-delegator binding on 403, with the user from the Status", async () => {
    const [c] = await checkKubernetesAuth(auth({}), {
      call: answer(403, {
        message: 'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:vault:x" cannot create',
      }),
    });
    expect(c).toMatchObject({ status: "fail", check: "reviewer" });
    expect(c?.message).toBe(
      "system:serviceaccount:vault:x may not create tokenreviews (403): bind its service account to the ClusterRole system:auth-delegator",
    );
  });

  it("a refused reviewer token (401) and an unauthenticated review fail; an authenticated one passes", async () => {
    expect((await checkKubernetesAuth(auth({}), { call: answer(401, {}) }))[0]?.message).toMatch(
      /does not accept the reviewer token/,
    );
    const unauth = await checkKubernetesAuth(auth({}), {
      call: answer(201, { status: { authenticated: false, error: "bad" } }),
    });
    expect(unauth[0]).toMatchObject({
      status: "fail",
      message: "the API server does not authenticate the reviewer token (bad)",
    });
    const ok = await checkKubernetesAuth(auth({}), {
      call: answer(201, { status: { authenticated: true, user: { username: "system:serviceaccount:vault:r" } } }),
    });
    expect(ok).toEqual([
      {
        auth: "kubernetes/",
        check: "reviewer",
        status: "ok",
        message: "system:serviceaccount:vault:r may review tokens (TokenReview answered)",
      },
    ]);
  });

  it("an unreachable API server is a note, a certificate error a failure naming the CA", async () => {
    const refused = await checkKubernetesAuth(auth({}), {
      call: async () => {
        throw Object.assign(new Error("x"), { code: "ENOTFOUND" });
      },
    });
    expect(refused[0]?.status).toBe("unreachable");
    const tls = await checkKubernetesAuth(auth({}), {
      call: async () => {
        throw Object.assign(new Error("x"), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
      },
    });
    expect(tls[0]).toMatchObject({ status: "fail", message: expect.stringMatching(/CA is not this cluster's/) });
  });

  it("never sends the reviewer token over plain HTTP to a host that is not loopback", async () => {
    let called = false;
    const r = await checkKubernetesAuth(auth({ kubernetes_host: "http://k8s.example:8080" }), {
      call: async () => {
        called = true;
        return { status: 201, body: "{}" };
      },
    });
    expect(called).toBe(false);
    expect(r[0]?.status).toBe("skipped");
  });

  it("compares a configured issuer with the discovery document's only when issuer validation is on", async () => {
    const calls: string[] = [];
    const call = async (url: string) => {
      calls.push(url);
      return url.endsWith("openid-configuration")
        ? { status: 200, body: JSON.stringify({ issuer: "https://kubernetes.default.svc.cluster.local" }) }
        : { status: 201, body: JSON.stringify({ status: { authenticated: true } }) };
    };
    const bad = await checkKubernetesAuth(auth({ disable_iss_validation: false, issuer: "https://other" }), { call });
    expect(bad[1]).toMatchObject({ check: "issuer", status: "fail" });
    expect(bad[1]?.message).toContain(
      'expects "https://other", but the cluster issues its tokens as "https://kubernetes.default.svc.cluster.local"',
    );
    calls.length = 0;
    expect(await checkKubernetesAuth(auth({ issuer: "https://other" }), { call })).toHaveLength(1);
    expect(calls.some((u) => u.endsWith("openid-configuration"))).toBe(false);
  });
});
