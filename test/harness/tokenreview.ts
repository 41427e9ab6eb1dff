/**
 * A Kubernetes TokenReview responder on loopback, standing in for the API server that Vault's kubernetes auth asks
 * "is this service-account JWT valid, and whose is it?". Honest by construction: it authenticates only the JWTs it
 * minted itself (exact string match), answers with the service account they were minted for, honours audiences, and
 * requires the reviewer's bearer token when one is configured. Anything else is `authenticated: false`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export interface MintOptions {
  namespace: string;
  serviceAccount: string;
  /** The JWT's aud claim (default ["vault"]). */
  audiences?: string[];
}

interface Minted {
  namespace: string;
  name: string;
  uid: string;
  audiences: string[];
}

export interface TokenReviewResponder {
  /** http://127.0.0.1:<port>: the kubernetes_host to configure. */
  url: string;
  /** The bearer token Vault must present (configure it as token_reviewer_jwt). */
  reviewerToken: string;
  /** Mints a projected-service-account-style JWT (signature bytes are random: Vault checks none without pem_keys). */
  mint(opts: MintOptions): string;
  /** A JWT with the same claims as a minted one would have, that the responder does NOT know (a forgery). */
  forge(opts: MintOptions): string;
  /** TokenReviews answered so far, and how many of them authenticated. */
  stats(): { reviews: number; authenticated: number; rejectedBearer: number };
  close(): Promise<void>;
}

const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

function makeJwt(m: Minted): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "RS256", kid: "sealkeeper-test" };
  const claims = {
    aud: m.audiences,
    exp: now + 3600,
    iat: now,
    nbf: now,
    iss: "https://kubernetes.default.svc.cluster.local",
    sub: `system:serviceaccount:${m.namespace}:${m.name}`,
    "kubernetes.io": { namespace: m.namespace, serviceaccount: { name: m.name, uid: m.uid } },
  };
  return `${b64url(header)}.${b64url(claims)}.${randomBytes(64).toString("base64url")}`;
}

/** Starts the responder on 127.0.0.1 with a free port. */
export async function startTokenReviewResponder(): Promise<TokenReviewResponder> {
  const known = new Map<string, Minted>();
  const reviewerToken = makeJwt({
    namespace: "vault",
    name: "vault-auth",
    uid: randomUUID(),
    audiences: ["https://kubernetes.default.svc.cluster.local"],
  });
  let reviews = 0;
  let authenticated = 0;
  let rejectedBearer = 0;

  const answer = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/apis/authentication.k8s.io/v1/tokenreviews") {
        answer(res, 404, { kind: "Status", status: "Failure", code: 404 });
        return;
      }
      if (req.headers.authorization !== `Bearer ${reviewerToken}`) {
        rejectedBearer++;
        answer(res, 401, { kind: "Status", status: "Failure", reason: "Unauthorized", code: 401 });
        return;
      }
      reviews++;
      let review: { spec?: { token?: string; audiences?: string[] } };
      try {
        review = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        answer(res, 400, { kind: "Status", status: "Failure", code: 400 });
        return;
      }
      const token = review.spec?.token ?? "";
      const wanted = review.spec?.audiences ?? [];
      const m = known.get(token);
      const base = { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: review.spec };
      if (!m) {
        answer(res, 201, { ...base, status: { authenticated: false, error: "token not recognised" } });
        return;
      }
      const audiences = wanted.length === 0 ? m.audiences : wanted.filter((a) => m.audiences.includes(a));
      if (wanted.length > 0 && audiences.length === 0) {
        answer(res, 201, { ...base, status: { authenticated: false, error: "token audiences are invalid" } });
        return;
      }
      authenticated++;
      answer(res, 201, {
        ...base,
        status: {
          authenticated: true,
          user: {
            username: `system:serviceaccount:${m.namespace}:${m.name}`,
            uid: m.uid,
            groups: ["system:serviceaccounts", `system:serviceaccounts:${m.namespace}`, "system:authenticated"],
          },
          audiences,
        },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;

  const mk = (o: MintOptions): Minted => ({
    namespace: o.namespace,
    name: o.serviceAccount,
    uid: randomUUID(),
    audiences: o.audiences ?? ["vault"],
  });
  return {
    url: `http://127.0.0.1:${port}`,
    reviewerToken,
    mint(o) {
      const m = mk(o);
      const jwt = makeJwt(m);
      known.set(jwt, m);
      return jwt;
    },
    forge(o) {
      return makeJwt(mk(o));
    },
    stats: () => ({ reviews, authenticated, rejectedBearer }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
