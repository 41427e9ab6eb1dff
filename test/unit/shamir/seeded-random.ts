import { createHash } from "node:crypto";
import type { RandomSource } from "../../../src/shamir/random.js";

/**
 * A deterministic RandomSource for test vectors ONLY: SHA-256 of (seed, counter) in sequence. Never use it to split a
 * real secret.
 */
export function seededRandom(seed: string): RandomSource {
  let counter = 0;
  let pool = Buffer.alloc(0);
  return (bytes) => {
    let off = 0;
    while (off < bytes.length) {
      if (pool.length === 0) pool = createHash("sha256").update(`${seed}:${counter++}`).digest();
      const n = Math.min(pool.length, bytes.length - off);
      bytes.set(pool.subarray(0, n), off);
      pool = pool.subarray(n);
      off += n;
    }
  };
}
