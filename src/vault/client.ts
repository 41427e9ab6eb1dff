import { readdirSync, readFileSync } from "node:fs";
import * as http from "node:http";
import type * as Https from "node:https";
import type { LookupFunction } from "node:net";
import { join } from "node:path";
import { UsageError, VaultConnectionError, VaultHttpError } from "../errors.js";
import { BodyTooLargeError, formatBytes, MiB, readBoundedBody } from "../util/bounded-body.js";
import { lazyBuiltin } from "../util/lazy-builtin.js";
import { trustOptions } from "../util/tls-trust.js";
import { type ConnectionSettings, isLoopbackAddress } from "./env.js";
import type {
  HealthStatus,
  InitRequest,
  InitResponse,
  LeaderStatus,
  RaftServer,
  SealStatus,
  UnsealRequest,
} from "./types.js";

export type HttpMethod = "GET" | "PUT" | "POST" | "DELETE" | "LIST" | "HEAD";

export interface RequestOptions {
  body?: unknown;
  /** Send the token (default true when one is set). */
  auth?: boolean;
  /** Statuses that are answers, not errors (e.g. 429/503 for health). 2xx always are. */
  accept?: number[];
  /** Retry on connection failures before any response. Only for requests that are safe to repeat. */
  idempotent?: boolean;
  query?: Record<string, string>;
  /**
   * The request cannot be undone and its answer may be the only copy of something (init's shares, a rekey's new
   * shares, a generated root token): the timeout bounds connecting and sending it, never the wait for the answer,
   * which no client-side deadline may abandon while the server is still producing it. `onWaiting` is called every
   * `waitingIntervalMs` (default 5 s) while the answer is awaited, with the time waited so far.
   */
  irreversible?: {
    onWaiting?: (waitedMs: number) => void;
    waitingIntervalMs?: number;
    /** Called when the answer's headers arrive (its body may still be streaming). */
    onAnswer?: () => void;
  };
  /** The most bytes of answer read (default BODY_LIMIT, LIST_BODY_LIMIT for LIST); past it the request fails. */
  maxBodyBytes?: number;
}

/** A Vault answer is a few KiB; 4 MiB is far beyond any (policies and configurations included). */
export const BODY_LIMIT = 4 * MiB;
/** A LIST of many keys (policies, roles, secrets of a big mount) may be large. */
export const LIST_BODY_LIMIT = 64 * MiB;

export interface RawResponse<T> {
  status: number;
  body: T;
}

/**
 * One Vault/OpenBao node. HA work is a list of these: progress of unseal and similar ceremonies is per node.
 *
 * Contract: throws VaultHttpError when the server answers with an unexpected status (carrying the status and the
 * server's errors[]), VaultConnectionError when the node cannot be reached or does not speak the Vault API.
 * Never logs; messages never contain request or response bodies.
 */
export interface VaultClientOptions {
  /** Name resolution for the node's host (default: the system's, dns.lookup). Tests map a name to loopback. */
  lookup?: LookupFunction;
}

export class VaultClient {
  readonly address: string;
  readonly settings: ConnectionSettings;
  private readonly agent: http.Agent;
  private token: string | undefined;
  private readonly lookup: LookupFunction | undefined;

  constructor(settings: ConnectionSettings, opts: VaultClientOptions = {}) {
    this.settings = settings;
    this.address = settings.address;
    this.token = settings.token;
    this.lookup = opts.lookup;
    this.agent = createAgent(settings);
  }

  /** A client for another node with the same TLS, token, timeout and opt-in settings. */
  withAddress(address: string): VaultClient {
    return new VaultClient({ ...this.settings, address, token: this.token }, { lookup: this.lookup });
  }

  /** Replace the token used by later requests (e.g. after init or login). */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  hasToken(): boolean {
    return this.token !== undefined && this.token !== "";
  }

  /** Where the settings' token came from (ConnectionSettings.tokenSource); "set later" once setToken replaced it. */
  get tokenSource(): string | undefined {
    return this.token === this.settings.token ? this.settings.tokenSource : "set later";
  }

  /** True when the node is reached over plain HTTP on a host that is not loopback: secrets would cross a network. */
  isPlainHttpRemote(): boolean {
    return this.address.startsWith("http://") && !isLoopbackAddress(this.address);
  }

