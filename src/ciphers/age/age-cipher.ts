/**
 * age backend (typage, age-encryption 0.3). Loaded lazily by the registry: importing this module loads typage.
 *
 * Sealed shares are written ASCII-armored (`-----BEGIN AGE ENCRYPTED FILE-----`): the age CLI detects armor on
 * decryption since v1.0 (Debian's age 1.1.1 reads it with a plain `age -d -i key.txt file.age`), and text files
 * survive copy-paste, mail and ticket systems that binary files do not.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { armor, Decrypter, Encrypter } from "age-encryption";
import { redactSecrets } from "../../util/redact.js";
import { OpenShareError, RecipientError } from "../errors.js";
import { asText, leadingText, toBytes } from "../sniff.js";
import type { CipherBackend, LoadedRecipient, LoadRecipientOptions, RecipientSpec } from "../types.js";

/** Recipient kinds typage can encrypt to, by bech32 human-readable part (everything before the last "1"). */
const SUPPORTED_HRPS = new Set(["age", "age1pq", "age1tag", "age1tagpq"]);
const IDENTITY_LINE = /^AGE-SECRET-KEY-(?:PQ-)?1[0-9A-Z]+$/;
/** typage's message when no stanza opens with the given identities: the "not addressed to me" case. */
const NO_MATCH = "no identity matched any of the file's recipients";

interface AgeHandle {
  recipients: string[];
}

/**
 * Checks one recipient string; returns an error message (naming it, cut if it looks like a secret: a token or a
 * share pasted into a recipients file) or null.
 */
function checkRecipient(recipient: string): string | null {
  const shown = redactSecrets(recipient);
  if (!recipient.startsWith("age1")) return `"${shown}" is not an age recipient (age1...)`;
  const hrp = recipient.slice(0, recipient.lastIndexOf("1"));
  if (!SUPPORTED_HRPS.has(hrp)) {
    return `"${shown}" is an age plugin recipient (${redactSecrets(hrp)}); plugins are not supported, give an age1... X25519 recipient`;
  }
  try {
    new Encrypter().addRecipient(recipient); // decodes the bech32 and checks its checksum and length
    return null;
  } catch {
    return `"${shown}" is not a valid age recipient`;
  }
}

/** Parses a recipients file as the age CLI does (`-R`): one recipient a line, `#` comments and blank lines ignored. */
function parseRecipientsFile(text: string, label: string): string[] {
  const recipients: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    if (/^AGE-SECRET-KEY-/i.test(line)) {
      throw new RecipientError(
        `age recipients file ${label} line ${i + 1} is a SECRET key: give the age1... recipient`,
      );
    }
    const why = checkRecipient(line);
    if (why !== null) throw new RecipientError(`age recipients file ${label} line ${i + 1}: ${why}`);
    recipients.push(line);
  });
  if (recipients.length === 0) throw new RecipientError(`age recipients file ${label} lists no recipient`);
  return recipients;
}

async function validateByEncrypting(recipients: string[], label: string): Promise<void> {
  // wrapping a file key runs the key agreement (e.g. rejects a low-order X25519 point): better to fail in pre-flight
  // than after the server answered
  try {
    const e = new Encrypter();
    for (const r of recipients) e.addRecipient(r);
    await e.encrypt(new Uint8Array(0));
  } catch (err) {
    throw new RecipientError(`age recipient ${label} is not valid`, { cause: err });
  }
}

