/**
 * Where split gets its randomness: a function that fills the given array. The default is the platform CSPRNG; tests
 * inject a seeded source to produce reproducible vectors, and nothing else should.
 */
export type RandomSource = (bytes: Uint8Array) => void;

/** Web Crypto refuses more than 65536 bytes per getRandomValues call (QuotaExceededError). */
const MAX_RANDOM_CALL = 65536;

/** Fills `bytes` from crypto.getRandomValues, in calls of at most 65536 bytes. */
export const cryptoRandom: RandomSource = (bytes) => {
  for (let off = 0; off < bytes.length; off += MAX_RANDOM_CALL) {
    globalThis.crypto.getRandomValues(bytes.subarray(off, Math.min(off + MAX_RANDOM_CALL, bytes.length)));
  }
};