  /**
   * For the ceremonies that carry key material (shares, root tokens, the init answer), before their first request:
   * refuses plain HTTP to a host that is not loopback unless allowed (`--allow-insecure-http`, also taken from the
   * settings), and TLS without verification (`--tls-skip-verify`, VAULT_SKIP_VERIFY) to such a host unless
   * `--allow-unverified-tls` was given. (Every request with a token or a body is checked again in `request`.)
   */
  assertSafeForSecrets(allowInsecureHttp = false): void {
    if (this.isPlainHttpRemote() && !allowInsecureHttp && !this.settings.allowInsecureHttp) {
      throw new UsageError(
        `refusing to send key material over plain HTTP to ${this.address}; use https, or pass --allow-insecure-http`,
      );
    }
    if (
      this.address.startsWith("https:") &&
      this.settings.tls.skipVerify &&
      !isLoopbackAddress(this.address) &&
      !this.settings.allowUnverifiedTls
    ) {
      throw new UsageError(
        `refusing to send key material to ${this.address} without verifying its TLS certificate ` +
          "(--tls-skip-verify or VAULT_SKIP_VERIFY): anyone on the path could read it",
        { hint: "give the CA with --ca-cert (VAULT_CACERT), or pass --allow-unverified-tls" },
      );
    }
  }

