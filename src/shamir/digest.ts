import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { ShamirError } from "./errors.js";
import { isBytes } from "./validate.js";

/**
 * A salted, slow digest of a secret, recorded at split time so that a later combine or verify can tell the right
 * secret from a wrong one. Salted so that equal secrets give unrelated digests and no precomputed table applies; slow
 * (scrypt) so that a low-entropy secret (a passphrase) cannot be found by trying guesses quickly. A random 32-byte key
 * cannot be guessed either way. Written in the PHC string format: `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (unpadded
 * base64).
 */
const DEFAULT = { ln: 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{43})$/;

function runScrypt(secret: Uint8Array, salt: Uint8Array, ln: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, HASH_BYTES, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

function unpadded(b: Uint8Array): string {
  return Buffer.from(b).toString("base64").replace(/=+$/, "");
}

/** Makes a fresh digest of `secret` (new random salt each time). */
export async function createSecretDigest(secret: Uint8Array): Promise<string> {
  if (!isBytes(secret) || secret.length === 0) throw new ShamirError("secret must be a non-empty Uint8Array or Buffer");
  const salt = randomBytes(SALT_BYTES);
  const hash = await runScrypt(secret, salt, DEFAULT.ln, DEFAULT.r, DEFAULT.p);
  return `$scrypt$ln=${DEFAULT.ln},r=${DEFAULT.r},p=${DEFAULT.p}$${unpadded(salt)}$${unpadded(hash)}`;
}

/**
 * True when `secret` matches `digest`, false when it does not. Throws ShamirError when `digest` is not a digest made
 * by createSecretDigest, or asks for parameters outside a sane range (a hostile digest must not cost gigabytes).
 */
export async function checkSecretDigest(secret: Uint8Array, digest: string): Promise<boolean> {
  const m = PHC.exec(digest.trim());
  if (!m) throw new ShamirError("digest is not a sealkeeper digest ($scrypt$ln=..,r=..,p=..$salt$hash)");
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (ln < 10 || ln > 20 || r < 1 || r > 16 || p < 1 || p > 4) {
    throw new ShamirError(`digest parameters out of range (ln=${ln}, r=${r}, p=${p})`);
  }
  const salt = Buffer.from(m[4]!, "base64");
  const expected = Buffer.from(m[5]!, "base64");
  const actual = await runScrypt(secret, salt, ln, r, p);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
