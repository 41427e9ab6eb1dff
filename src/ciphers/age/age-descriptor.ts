import { asText, leadingText } from "../sniff.js";
import type { CipherDescriptor } from "../types.js";

const ARMOR_BEGIN = "-----BEGIN AGE ENCRYPTED FILE-----";
const BINARY_HEADER = "age-encryption.org/v1\n";
/** Loosely a bech32 recipient (`age1...`, `age1pq1...`); the backend checks the checksum and the type. */
const RECIPIENT = /^age1[0-9a-z]+$/;

/** age (https://age-encryption.org/v1): X25519 recipients `age1...`, read by `age -d -i` (armored files). */
export const ageDescriptor: CipherDescriptor = {
  type: "age",
  label: "age",
  fileExtension: ".age",
  specForms: ["age:RECIPIENT", "age:FILE"],
  classifySpecValue(value) {
    const v = value.trim();
    if (v === "") return { error: "age recipient needs an age1... recipient or a recipients file" };
    if (v.startsWith("AGE-SECRET-KEY-") || v.startsWith("AGE-PLUGIN-")) {
      return { error: "that is an age identity (a secret key), not a recipient: give its age1... public key" };
    }
    if (v.startsWith("age1")) {
      return RECIPIENT.test(v) ? "literal" : { error: `"${v}" is not a valid age recipient` };
    }
    if (v.startsWith("ssh-") || v.startsWith("ecdsa-")) {
      return { error: "ssh recipients are not supported: give an age1... recipient" };
    }
    return "file";
  },
  looksSealed(sealed) {
    const head = leadingText(sealed, 64);
    return head.startsWith(ARMOR_BEGIN) || head.startsWith(BINARY_HEADER);
  },
  looksLikeIdentity(identity) {
    if (ageDescriptor.looksSealed(identity)) return true; // a passphrase-protected identity file (age -p)
    return /^(?:AGE-SECRET-KEY-|AGE-PLUGIN-)/m.test(asText(identity));
  },
};