  /**
   * Every request that carries a token, a body or an irreversible answer is refused over plain HTTP to a host that
   * is not loopback, unless the settings allow it: whichever command sends it (root revoke, bootstrap, export...).
   */
  private assertSafeRequest(method: string, displayPath: string, hasToken: boolean, opts: RequestOptions): void {
    if (!this.isPlainHttpRemote() || this.settings.allowInsecureHttp) return;
    if (!hasToken && opts.body === undefined && opts.irreversible === undefined) return;
    const what = hasToken ? "a token" : "key material";
    throw new UsageError(
      `refusing to send ${what} over plain HTTP to ${this.address} (${method} ${displayPath}): anyone on the path could read it`,
      { hint: "use https, or pass --allow-insecure-http" },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
  }

  /** Set by close(): a request still in flight then is not retried (it would outlive its command). */
  private closed = false;

  // ---- system operations -------------------------------------------------------------------------------------

  /** GET /v1/sys/seal-status (no token). */
  async sealStatus(): Promise<SealStatus> {
    return (await this.request<SealStatus>("GET", "sys/seal-status", { auth: false, idempotent: true })).body;
  }

  /**
   * GET /v1/sys/health, returning the status as well: 200 active, 429 unsealed standby, 472/473 DR/perf standby,
   * 501 not initialised, 503 sealed.
   */
  async health(): Promise<RawResponse<HealthStatus>> {
    return this.request<HealthStatus>("GET", "sys/health", {
      auth: false,
      idempotent: true,
      accept: [429, 472, 473, 474, 501, 503, 530],
    });
  }

  /** GET /v1/sys/init -> initialized. */
  async initStatus(): Promise<boolean> {
    const res = await this.request<{ initialized: boolean }>("GET", "sys/init", { auth: false, idempotent: true });
    return res.body.initialized;
  }

  /**
   * PUT /v1/sys/init. Not retried, and without a deadline once sent: the response is the only copy of the keys
   * (see RequestOptions.irreversible).
   */
  async init(req: InitRequest, irreversible: RequestOptions["irreversible"] = {}): Promise<InitResponse> {
    return (await this.request<InitResponse>("PUT", "sys/init", { auth: false, body: req, irreversible })).body;
  }

  /** PUT /v1/sys/unseal. Returns the seal status after the call. */
  async unseal(req: UnsealRequest, irreversible?: RequestOptions["irreversible"]): Promise<SealStatus> {
    return (await this.request<SealStatus>("PUT", "sys/unseal", { auth: false, body: req, irreversible })).body;
  }

  /** PUT /v1/sys/seal (sudo token; active node only). */
  async seal(): Promise<void> {
    await this.request("PUT", "sys/seal");
  }

  /** GET /v1/sys/leader -> the active node's API address ("" when unknown). */
  async leaderAddress(): Promise<string> {
    return (await this.leader()).leaderAddress;
  }

  /**
   * GET /v1/sys/leader (unauthenticated): whether HA is on, whether this node is the active one, and the active
   * node's API address ("" when unknown). A node without HA storage answers ha_enabled false.
   */
  async leader(): Promise<LeaderStatus> {
    const body = await this.read<{ ha_enabled?: boolean; is_self?: boolean; leader_address?: string }>("sys/leader");
    return {
      haEnabled: body?.ha_enabled === true,
      isSelf: body?.is_self === true,
      leaderAddress: body?.leader_address ?? "",
    };
  }

  /** GET /v1/sys/storage/raft/configuration (token); undefined when the path is absent (not raft). */
  async raftConfiguration(): Promise<RaftServer[] | undefined> {
    const conf = await this.read<{ data?: { config?: { servers?: RaftServer[] } } }>("sys/storage/raft/configuration");
    return conf === undefined ? undefined : (conf.data?.config?.servers ?? []);
  }

  /** POST /v1/auth/token/revoke-self: revokes the token this client holds. */
  async revokeSelf(): Promise<void> {
    await this.request("POST", "auth/token/revoke-self");
  }

  // ---- generic ---------------------------------------------------------------------------------------------------

  /** GET /v1/<path>; returns undefined on 404. */
  async read<T = Record<string, unknown>>(path: string): Promise<T | undefined> {
    const res = await this.request<T>("GET", path, { accept: [404], idempotent: true });
    return res.status === 404 ? undefined : res.body;
  }

  /** POST /v1/<path> with a JSON body. */
  async write<T = unknown>(path: string, body: unknown): Promise<T> {
    return (await this.request<T>("POST", path, { body })).body;
  }

  /** DELETE /v1/<path>. */
  async delete(path: string): Promise<void> {
    await this.request("DELETE", path);
  }

  /** LIST /v1/<path>; returns [] on 404 (Vault's answer for an empty list). */
  async list(path: string): Promise<string[]> {
    const res = await this.request<{ data?: { keys?: string[] } }>("LIST", path, { accept: [404], idempotent: true });
    return res.status === 404 ? [] : (res.body?.data?.keys ?? []);
  }

  /** Sends one request to /v1/<path>. See the class contract for errors. */
  async request<T = unknown>(method: HttpMethod, path: string, opts: RequestOptions = {}): Promise<RawResponse<T>> {
    const url = new URL(`${this.address}/v1/${path.replace(/^\/+/, "")}`);
    for (const [k, v] of Object.entries(opts.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = {};
    if (opts.auth !== false && this.token) headers["x-vault-token"] = this.token;
    if (this.settings.namespace) headers["x-vault-namespace"] = this.settings.namespace;
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const attempts = opts.idempotent ? 3 : 1;
    const displayPath = `/v1/${path.replace(/^\/+/, "")}`;
    this.assertSafeRequest(method, displayPath, headers["x-vault-token"] !== undefined, opts);
    // the timeout bounds the request, retries included: `status --timeout 3s` ends within 3 s (issue 25)
    const started = Date.now();
    const left = () => this.settings.timeoutMs - (Date.now() - started);

    for (let attempt = 1; ; attempt++) {
      let status: number;
      let text: string;
      let location: string | undefined;
      try {
        ({ status, text, location } = await send(
          url,
          method,
          headers,
          body,
          this.agent,
          attempt === 1 ? this.settings.timeoutMs : Math.max(1, left()),
          opts.irreversible,
          this.lookup,
          opts.maxBodyBytes ?? (method === "LIST" ? LIST_BODY_LIMIT : BODY_LIMIT),
        ));
      } catch (err) {
        const converted = toConnectionError(this.address, err, this.settings.timeoutMs);
        converted.requestSent = (err as { requestSent?: boolean })?.requestSent === true;
        const pause = 100 * 2 ** (attempt - 1);
        if (
          attempt < attempts &&
          !this.closed &&
          left() > pause &&
          (converted.reason === "reset" || converted.reason === "refused")
        ) {
          await sleep(pause);
          continue;
        }
        throw converted;
      }
      if (status >= 300 && status < 400 && !(opts.accept ?? []).includes(status)) {
        // a standby redirecting to the active node (request forwarding off, or the active node unknown to it): the
        // request was not processed here, and is not followed (it may carry a share)
        throw new VaultConnectionError(
          this.address,
          "redirect",
          `${this.address} answered ${status} to ${method} ${displayPath}, redirecting to ${location ?? "no address"}: it did not process the request (a standby sends it to the active node)`,
        );
      }
      return this.interpret<T>(method, displayPath, status, text, opts.accept ?? []);
    }
  }

  private interpret<T>(method: string, path: string, status: number, text: string, accept: number[]): RawResponse<T> {
    let parsed: unknown;
    if (text.trim() !== "") {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new VaultConnectionError(
          this.address,
          "protocol",
          `${this.address} did not answer as a Vault server (HTTP ${status} to ${method} ${path}, body is not JSON)`,
          { hint: "check the address: is it the API port of a Vault or OpenBao node?" },
        );
      }
    }
    if ((status >= 200 && status < 300) || accept.includes(status)) {
      return { status, body: parsed as T };
    }
    const errors =
      parsed && typeof parsed === "object" && Array.isArray((parsed as { errors?: unknown }).errors)
        ? (parsed as { errors: unknown[] }).errors.map(String)
        : [];
    if (parsed === undefined || (errors.length === 0 && typeof parsed !== "object")) {
      throw new VaultConnectionError(
        this.address,
        "protocol",
        `${this.address} did not answer as a Vault server (HTTP ${status} to ${method} ${path})`,
      );
    }
    throw new VaultHttpError(this.address, method, path, status, errors);
  }
}

/**
 * node:https (and with it node:tls, about 7 ms of start-up here) is loaded on the first https:// address only: a
 * `status` of a loopback http:// node does not pay for it (docs/benchmarks.md, start-up).
 */
const https = lazyBuiltin<typeof Https>("node:https");

/**
 * The HTTP layer is Node's own http/https (no dependency): it loads in a few milliseconds, where undici took
 * 120-200 ms here, which alone broke the start-up goal of `status` (docs/benchmarks.md). One keep-alive agent per node.
 */
function createAgent(s: ConnectionSettings): http.Agent {
  // TLS files are read (and a bad one refused) even for an http:// address: a wrong setting should not go unnoticed
  const ca = loadCaBundle(s.tls.caCert, s.tls.caPath);
  const cert = s.tls.clientCert ? readSetting(s.tls.clientCert, "client certificate") : undefined;
  const key = s.tls.clientKey ? readSetting(s.tls.clientKey, "client key") : undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new UsageError("a client certificate needs its key, and a key its certificate (set both)");
  }
  if (!s.address.startsWith("https:")) return new http.Agent({ keepAlive: true, keepAliveMsecs: 4_000 });
  return new (https().Agent)({
    keepAlive: true,
    keepAliveMsecs: 4_000,
    // an explicit CA, else the default trust with a NODE_EXTRA_CA_CERTS the launcher deferred (src/util/tls-trust.ts)
    ...(s.tls.skipVerify ? { ca, cert, key } : trustOptions({ ca, cert, key })),
    rejectUnauthorized: !s.tls.skipVerify,
    // Node checks the certificate against servername when it is set (the VAULT_TLS_SERVER_NAME semantics)
    ...(s.tls.serverName ? { servername: s.tls.serverName } : {}),
  });
}

/**
 * One request; resolves with the status and the whole body as text, rejects with the socket's error. The timeout
 * covers the whole exchange, or with `irreversible` only until the request is connected and sent (then the answer is
 * awaited for as long as it takes, with `onWaiting` ticks).
 */
function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  agent: http.Agent,
  timeoutMs: number,
  irreversible: RequestOptions["irreversible"],
  lookup: LookupFunction | undefined,
  maxBodyBytes: number,
): Promise<{ status: number; text: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const transport = url.protocol === "https:" ? https() : http;
    const abort = new AbortController();
    const deadline = setTimeout(
      () => abort.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
      timeoutMs,
    );
    let ticker: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(deadline);
      if (ticker) clearInterval(ticker);
    };
    const req = transport.request(
      url,
      {
        method,
        agent,
        headers: body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) },
        signal: abort.signal,
        ...(lookup ? { lookup } : {}),
      },
      (res) => {
        irreversible?.onAnswer?.();
        readBoundedBody(res, maxBodyBytes).then(
          (bytes) => {
            done();
            resolve({ status: res.statusCode ?? 0, text: bytes.toString("utf8"), location: res.headers.location });
          },
          (err: Error) => {
            done();
            if (err instanceof BodyTooLargeError) req.destroy();
            reject(markSent(err, true));
          },
        );
      },
    );
    // whether the request was all handed to a connected socket: a failure before that never reached the server
    let handedOver = false;
    let onSocket = false;
    req.on("socket", (socket) => {
      const ready = () => {
        onSocket = true;
      };
      if (!socket.connecting && !(socket as { pending?: boolean }).pending) ready();
      else socket.once(url.protocol === "https:" ? "secureConnect" : "connect", ready);
    });
    req.on("finish", () => {
      handedOver = true;
    });
    req.on("error", (err) => {
      done();
      reject(markSent(err, onSocket && handedOver));
    });
    if (irreversible) {
      // the deadline ends once the request is on a connected socket and fully handed to it
      let connected = false;
      let sent = false;
      const lift = () => {
        if (!connected || !sent) return;
        clearTimeout(deadline);
        const started = Date.now();
        const every = irreversible.waitingIntervalMs ?? 5_000;
        if (irreversible.onWaiting) {
          ticker = setInterval(() => irreversible.onWaiting?.(Date.now() - started), every);
        }
      };
      req.on("socket", (socket) => {
        const ready = () => {
          connected = true;
          lift();
        };
        if (!socket.connecting && !(socket as { pending?: boolean }).pending) ready();
        else socket.once(url.protocol === "https:" ? "secureConnect" : "connect", ready);
      });
      req.on("finish", () => {
        sent = true;
        lift();
      });
    }
    req.end(body);
  });
}

