/**
 * Secret scanning for tests: which secrets exist (learned from the wire by a recording proxy in front of a node, or
 * given by the test), every form they may take (a share as hex, HEX, base64, base64url), and where they appear in
 * what the tool wrote (stdout, stderr, files under a directory, recursively). A test then asserts the findings are
 * exactly the ones it asked for (e.g. --print-root-token's line) and nothing else.
 */
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative } from "node:path";

export type SecretKind = "share" | "root-token" | "otp" | "token";

export interface KnownSecret {
  kind: SecretKind;
  /** Where it came from, for messages: "init keys[2]", "root generate otp". Never the value. */
  label: string;
  /** The canonical value: a share in lower-case hex; a token or OTP as the server wrote it. */
  value: string;
}

export interface ScanTarget {
  /** "stdout of init", "file ceremony/alice.asc". */
  name: string;
  text: string;
}

export interface Finding {
  target: string;
  kind: SecretKind;
  label: string;
  /** Which form matched: hex, HEX, base64, base64url, verbatim. */
  form: string;
  /** Offset of the first match in the target. */
  offset: number;
}

/** Every written form of a secret worth looking for (needles shorter than 16 characters are never used). */
export function secretForms(s: KnownSecret): { form: string; needle: string }[] {
  if (s.kind !== "share") return [{ form: "verbatim", needle: s.value }];
  const bytes = Buffer.from(s.value, "hex");
  const forms = [
    { form: "hex", needle: bytes.toString("hex") },
    { form: "HEX", needle: bytes.toString("hex").toUpperCase() },
    { form: "base64", needle: bytes.toString("base64") },
    // unpadded and url-safe: a 33-byte share has no padding anyway; for the 32-byte key, drop the "="
    { form: "base64url", needle: bytes.toString("base64url") },
  ];
  const seen = new Set<string>();
  return forms.filter((f) => f.needle.length >= 16 && !seen.has(f.needle) && seen.add(f.needle));
}

/** Finds every (target, secret) pair where some form of the secret occurs in the target. */
export function scanForSecrets(targets: ScanTarget[], secrets: KnownSecret[]): Finding[] {
  const findings: Finding[] = [];
  const needles = secrets.flatMap((s) => secretForms(s).map((f) => ({ ...f, secret: s })));
  for (const t of targets) {
    for (const n of needles) {
      const offset = t.text.indexOf(n.needle);
      if (offset >= 0) {
        findings.push({ target: t.name, kind: n.secret.kind, label: n.secret.label, form: n.form, offset });
      }
    }
  }
  return findings;
}

/** Every regular file under `dir` (recursively, symlinks not followed), read byte for byte (latin1: ASCII intact). */
export function collectFiles(dir: string): { targets: ScanTarget[]; files: number; bytes: number } {
  const targets: ScanTarget[] = [];
  let bytes = 0;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      const st = lstatSync(path);
      if (st.isDirectory()) walk(path);
      else if (st.isFile()) {
        const content = readFileSync(path);
        bytes += content.length;
        targets.push({ name: `file ${relative(dir, path)}`, text: content.toString("latin1") });
      }
    }
  };
  walk(dir);
  return { targets, files: targets.length, bytes };
}

const SHARE_FIELDS = new Set(["keys", "keys_base64", "recovery_keys", "recovery_keys_base64", "key"]);
const TOKEN_FIELDS: Record<string, SecretKind> = { root_token: "root-token", otp: "otp", client_token: "token" };

/** A share-shaped string (hex or base64 of 32 or 33 bytes) in canonical hex, or null. */
function asShareHex(v: string): string | null {
  if (/^[0-9a-fA-F]{64}$|^[0-9a-fA-F]{66}$/.test(v)) return v.toLowerCase();
  if (/^[A-Za-z0-9+/]{43}=$|^[A-Za-z0-9+/]{44}$/.test(v)) {
    const b = Buffer.from(v, "base64");
    if (b.length === 32 || b.length === 33) return b.toString("hex");
  }
  return null;
}

/** Pulls the secret fields out of a JSON body (request or response), wherever they are nested. */
export function secretsInJson(body: unknown, where: string): KnownSecret[] {
  const out: KnownSecret[] = [];
  const visit = (v: unknown, field: string, path: string) => {
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) visit(x, field, `${path}[${i}]`);
    } else if (v !== null && typeof v === "object") {
      for (const [k, x] of Object.entries(v)) visit(x, k, path ? `${path}.${k}` : k);
    } else if (typeof v === "string") {
      if (SHARE_FIELDS.has(field)) {
        const hex = asShareHex(v);
        if (hex) out.push({ kind: "share", label: `${where} ${path}`, value: hex });
      } else if (TOKEN_FIELDS[field] && v.length >= 16) {
        out.push({ kind: TOKEN_FIELDS[field]!, label: `${where} ${path}`, value: v });
      }
    }
  };
  visit(body, "", "");
  return out;
}

export interface RecordingProxy {
  /** http://127.0.0.1:PORT, to give the tool instead of the node's address. */
  address: string;
  /** Every secret seen so far in request and response bodies, de-duplicated by value. */
  secrets(): KnownSecret[];
  /** Requests forwarded. */
  requests(): number;
  close(): Promise<void>;
}

/**
 * A plain-HTTP proxy on loopback in front of one node (plain HTTP too): forwards every request as is and records the
 * secrets in the bodies (shares of init and rekey, root tokens, OTPs, unseal keys sent). The tool under test never
 * knows it is there; the test learns every secret that existed on the wire.
 */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const upstream = new URL(target);
  const found = new Map<string, KnownSecret>();
  let count = 0;
  const record = (raw: Buffer, where: string) => {
    if (raw.length === 0) return;
    try {
      for (const s of secretsInJson(JSON.parse(raw.toString("utf8")), where)) {
        if (!found.has(s.value)) found.set(s.value, s);
      }
    } catch {
      // not JSON: nothing to learn
    }
  };
  const readBody = (m: IncomingMessage) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      m.on("data", (c: Buffer) => chunks.push(c));
      m.on("end", () => resolve(Buffer.concat(chunks)));
      m.on("error", reject);
    });
  const server: Server = createServer(async (req, res) => {
    count++;
    const body = await readBody(req);
    const where = `${req.method} ${req.url?.split("?")[0]}`;
    record(body, `${where} request`);
    const up = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
      },
      async (r) => {
        const answer = await readBody(r);
        record(answer, `${where} response`);
        res.writeHead(r.statusCode ?? 502, r.headers);
        res.end(answer);
      },
    );
    up.on("error", () => {
      res.destroy();
    });
    up.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `http://127.0.0.1:${port}`,
    secrets: () => [...found.values()],
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
