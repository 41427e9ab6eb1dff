/**
 * A fault-injecting TCP proxy for tests, loopback only: it forwards byte for byte to a real server until a request
 * matching `trigger` (e.g. "PUT /v1/sys/init ") has been forwarded, and then does to THAT request's answer what the
 * fault says:
 *   - hold:  the answer is kept back until `release()` (a slow node, a slow KMS, a high-latency link);
 *   - cut:   the client's connection is closed (FIN) when the server's answer arrives, instead of passing it on: the
 *            request reached the server, the server did the work, the client never sees a byte of the answer;
 *   - half:  the first half of the answer is forwarded, then the client's connection is closed;
 *   - reset: once the server answered, the client's connection is reset (RST) instead of receiving it;
 *   - gate:  every matching REQUEST (on any connection) is kept back until `release()`, then all go at once (two
 *            clients racing for the same irreversible call).
 * Other requests and connections pass through untouched. Events are observable (`triggered`, `answered`), so tests wait
 * on them rather than on a clock.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

export type Fault = "pass" | "hold" | "cut" | "half" | "reset" | "gate";

export interface FaultProxy {
  readonly address: string;
  readonly port: number;
  /**
   * What to do to the next matching request's answer (applies once, then the proxy passes everything). `nth` (default
   * 1): the fault applies to the nth matching request; the ones before it pass (e.g. the completing share of a
   * quorum of 2 is the 2nd `update`).
   */
  arm(fault: Fault, trigger?: string, nth?: number): void;
  /** Resolves when the armed request has been forwarded to the server. */
  triggered(): Promise<void>;
  /** Resolves when the server's (whole) answer to it arrived at the proxy; its size in bytes. */
  answered(): Promise<number>;
  /** Lets a held answer through. */
  release(): void;
  /** gate: how many requests are being kept back. */
  gated(): number;
  /** Milliseconds since the armed request reached the server (0 before). */
  heldForMs(): number;
  close(): Promise<void>;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export async function startFaultProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<FaultProxy> {
  let fault: Fault = "pass";
  let trigger = "PUT /v1/sys/init ";
  let armed = false;
  /** Matching requests still to let pass before the armed one. */
  let skip = 0;
  let triggeredAt = 0;
  let onTriggered = deferred<void>();
  let onAnswered = deferred<number>();
  let onRelease = deferred<void>();
  const sockets = new Set<Socket>();
  let gatedCount = 0;

  const server: Server = createServer((client) => {
    sockets.add(client);
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    let seen = "";
    /** This connection carries the armed request: the server's bytes from now on are its answer. */
    let mine = false;
    let answer: Buffer[] = [];
    let answerTimer: NodeJS.Timeout | undefined;
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => {
      // a client gone after a "cut" or "reset": keep the server's side open until it answered (it does the work)
      if (!mine) upstream.destroy();
    });
    upstream.on("close", () => client.destroy());

    let gatedBytes: Buffer[] | undefined;
    client.on("data", (chunk: Buffer) => {
      if (gatedBytes) {
        gatedBytes.push(chunk);
        return;
      }
      if (armed && fault === "gate") {
        seen = (seen + chunk.toString("latin1")).slice(-65_536);
        if (seen.includes(trigger)) {
          seen = "";
          gatedBytes = [chunk];
          gatedCount++;
          void onRelease.promise.then(() => {
            for (const b of gatedBytes ?? []) upstream.write(b);
            gatedBytes = undefined;
          });
          return;
        }
        upstream.write(chunk);
        return;
      }
      upstream.write(chunk);
      if (!armed || mine) return;
      seen = (seen + chunk.toString("latin1")).slice(-65_536);
      const at = seen.indexOf(trigger);
      if (at < 0) return;
      // the whole request is forwarded once its body (content-length) has passed
      const head = seen.slice(at);
      const headEnd = head.indexOf("\r\n\r\n");
      if (headEnd < 0) return;
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head.slice(0, headEnd))?.[1] ?? 0);
      if (head.length - headEnd - 4 < len) return;
      if (skip > 0) {
        // an earlier matching request: it passes, and the search goes on after it
        skip--;
        seen = head.slice(headEnd + 4 + len);
        return;
      }
      armed = false;
      mine = true;
      triggeredAt = Date.now();
      onTriggered.resolve();
    });

    upstream.on("data", (chunk: Buffer) => {
      if (!mine) {
        client.write(chunk);
        return;
      }
      answer.push(chunk);
      const sofar = Buffer.concat(answer);
      const headEnd = sofar.indexOf("\r\n\r\n");
      const len = /\r\ncontent-length: *(\d+)/i.exec(sofar.subarray(0, Math.max(headEnd, 0)).toString("latin1"))?.[1];
      clearTimeout(answerTimer);
      if (headEnd >= 0 && len !== undefined) {
        if (sofar.length - headEnd - 4 >= Number(len)) void deliver();
      } else {
        // no content-length (chunked): the answer is complete when the server pauses
        answerTimer = setTimeout(() => void deliver(), 200);
      }
    });

    const deliver = async () => {
      const bytes = Buffer.concat(answer);
      answer = [];
      onAnswered.resolve(bytes.length);
      switch (fault) {
        case "pass":
        case "gate":
          client.write(bytes);
          break;
        case "hold":
          await onRelease.promise;
          client.write(bytes);
          break;
        case "cut":
          end();
          break;
        case "half":
          client.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => end());
          break;
        case "reset":
          client.resetAndDestroy();
          upstream.destroy();
          break;
      }
      mine = false;
    };
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;

  return {
    address: `http://127.0.0.1:${port}`,
    port,
    arm(f, t, nth = 1) {
      fault = f;
      if (t) trigger = t;
      armed = true;
      skip = nth - 1;
      triggeredAt = 0;
      onTriggered = deferred();
      onAnswered = deferred();
      onRelease = deferred();
      gatedCount = 0;
    },
    gated: () => gatedCount,
    triggered: () => onTriggered.promise,
    answered: () => onAnswered.promise,
    release: () => onRelease.resolve(),
    heldForMs: () => (triggeredAt === 0 ? 0 : Date.now() - triggeredAt),
    async close() {
      onRelease.resolve();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
