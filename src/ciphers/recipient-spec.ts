import { redactSecrets } from "../util/redact.js";
import { RecipientError } from "./errors.js";
import { describeSpecForms, findDescriptor } from "./registry.js";
import type { OperatorSpec, RecipientSpec } from "./types.js";

/**
 * A spec (or a part of one) as shown in an error: an age secret key pasted where a recipient belongs, a token or a
 * share pasted anywhere in it, is cut after its prefix, so the error (which may be logged) does not spread it further.
 */
function showSpec(raw: string): string {
  return redactSecrets(raw);
}

/** Operator names become file names: keep them portable and unsurprising. */
export const OPERATOR_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/**
 * Parses `TYPE:VALUE` (`pgp:/path/key.asc`, `age:age1...`, `age:/path/recipients.txt`). Reads nothing from disk.
 * @throws RecipientError naming the spec: no `:`, unknown type, empty or malformed value (e.g. an age secret key
 *   given where a recipient belongs).
 */
export function parseRecipientSpec(raw: string): RecipientSpec {
  const colon = raw.indexOf(":");
  if (colon <= 0) {
    throw new RecipientError(`bad recipient "${showSpec(raw)}": expected TYPE:VALUE, one of ${describeSpecForms()}`);
  }
  const given = raw.slice(0, colon).trim();
  const type = given.toLowerCase();
  const value = raw.slice(colon + 1).trim();
  const descriptor = findDescriptor(type);
  if (!descriptor) {
    // shown as given: lower-cased, a base64 secret no longer looks like one (mixed case) and would not be cut
    throw new RecipientError(
      `unknown recipient type "${showSpec(given)}" in "${showSpec(raw)}": expected one of ${describeSpecForms()}`,
    );
  }
  const source = descriptor.classifySpecValue(value);
  // a descriptor's error may quote the value: cut here too, whatever the descriptor does
  if (typeof source !== "string")
    throw new RecipientError(`bad recipient "${showSpec(raw)}": ${showSpec(source.error)}`);
  return { type, value, source, raw };
}

/**
 * Parses an operator spec `NAME=TYPE:VALUE` (`alice=pgp:alice.asc`, `bob=age:age1...`).
 * @throws RecipientError naming the spec: no `=`, a name unfit for a file name, or a bad recipient part.
 */
export function parseOperatorSpec(raw: string): OperatorSpec {
  const eq = raw.indexOf("=");
  if (eq <= 0) {
    throw new RecipientError(`bad operator "${showSpec(raw)}": expected NAME=TYPE:VALUE, e.g. alice=pgp:alice.asc`);
  }
  const name = raw.slice(0, eq).trim();
  if (!OPERATOR_NAME.test(name)) {
    throw new RecipientError(
      `bad operator name "${showSpec(name)}": use 1-64 letters, digits, ".", "_" or "-", not starting with "." or "-"`,
    );
  }
  return { name, recipient: parseRecipientSpec(raw.slice(eq + 1)) };
}