/** Parses an age identity file into identity strings, decrypting it first when it is passphrase-protected. */
async function readIdentities(identity: Uint8Array, passphrase: string | undefined): Promise<string[]> {
  let text = asText(identity);
  if (
    leadingText(identity).startsWith("-----BEGIN AGE ENCRYPTED FILE-----") ||
    text.startsWith("age-encryption.org/v1\n")
  ) {
    if (passphrase === undefined) {
      throw new OpenShareError("passphrase-required", "the age identity file is protected by a passphrase", {
        hint: "give the passphrase (e.g. --passphrase-file FILE)",
      });
    }
    const d = new Decrypter();
    d.addPassphrase(passphrase);
    try {
      text = await d.decrypt(unarmor(identity), "text");
    } catch (err) {
      const msg = err instanceof Error ? err.message : "";
      if (msg === NO_MATCH) throw new OpenShareError("wrong-passphrase", "wrong passphrase for the age identity file");
      throw new OpenShareError("bad-identity", "the encrypted age identity file cannot be decrypted", { cause: err });
    }
  }
  const identities: string[] = [];
  let plugins = 0;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("AGE-PLUGIN-")) {
      plugins++;
      continue;
    }
    // never echo the line: it may be (part of) a secret key
    if (!IDENTITY_LINE.test(line))
      throw new OpenShareError("bad-identity", `line ${i + 1} of the age identity file is not an identity`);
    identities.push(line);
  }
  if (identities.length === 0) {
    const why =
      plugins > 0 ? "holds only plugin identities; open the file with age -d -i instead" : "holds no identity";
    throw new OpenShareError("bad-identity", `the age identity file ${why}`);
  }
  return identities;
}

function unarmor(sealed: Uint8Array): Uint8Array {
  if (leadingText(sealed, 64).startsWith("-----BEGIN AGE ENCRYPTED FILE-----")) return armor.decode(asText(sealed));
  return sealed;
}

export const ageBackend: CipherBackend = {
  type: "age",

  async loadRecipient(spec: RecipientSpec, opts: LoadRecipientOptions = {}): Promise<LoadedRecipient> {
    let recipients: string[];
    if (spec.source === "literal") {
      const why = checkRecipient(spec.value);
      if (why !== null) throw new RecipientError(why);
      recipients = [spec.value];
    } else {
      const path = resolve(opts.cwd ?? process.cwd(), spec.value);
      let text: string;
      try {
        text = await readFile(path, "utf8");
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "error";
        throw new RecipientError(`cannot read age recipients file ${redactSecrets(spec.value)}: ${code}`, {
          cause: err,
        });
      }
      recipients = parseRecipientsFile(text, redactSecrets(spec.value));
    }
    await validateByEncrypting(recipients, redactSecrets(spec.raw));
    const handle: AgeHandle = { recipients };
    const shown =
      recipients.length === 1 ? recipients[0]! : `${recipients.length} recipients: ${recipients.join(", ")}`;
    return {
      type: "age",
      fingerprint: recipients.join(","),
      describe: `age ${shown}`,
      keys: recipients.map((r) => ({ material: `age:${r.toLowerCase()}`, name: `age recipient ${r}` })),
      spec,
      handle,
    };
  },

  async seal(recipient: LoadedRecipient, plaintext: Uint8Array): Promise<string> {
    const handle = recipient.handle as AgeHandle | undefined;
    if (recipient.type !== "age" || !handle?.recipients) throw new Error("not a loaded age recipient");
    try {
      const e = new Encrypter();
      for (const r of handle.recipients) e.addRecipient(r);
      return armor.encode(await e.encrypt(plaintext));
    } catch (err) {
      throw new Error(`failed to seal to age recipient ${recipient.fingerprint}`, { cause: err });
    }
  },

  async open(sealedIn, identityIn, passphrase) {
    const identities = await readIdentities(toBytes(identityIn), passphrase);
    let sealed: Uint8Array;
    try {
      sealed = unarmor(toBytes(sealedIn));
    } catch (err) {
      throw new OpenShareError("corrupt", "the sealed share's age armor is damaged", { cause: err });
    }
    const d = new Decrypter();
    for (const id of identities) {
      try {
        d.addIdentity(id);
      } catch (err) {
        throw new OpenShareError("bad-identity", "the age identity file holds an invalid identity", { cause: err });
      }
    }
    try {
      return await d.decrypt(sealed);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      // age recipients are anonymous: a stanza we cannot open is "not for us", never an error
      if (msg === NO_MATCH) return null;
      throw new OpenShareError("corrupt", `the sealed age share cannot be decrypted: ${msg}`, { cause: err });
    }
  },
};
