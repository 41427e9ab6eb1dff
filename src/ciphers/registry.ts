/**
 * The registry: the ONLY place that names every key type. A new type is one folder (descriptor + backend) and one
 * line in `entries`. Backends (which pull in openpgp or age-encryption) are imported lazily, on first use, so that the
 * CLI starts fast for commands that never touch a cipher.
 */
import { ageDescriptor } from "./age/age-descriptor.js";
import { OpenShareError, RecipientError } from "./errors.js";
import { pgpDescriptor } from "./pgp/pgp-descriptor.js";
import { asText, firstPacketTag, toBytes } from "./sniff.js";

/** OpenPGP packet tag 6: a public key (a private key is tag 5). */
const PUBLIC_KEY_TAG = 6;

import type {
  CipherBackend,
  CipherDescriptor,
  LoadedRecipient,
  LoadRecipientOptions,
  RecipientSpec,
  RecipientType,
} from "./types.js";

interface RegistryEntry {
  descriptor: CipherDescriptor;
  load: () => Promise<CipherBackend>;
}

const entries: RegistryEntry[] = [
  { descriptor: pgpDescriptor, load: async () => (await import("./pgp/pgp-cipher.js")).pgpBackend },
  { descriptor: ageDescriptor, load: async () => (await import("./age/age-cipher.js")).ageBackend },
];

/** Every key type, in the order sniffing tries them. */
export const recipientTypes: readonly RecipientType[] = entries.map((e) => e.descriptor.type);

/** Every accepted spec form, for help text: "pgp:FILE, age:RECIPIENT, age:FILE". */
export function describeSpecForms(): string {
  return entries.flatMap((e) => e.descriptor.specForms).join(", ");
}

/** The light description of a type, or null for an unknown type. */
export function findDescriptor(type: string): CipherDescriptor | null {
  return entries.find((e) => e.descriptor.type === type)?.descriptor ?? null;
}

/**
 * The backend (ShareCipher + ShareOpener) of a type, imported on first use.
 * @throws RecipientError for an unknown type.
 */
export async function loadBackend(type: RecipientType): Promise<CipherBackend> {
  const entry = entries.find((e) => e.descriptor.type === type);
  if (!entry)
    throw new RecipientError(`unknown recipient type "${type}": expected one of ${recipientTypes.join(", ")}`);
  return entry.load();
}

/**
 * Reads and pre-flights the recipient of a parsed spec with its type's backend.
 * @throws RecipientError naming the spec and the reason (see ShareCipher.loadRecipient).
 */
export async function loadRecipient(spec: RecipientSpec, opts?: LoadRecipientOptions): Promise<LoadedRecipient> {
  return (await loadBackend(spec.type)).loadRecipient(spec, opts);
}

/** Seals `plaintext` to a loaded recipient with its own type's backend; returns the armored file text. */
export async function sealShare(recipient: LoadedRecipient, plaintext: Uint8Array): Promise<string> {
  return (await loadBackend(recipient.type)).seal(recipient, plaintext);
}

/**
 * Turns a server-sealed share (base64 of a binary message, as in Vault's `keys_base64`) into armored file text.
 * @throws RecipientError when the type has no server-side sealing; Error when the input is not such a message.
 */
export async function armorServerSealedShare(type: RecipientType, sealedB64: string): Promise<string> {
  const backend = await loadBackend(type);
  if (!backend.armorServerSealed) throw new RecipientError(`the server cannot seal shares to ${type} recipients`);
  return backend.armorServerSealed(sealedB64);
}

/**
 * Checks that a server-sealed share (or token) is addressed to `recipient`'s encryption key (CipherBackend
 * .checkServerSealed). Types without server sealing have nothing to check.
 * @throws Error naming the key IDs found and expected.
 */
export async function checkServerSealedShare(recipient: LoadedRecipient, sealedB64: string): Promise<void> {
  await (await loadBackend(recipient.type)).checkServerSealed?.(recipient, sealedB64);
}

/** The file name extension for a type's sealed share (".asc", ".age"). */
export function fileExtensionFor(type: RecipientType): string {
  const d = findDescriptor(type);
  if (!d) throw new RecipientError(`unknown recipient type "${type}"`);
  return d.fileExtension;
}

/**
 * Which type sealed these bytes, by cheap sniffing (armor header, packet tag, Vault's base64/hex form).
 * @returns the type, or null when the input does not look sealed at all (e.g. a plaintext hex share).
 */
export function detectSealedType(sealed: string | Uint8Array): RecipientType | null {
  const bytes = toBytes(sealed);
  return entries.find((e) => e.descriptor.looksSealed(bytes))?.descriptor.type ?? null;
}

/**
 * Which type an identity (private key) file belongs to, by cheap sniffing.
 * @returns the type, or null when it looks like no identity we know.
 */
export function detectIdentityType(identity: string | Uint8Array): RecipientType | null {
  const bytes = toBytes(identity);
  return entries.find((e) => e.descriptor.looksLikeIdentity(bytes))?.descriptor.type ?? null;
}

/**
 * Opens a sealed share of any type with an identity of any type.
 * @returns the plaintext; or null when the share is not addressed to this identity, including when the share and
 *   the identity are of different types.
 * @throws OpenShareError with reason "bad-identity" when the identity is of no known type, or "corrupt" when the
 *   sealed input is of no known type; and whatever the backend throws (see ShareOpener.open).
 */
export async function openSealedShare(
  sealed: string | Uint8Array,
  identity: string | Uint8Array,
  passphrase?: string,
): Promise<Uint8Array | null> {
  const identityType = detectIdentityType(identity);
  if (identityType === null) {
    const text = asText(toBytes(identity).subarray(0, 4096));
    // the usual mistake: the PUBLIC half given where the private one belongs
    if (/-----BEGIN PGP PUBLIC KEY BLOCK-----/.test(text) || firstPacketTag(toBytes(identity)) === PUBLIC_KEY_TAG) {
      throw new OpenShareError(
        "bad-identity",
        "the identity is a pgp PUBLIC key: opening a share needs the private key",
        {
          hint: "export the private key with: gpg --export-secret-keys --armor KEYID > key.asc",
        },
      );
    }
    if (/^\s*(#.*\n\s*)*age1[0-9a-z]+\s*$/m.test(text) && !/AGE-SECRET-KEY-/.test(text)) {
      throw new OpenShareError(
        "bad-identity",
        "the identity is an age recipient (age1..., the public key): opening a share needs the identity file",
        { hint: "give the file age-keygen wrote, whose line starts AGE-SECRET-KEY-1" },
      );
    }
    throw new OpenShareError("bad-identity", "the identity is neither a pgp private key nor an age identity file");
  }
  const sealedType = detectSealedType(sealed);
  if (sealedType === null) throw new OpenShareError("corrupt", "the input is not a sealed share (pgp or age)");
  if (sealedType !== identityType) return null;
  return (await loadBackend(sealedType)).open(sealed, identity, passphrase);
}
