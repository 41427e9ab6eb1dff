/** The flag parsers shared by the commands: each rule (and its error message) exists once. */
import type { EndpointPreference } from "../ceremony/quorum-endpoint.js";
import { UsageError } from "../errors.js";

/** Commander accumulator for a repeatable flag. */
export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** Commander parser for a whole number flag. */
export const int =
  (name: string) =>
  (v: string): number => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a whole number, got "${v}"`);
    return Number(v);
  };

/** --endpoint: which quorum API to use. */
export function parseEndpoint(raw: string | undefined): EndpointPreference {
  const v = raw ?? "auto";
  if (v === "auto" || v === "unauthenticated" || v === "authenticated") return v;
  throw new UsageError(`--endpoint must be auto, unauthenticated or authenticated, got "${v}"`);
}

export type SealSharesMode = "auto" | "server" | "client";

/** --seal-shares: who seals the new shares. */
export function parseSealShares(raw: string | undefined): SealSharesMode {
  const v = raw ?? "auto";
  if (v === "auto" || v === "server" || v === "client") return v;
  throw new UsageError(`--seal-shares must be server, client or auto, got "${v}"`);
}

/** A positive number of seconds (fractions allowed), returned in milliseconds. */
export function parseSeconds(raw: string | number, name: string, opts: { allowZero?: boolean } = {}): number {
  const n = Number(raw);
  if (String(raw).trim() === "" || !Number.isFinite(n) || n < 0 || (n === 0 && !opts.allowZero)) {
    throw new UsageError(
      `${name} must be a ${opts.allowZero ? "non-negative" : "positive"} number of seconds, got ${raw}`,
    );
  }
  return n * 1000;
}

/** An integer in [min, max] (e.g. --concurrency 1..64); undefined gives the default. */
export function parseBoundedInt(raw: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (raw === undefined) return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${name} must be ${min}..${max}, got "${raw}"`);
  return n;
}
