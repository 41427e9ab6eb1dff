/**
 * Zeroes byte buffers that sealkeeper owns (an identity file's bytes, a passphrase file's bytes, a decrypted token)
 * once they are used, so that a later core dump, swap page or heap snapshot does not hold them. JavaScript strings
 * (a passphrase once decoded, a token, a share's hex) cannot be wiped: docs/security.md says what remains.
 */
export function wipe(...buffers: (Uint8Array | null | undefined)[]): void {
  for (const b of buffers) b?.fill(0);
}
