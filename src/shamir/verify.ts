import { interpolateAt } from "./combine.js";
import { checkSecretDigest } from "./digest.js";
import { ShamirError } from "./errors.js";
import { checkShares, equalBytes } from "./validate.js";

export interface VerifyOptions {
  /** A digest from createSecretDigest (split --format json prints one); checked against the reconstructed secret. */
  digest?: string;
  /** Most candidate sets of culprits to try before giving up (default 20000). */
  searchLimit?: number;
}

/** Why culprits are (or are not) named. */
export type CulpritSearch =
  | "not-needed" // the shares agree
  | "found" // removing exactly these shares leaves a set that agrees, and no other set of that size does
  | "too-few-shares" // n < t + 2: any t + 1 shares minus one always agree, so no share can be singled out
  | "not-found" // no set of up to (n - t) / 2 shares explains the disagreement (threshold too low, or too many bad)
  | "limit"; // the search limit was hit first

export interface VerifyReport {
  /** True when every `threshold`-sized subset of the shares reconstructs the same secret. */
  consistent: boolean;
  shareCount: number;
  threshold: number;
  /** How many threshold-sized subsets exist (decimal, exact). All of them are covered: see verifyShares. */
  subsets: string;
  /** 1-based indices of the shares at fault, when they can be named. */
  culprits: number[];
  culpritSearch: CulpritSearch;
  /** Result of the digest check; "not-checked" without a digest or without a consistent set to check. */
  digest: "match" | "mismatch" | "not-checked";
  /** Things a person should know, e.g. that exactly `threshold` shares cannot be cross-checked. */
  notes: string[];
}

/**
 * Checks that `shares` (at least `threshold` of them) are consistent: that every threshold-sized subset reconstructs
 * the same secret. Rather than combining each of the C(n, t) subsets (or sampling them when there are too many), it
 * uses an equivalent check that is exact and costs (n - t) interpolations: all subsets agree if and only if all n
 * points lie on one polynomial of degree < t (if a point k were off the polynomial through a t-set S, swapping k for
 * any member of S changes the value at 0, because the difference of the two polynomials is c * prod(x - x_j) over
 * t - 1 non-zero x_j with c != 0).
 *
 * When the shares disagree and n >= t + 2, it looks for the smallest set of at most floor((n - t) / 2) shares whose
 * removal leaves an agreeing set; within that bound the set is unique (Reed-Solomon decoding radius), so those
 * shares are named as culprits. With a digest, the secret reconstructed from the agreeing shares is checked against it.
 *
 * Throws ShamirError for malformed input (as combineShares does) or a threshold outside 2..255 or above the number of
 * shares. Returns a report otherwise; it never contains the secret.
 */
export async function verifyShares(
  shares: readonly Uint8Array[],
  threshold: number,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > 255) {
    throw new ShamirError(`threshold must be an integer from 2 to 255, got ${threshold}`);
  }
  const xs = checkShares(shares);
  const n = shares.length;
  if (n < threshold) throw new ShamirError(`verify needs at least threshold (${threshold}) shares, got ${n}`);
  const report: VerifyReport = {
    consistent: false,
    shareCount: n,
    threshold,
    subsets: binomial(n, threshold).toString(),
    culprits: [],
    culpritSearch: "not-needed",
    digest: "not-checked",
    notes: [],
  };
  const all = Array.from({ length: n }, (_, i) => i);
  let agreeing: number[] | undefined;
  if (isConsistent(shares, xs, all, threshold)) {
    report.consistent = true;
    agreeing = all;
    if (n === threshold) {
      report.notes.push(
        `exactly ${threshold} shares always reconstruct something: only a digest can tell whether it is the secret`,
      );
    }
  } else {
    const found = searchCulprits(shares, xs, threshold, opts.searchLimit ?? 20_000);
    report.culpritSearch = found.search;
    if (found.culprits) {
      report.culprits = found.culprits.map((i) => i + 1);
      agreeing = all.filter((i) => !found.culprits!.includes(i));
    } else if (found.search === "too-few-shares") {
      report.notes.push(`the shares disagree; naming the bad share needs at least ${threshold + 2} shares, got ${n}`);
    } else if (found.search === "not-found") {
      report.notes.push(
        `no set of up to ${Math.floor((n - threshold) / 2)} share(s) explains the disagreement: ` +
          "the threshold may be higher than given, or more shares are wrong than can be singled out",
      );
    } else {
      report.notes.push("gave up looking for the bad shares (search limit reached)");
    }
  }
  if (opts.digest !== undefined && agreeing !== undefined) {
    const base = agreeing.slice(0, threshold);
    const secret = interpolateAt(
      base.map((i) => shares[i]!),
      Uint8Array.from(base, (i) => xs[i]!),
      0,
    );
    try {
      report.digest = (await checkSecretDigest(secret, opts.digest)) ? "match" : "mismatch";
    } finally {
      secret.fill(0);
    }
  }
  return report;
}

/** True when the shares at `indices` all lie on the polynomial through the first `threshold` of them. */
function isConsistent(shares: readonly Uint8Array[], xs: Uint8Array, indices: number[], threshold: number): boolean {
  if (indices.length <= threshold) return true;
  const base = indices.slice(0, threshold);
  const baseShares = base.map((i) => shares[i]!);
  const baseXs = Uint8Array.from(base, (i) => xs[i]!);
  const length = shares[0]!.length - 1;
  let ok = true;
  for (const k of indices.slice(threshold)) {
    const predicted = interpolateAt(baseShares, baseXs, xs[k]!);
    ok = equalBytes(predicted, shares[k]!.subarray(0, length)) && ok;
    predicted.fill(0);
  }
  return ok;
}

function searchCulprits(
  shares: readonly Uint8Array[],
  xs: Uint8Array,
  threshold: number,
  limit: number,
): { search: CulpritSearch; culprits?: number[] } {
  const n = shares.length;
  if (n < threshold + 2) return { search: "too-few-shares" };
  let tried = 0;
  for (let e = 1; e <= Math.floor((n - threshold) / 2); e++) {
    const hits: number[][] = [];
    for (const removed of combinations(n, e)) {
      if (++tried > limit) return { search: "limit" };
      const keep = [];
      for (let i = 0; i < n; i++) if (!removed.includes(i)) keep.push(i);
      if (isConsistent(shares, xs, keep, threshold)) hits.push(removed);
    }
    // Within the decoding radius the smallest explaining set is unique; several would mean the bound was wrong.
    if (hits.length === 1) return { search: "found", culprits: hits[0]! };
    if (hits.length > 1) return { search: "not-found" };
  }
  return { search: "not-found" };
}

/** All k-element subsets of 0..n-1, in lexicographic order. */
function* combinations(n: number, k: number): Generator<number[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  while (true) {
    yield idx.slice();
    let i = k - 1;
    while (i >= 0 && idx[i] === n - k + i) i--;
    if (i < 0) return;
    idx[i]!++;
    for (let j = i + 1; j < k; j++) idx[j] = idx[j - 1]! + 1;
  }
}

/** C(n, k) exactly. */
export function binomial(n: number, k: number): bigint {
  let r = 1n;
  for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
  return r;
}
