/**
 * Errors name the bad value, but a value pasted in the wrong place may be a secret (an age secret key in a recipient
 * spec, a token in VAULT_ADDR, a share in an operator name). Errors may be logged: show such a value cut after a few
 * characters, enough to recognise it, not enough to use it.
 */

const SHAPES: { re: RegExp; keep: (m: string) => string }[] = [
  // an OpenPGP private key block (to its end, or to the end of the text when cut off): keep the armor header
  {
    re: /-----BEGIN PGP PRIVATE KEY BLOCK-----[\s\S]*?(?:-----END PGP PRIVATE KEY BLOCK-----|$(?![\s\S]))/g,
    keep: () => "-----BEGIN PGP PRIVATE KEY BLOCK-----",
  },
  // age identities (bech32, case-insensitive): keep "AGE-SECRET-KEY-1"
  { re: /AGE-(?:SECRET-KEY|PLUGIN)-[A-Z0-9-]*?1[0-9A-Z]+/gi, keep: (m) => m.slice(0, m.indexOf("1", 4) + 1) },
  // Vault/OpenBao tokens: hvs./hvb./hvr. (and s./b./r. legacy service/batch/recovery tokens of 24+ characters); the
  // run takes base64's + / = too, so that a share run into a token prefix ("b.AAAA...H9+AAAA...ZgAA") is cut whole,
  // not left as a tail too short for the base64 shape below
  { re: /(?:hv[sbr]|\b[sbr])\.[A-Za-z0-9_+/=-]{16,}/g, keep: (m) => m.slice(0, m.indexOf(".") + 1) },
  // key material as hex: a share is 66 hex digits, a key 64; 32+ is never a word
  { re: /[0-9a-fA-F]{32,}/g, keep: (m) => m.slice(0, 4) },
  // key material as base64 (a share is 44 characters): mixed case, unlike most paths
  { re: /[A-Za-z0-9+/_-]{40,}={0,2}/g, keep: (m) => (/[a-z]/.test(m) && /[A-Z]/.test(m) ? m.slice(0, 4) : m) },
  // the bech32 body of an age identity whose prefix a slip mangled (YAML's "\age-secret-key-1..." is a BEL and
  // "ge-secret-key-1..."): 40+ characters of the bech32 alphabet in one case. An age1... recipient is public: kept.
  {
    re: /[aA][gG][eE]1[qpzry9x8gf2tvdw0s3jn54khce6mua7lQPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]+|[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{40,}|[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{40,}/g,
    keep: (m) => (/^age1/i.test(m) ? m : m.slice(0, 4)),
  },
];

/**
 * Control characters a value read from a file, a prompt or the environment may carry: C0 (but newline and tab), DEL,
 * C1, and the bidirectional overrides. Echoed raw into an error they would drive the operator's terminal (ESC starts
 * a sequence that can recolour, move or retitle; a backspace hides what precedes it; an override reorders a line).
 */
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` with every secret-looking run cut to its first characters and "...", and every control character shown
 * escaped (`\x1b`, `\u202e`), so that an error names a bad value without leaking it or acting on the terminal that
 * shows it. Other text is unchanged.
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const { re, keep } of SHAPES) {
    out = out.replace(re, (m) => {
      const kept = keep(m);
      return kept === m ? m : `${kept}...`;
    });
  }
  return escapeControl(out);
}

/**
 * `text` with every control character shown escaped (`\x1b`, `\u202e`); newline and tab stay. Every SealkeeperError
 * message and hint passes through it, so that a value from a file, a prompt, the environment or a server's answer
 * never acts on the terminal that shows the error.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * True when a value given where a path goes (a flag's value) looks like key material: what looksSecret says, and also
 * a base64 unseal share that starts with or holds a "/" (44 characters of base64 for 33 bytes, mixed case and
 * digits), which a prompt answer test leaves alone so that a path is never taken for one.
 */
export function looksSecretArgument(value: string): boolean {
  const v = value.trim();
  return looksSecret(v) || (/^[A-Za-z0-9+/]{44}$/.test(v) && /\d/.test(v) && /[a-z]/.test(v) && /[A-Z]/.test(v));
}

/**
 * True when a value typed at a plain (echoed) prompt looks like key material: a share in hex (also half pasted: 16+
 * hex digits and nothing else) or base64, a Vault/OpenBao token, an age secret key, a PGP private key block, or 64+
 * hex digits anywhere. Names and paths (a fingerprint-named key file included) do not.
 */
export function looksSecret(value: string): boolean {
  const v = value.trim();
  if (v === "") return false;
  return (
    /^[0-9a-fA-F]{16,}$/.test(v) ||
    /[0-9a-fA-F]{64,}/.test(v) ||
    (/^[A-Za-z0-9+_-][A-Za-z0-9+/_-]{39,47}={0,2}$/.test(v) && /\d/.test(v) && /[a-z]/.test(v) && /[A-Z]/.test(v)) ||
    /(?:^|[^A-Za-z0-9])hv[sbr]\.[A-Za-z0-9_-]{8,}/.test(v) ||
    /^[sbr]\.[A-Za-z0-9]{20,}$/.test(v) ||
    /AGE-SECRET-KEY-/i.test(v) ||
    /PRIVATE KEY/.test(v)
  );
}
