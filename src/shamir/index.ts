/**
 * Shamir secret sharing over GF(256), byte-compatible with Vault's and OpenBao's unseal and recovery shares.
 * See docs/shamir.md for the format and the security choices.
 */
export { combineShares, interpolateAt, lagrangeBasis } from "./combine.js";
export { checkSecretDigest, createSecretDigest } from "./digest.js";
export { decodeBase64, decodeHex, decodeShare, decodeShares, encodeShare, type ShareEncoding } from "./encoding.js";
export { ShamirError } from "./errors.js";
export { gfAdd, gfDivide, gfInverse, gfMultiply } from "./gf256.js";
export { cryptoRandom, type RandomSource } from "./random.js";
export { combineSecretsJsShares } from "./secretsjs.js";
export { checkSplitArguments, drawCoordinates, type SplitOptions, splitSecret } from "./split.js";
export { checkShares } from "./validate.js";
export { binomial, type CulpritSearch, type VerifyOptions, type VerifyReport, verifyShares } from "./verify.js";