/** Tags a transport error with whether the request had reached the server (see VaultConnectionError.requestSent). */
function markSent(err: unknown, sent: boolean): unknown {
  if (err && typeof err === "object") {
    try {
      Object.assign(err, { requestSent: sent });
    } catch {
      // a frozen error: "not known to be sent"
    }
  }
  return err;
}

function readSetting(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
      cause: err,
    });
  }
}

/** CA file and/or every .pem/.crt file of a CA directory, or undefined for the system roots. */
function loadCaBundle(caCert: string | undefined, caPath: string | undefined): string[] | undefined {
  const pems: string[] = [];
  if (caCert) pems.push(readSetting(caCert, "CA certificate"));
  if (caPath) {
    let names: string[];
    try {
      names = readdirSync(caPath);
    } catch (err) {
      throw new UsageError(`cannot read CA directory ${caPath}`, { cause: err });
    }
    for (const name of names.sort()) {
      if (/\.(pem|crt)$/i.test(name)) pems.push(readSetting(join(caPath, name), "CA certificate"));
    }
    if (pems.length === 0) throw new UsageError(`CA directory ${caPath} holds no .pem or .crt file`);
  }
  return pems.length > 0 ? pems : undefined;
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
  "ERR_SSL_WRONG_VERSION_NUMBER",
  "EPROTO",
]);

