import { readFileSync } from "node:fs";
import type * as Tls from "node:tls";
import { lazyBuiltin } from "./lazy-builtin.js";

/**
 * NODE_EXTRA_CA_CERTS, honoured without its start-up cost.
 *
 * Node 20 reads and parses NODE_EXTRA_CA_CERTS in full before it runs a line of JavaScript (node.cc
 * InitializeOncePerProcess -> crypto::UseExtraCaCerts, which also builds the whole bundled root store): with Debian's
 * ca-certificates bundle (about 140 certificates, a common value on CI machines and behind TLS-inspecting proxies)
 * that is about 110 ms of every start here, more than the rest of a `status`. So the npm CLI's launcher (bin/sealkeeper,
 * a sh/JavaScript polyglot) moves the variable aside before Node starts, and this module adds the file's certificates
 * to the default trust when, and only if, a TLS connection is made with the default trust. The semantics stay
 * Node's: the extra certificates extend the bundled roots, and an explicit CA (VAULT_CACERT, a kubeconfig's CA)
 * replaces both. The executable (a Node SEA, no launcher) and the library keep Node's own handling.
 *
 * The launcher hands the path to bin/sealkeeper's JavaScript, which puts NODE_EXTRA_CA_CERTS back into process.env
 * (child processes see the environment the user set) and the path under this symbol.
 */
export const DEFERRED_EXTRA_CA_CERTS = Symbol.for("sealkeeper.deferredExtraCaCerts");

const tls = lazyBuiltin<typeof Tls>("node:tls");

let shared: Tls.SecureContext | null | undefined;
let warned = false;

/** The deferred file's path, when the launcher deferred one (else Node's own root store already holds it). */
function deferredExtraCaFile(): string | undefined {
  const file = (globalThis as Record<symbol, unknown>)[DEFERRED_EXTRA_CA_CERTS];
  return typeof file === "string" && file !== "" ? file : undefined;
}

/**
 * A secure context for a TLS connection that would use the default trust: the bundled roots plus the deferred
 * NODE_EXTRA_CA_CERTS (and the client certificate, when one is given). `undefined` when nothing was deferred (Node's
 * default is right) or the file cannot be used (a warning as Node's, then the default trust, as Node does). Parsing
 * the roots costs about as much as Node's start-up load would have, so the context without a client certificate is
 * built once per process and shared.
 */
export function defaultTrustContext(client?: { cert: string; key: string }): Tls.SecureContext | undefined {
  const file = deferredExtraCaFile();
  if (file === undefined) return undefined;
  if (client === undefined && shared !== undefined) return shared ?? undefined;
  let context: Tls.SecureContext | undefined;
  try {
    const extra = readFileSync(file, "utf8");
    if (!extra.includes("-----BEGIN")) throw new Error("no PEM certificate in the file");
    context = tls().createSecureContext({ ca: [...tls().rootCertificates, extra], ...client });
  } catch (e) {
    if (!warned) {
      warned = true;
      const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      process.stderr.write(
        `Warning: Ignoring extra certs from \`${file}\` (NODE_EXTRA_CA_CERTS), load failed: ${reason}\n`,
      );
    }
    if (client !== undefined) return undefined;
  }
  if (client === undefined) shared = context ?? null;
  return context;
}

/**
 * The trust options of one TLS caller: an explicit CA replaces the default trust (Node's semantics), so it is passed
 * as given, with the client certificate; without one, the default trust with a deferred NODE_EXTRA_CA_CERTS as one
 * secure context (the client certificate inside it), or nothing to add when nothing was deferred.
 */
export function trustOptions(o: { ca?: string | string[]; cert?: string; key?: string }): {
  ca?: string | string[];
  cert?: string;
  key?: string;
  secureContext?: Tls.SecureContext;
} {
  const client = o.cert !== undefined && o.key !== undefined ? { cert: o.cert, key: o.key } : undefined;
  const secureContext = o.ca === undefined ? defaultTrustContext(client) : undefined;
  if (secureContext) return { secureContext };
  return { ...(o.ca !== undefined ? { ca: o.ca } : {}), ...client };
}

/** For tests: forget the shared context. */
export function resetTrustContextForTests(): void {
  shared = undefined;
  warned = false;
}
