/**
 * Reading an HTTP answer with a cap. A node (or a proxy, or anything listening on the port) may answer without end:
 * read whole into memory, 1 GiB took 3 GiB and crashed the process with ERR_STRING_TOO_LONG thrown in the `end`
 * handler, outside every error handler, critical section and rescue path. Past the cap the answer is dropped and the
 * promise rejects with BodyTooLargeError, where the caller's error handling sees it like any failed request.
 */
import type { IncomingMessage } from "node:http";

export const MiB = 1024 * 1024;

export class BodyTooLargeError extends Error {
  readonly code = "ERR_BODY_TOO_LARGE";
  constructor(readonly limit: number) {
    super(`the answer is larger than ${formatBytes(limit)}`);
    this.name = "BodyTooLargeError";
  }
}

/** "4 MiB", "64 MiB", "512 KiB". */
export function formatBytes(n: number): string {
  return n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

/**
 * The whole body of `res`, at most `limit` bytes. Rejects with BodyTooLargeError as soon as the declared length or
 * the bytes received pass the cap (the response is destroyed: nothing more is read), and with an ECONNRESET error
 * when the connection closes before the end.
 */
export function readBoundedBody(res: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(res.headers["content-length"]);
    if (Number.isFinite(declared) && declared > limit) {
      res.destroy();
      reject(new BodyTooLargeError(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(err);
    };
    res.on("data", (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        fail(new BodyTooLargeError(limit));
        res.destroy();
        return;
      }
      chunks.push(c);
    });
    res.on("end", () => {
      if (settled) return;
      settled = true;
      resolve(Buffer.concat(chunks));
    });
    res.on("error", fail);
    // a connection closed half-way through the answer ends the response without 'end'
    res.on("aborted", () =>
      fail(Object.assign(new Error("the connection closed during the answer"), { code: "ECONNRESET" })),
    );
    res.on("close", () => {
      if (!res.complete)
        fail(Object.assign(new Error("the connection closed during the answer"), { code: "ECONNRESET" }));
    });
  });
}