/** Maps whatever the socket or TLS layer threw to one clear, secret-free line. */
export function toConnectionError(address: string, err: unknown, timeoutMs: number): VaultConnectionError {
  const e = findCode(err);
  const code = e?.code ?? "";
  const name = (err as Error)?.name ?? "";
  if (name === "TimeoutError" || name === "AbortError" || (code.startsWith("UND_ERR_") && code.includes("TIMEOUT"))) {
    return new VaultConnectionError(address, "timeout", `${address} did not answer within ${timeoutMs / 1000}s`, {
      cause: err,
      hint: "the node may be down or overloaded; raise --timeout (VAULT_CLIENT_TIMEOUT) if it is just slow",
    });
  }
  if (err instanceof BodyTooLargeError) {
    return new VaultConnectionError(
      address,
      "protocol",
      `${address} answered more than ${formatBytes(err.limit)}: stopped reading (a Vault answer is far smaller)`,
      { cause: err, hint: "check the address: is it the API port of a Vault or OpenBao node?" },
    );
  }
  if (code === "ECONNREFUSED") {
    return new VaultConnectionError(address, "refused", `${address} refused the connection (nothing listens there)`, {
      cause: err,
    });
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new VaultConnectionError(address, "dns", `${address}: host name not found`, { cause: err });
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return new VaultConnectionError(
      address,
      "tls",
      `${address}: the server's TLS certificate does not name this host`,
      { cause: err, hint: "connect by a name the certificate has, or set --tls-server-name (VAULT_TLS_SERVER_NAME)" },
    );
  }
  if (TLS_CODES.has(code) || /certificate|ssl|tls/i.test(e?.message ?? "")) {
    const wrongProtocol = code === "ERR_SSL_WRONG_VERSION_NUMBER" || /wrong version number/i.test(e?.message ?? "");
    return new VaultConnectionError(
      address,
      "tls",
      wrongProtocol
        ? `${address}: TLS handshake failed (the server does not speak TLS on this port; try http://)`
        : `${address}: the server's TLS certificate is not trusted (${code || "verification failed"})`,
      {
        cause: err,
        hint: wrongProtocol ? undefined : "give the CA that signed it with --ca-cert (VAULT_CACERT)",
      },
    );
  }
  if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE") {
    return new VaultConnectionError(address, "reset", `${address} closed the connection`, { cause: err });
  }
  return new VaultConnectionError(address, "other", `${address} could not be reached (${code || name || "error"})`, {
    cause: err,
  });
}

function findCode(err: unknown): { code?: string; message?: string } | undefined {
  let cur: unknown = err;
  for (let i = 0; i < 5 && cur; i++) {
    const c = cur as { code?: string; message?: string; cause?: unknown };
    if (typeof c.code === "string" && c.code !== "UND_ERR_CONNECT" && c.code !== "ABORT_ERR") return c;
    cur = c.cause;
  }
  return err as { code?: string; message?: string };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
