/**
 * A CI token issuer on loopback, standing in for GitHub Actions' OIDC provider: an RSA key made here (node:crypto),
 * its JWKS served over HTTP on 127.0.0.1, and RS256 JWTs signed with it. A second key, never published, signs
 * forgeries.
 */
import { generateKeyPairSync, type KeyObject, randomUUID, sign } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface JwtIssuer {
  /** The `iss` every token carries (what bound_issuer must be). */
  issuer: string;
  /** http://127.0.0.1:<port>/.well-known/jwks */
  jwksUrl: string;
  /** The published public key as PEM (for jwt_validation_pubkeys). */
  publicKeyPem: string;
  /** An RS256 JWT with iss, iat, nbf, exp (10 min) and jti, plus `claims` (which may override iss). */
  sign(claims: Record<string, unknown>, opts?: { forged?: boolean }): string;
  /** JWKS requests served so far. */
  jwksFetches(): number;
  close(): Promise<void>;
}

export async function startJwtIssuer(issuer = "https://token.actions.example"): Promise<JwtIssuer> {
  const key = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const forger = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomUUID();
  const jwk = { ...key.publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" };
  let fetches = 0;
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/.well-known/jwks") {
      fetches++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const signWith = (k: KeyObject, claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64({ alg: "RS256", typ: "JWT", kid });
    const body = b64({ iss: issuer, iat: now, nbf: now - 5, exp: now + 600, jti: randomUUID(), ...claims });
    const sig = sign("sha256", Buffer.from(`${head}.${body}`), k).toString("base64url");
    return `${head}.${body}.${sig}`;
  };
  return {
    issuer,
    jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks`,
    publicKeyPem: key.publicKey.export({ format: "pem", type: "spki" }).toString(),
    sign: (claims, opts = {}) => signWith(opts.forged ? forger.privateKey : key.privateKey, claims),
    jwksFetches: () => fetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
