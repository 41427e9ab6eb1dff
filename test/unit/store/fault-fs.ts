/** A node:fs/promises wrapper that injects errno failures into chosen calls, for ShareStore and rescue tests. */
import { constants } from "node:fs";
import * as nodeFs from "node:fs/promises";
import type { StoreFs } from "../../../src/store/share-store.js";

export function errno(code: string): NodeJS.ErrnoException {
  const err = new Error(`${code}: injected`) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

/** open() flags that create a new file exclusively: "wx", or the store's numeric O_CREAT|O_EXCL|O_NOFOLLOW. */
export function createsNew(flags: string | number | undefined): boolean {
  return flags === "wx" || (typeof flags === "number" && (flags & constants.O_EXCL) !== 0);
}

export interface Faults {
  /** Fail open() of a path for which this returns an errno code. */
  open?: (path: string, flags: string | number | undefined) => string | undefined;
  /** Fail FileHandle.writeFile on files opened for a path for which this returns an errno code. */
  write?: (path: string) => string | undefined;
  link?: (existing: string, target: string) => string | undefined;
}

export function faultyFs(faults: Faults): StoreFs & Pick<typeof nodeFs, "open" | "unlink"> {
  return {
    ...nodeFs,
    open: (async (path: string, flags?: string | number, mode?: number) => {
      const code = faults.open?.(String(path), flags);
      if (code) throw errno(code);
      const fh = await nodeFs.open(path, flags, mode);
      const writeCode = faults.write?.(String(path));
      if (!writeCode) return fh;
      return new Proxy(fh, {
        get(target, prop, receiver) {
          if (prop === "writeFile") return async () => Promise.reject(errno(writeCode));
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
    }) as typeof nodeFs.open,
    link: (async (existing: string, target: string) => {
      const code = faults.link?.(String(existing), String(target));
      if (code) throw errno(code);
      return nodeFs.link(existing, target);
    }) as typeof nodeFs.link,
  };
}
