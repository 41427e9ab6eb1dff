/**
 * The share-cipher seam: a ShareCipher seals a share to one recipient, a ShareOpener opens a sealed share with an
 * identity. One implementation per key type (src/ciphers/<type>/), listed in src/ciphers/registry.ts, the only place
 * that names every type. Callers go through the registry's functions and never switch on the type themselves.
 */

/** A key type's name as written in specs ("pgp", "age"). The registry holds the list: see `recipientTypes`. */
export type RecipientType = string;

/**
 * A parsed, not yet loaded, recipient spec: `pgp:FILE`, `age:age1...` or `age:FILE`.
 * Nothing has been read from disk yet; `loadRecipient` does that (and pre-flights the key).
 */
export interface RecipientSpec {
  type: RecipientType;
  /** The text after `type:`: a file path (resolved against the caller's cwd at load time) or a literal recipient. */
  value: string;
  /** Whether `value` names a file or is the recipient itself. */
  source: "file" | "literal";
  /** The spec exactly as given, for messages. */
  raw: string;
}

/** `NAME=TYPE:VALUE`: an operator who will receive one share. */
export interface OperatorSpec {
  /** Safe for a file name: letters, digits, `.`, `_`, `-`; 1..64 characters, not starting with `.` or `-`. */
  name: string;
  recipient: RecipientSpec;
}

/**
 * A recipient whose key material was read and checked: it parses and can encrypt now. Produced only by
 * `ShareCipher.loadRecipient`; pass it back to the same type's `seal`.
 */
export interface LoadedRecipient {
  type: RecipientType;
  /**
   * A stable public identifier recorded in the manifest: for pgp the primary key's v4 fingerprint (40 upper-case hex
   * digits); for age the recipient string (several, comma-separated, when a recipients file lists more than one).
   */
  fingerprint: string;
  /** One line for people, e.g. `pgp rsa3072 4F2A… "Alice <alice@example.org>"`. Never secret. */
  describe: string;
  /**
   * pgp only: standard padded base64 of the BINARY public key, the form Vault's `pgp_keys`, `recovery_pgp_keys` and
   * `root_token_pgp_key` want (armored input is converted). Absent for types the server cannot encrypt to.
   */
  serverPgpKeyB64?: string;
  /**
   * Every key this recipient's seal can go to: `material` identifies the key MATERIAL (not its name), so that two
   * recipients sharing any one are known to be one holder (deliver-shares.ts `checkDistinctHolders`); `name` is how
   * people know it. pgp: the primary key and each encryption subkey, by algorithm and public parameters (a subkey
   * imported under another primary gets a new fingerprint but keeps its material); age: each recipient string.
   */
  keys: { material: string; name: string }[];
  /** The spec it was loaded from. */
  spec: RecipientSpec;
  /** The backend's parsed key material. Opaque to everyone but the backend that made it. */
  readonly handle: unknown;
}

/** Options for loading recipient key material. */
export interface LoadRecipientOptions {
  /** Directory that relative file paths are resolved against (default: process.cwd()). */
  cwd?: string;
  /** The time at which the key must be able to encrypt (default: now). Tests use it to check expiry. */
  now?: Date;
}

/** Seals shares to recipients of one key type. */
export interface ShareCipher {
  /**
   * Reads and pre-flights a recipient: the key parses and can encrypt at `opts.now`.
   * @throws RecipientError naming the spec (and the key's fingerprint and user id when known) and the reason: file
   *   unreadable, not a key, a private key, several keys, expired, revoked, sign-only, unsupported version or type.
   */
  loadRecipient(spec: RecipientSpec, opts?: LoadRecipientOptions): Promise<LoadedRecipient>;
  /**
   * Encrypts `plaintext` to the recipient and returns the armored text that goes in the operator's file, readable by
   * the standard tool (`gpg -d`, `age -d -i`). pgp output is exactly Vault's message form: v3 PKESK + SEIPD v1 (no
   * AEAD), uncompressed.
   * @throws Error only on an internal failure (the recipient was already checked by loadRecipient).
   */
  seal(recipient: LoadedRecipient, plaintext: Uint8Array): Promise<string>;
  /**
   * Turns a share the SERVER sealed (Vault's `keys_base64` entry, or `root_token` under `root_token_pgp_key`: base64
   * of a binary message) into the armored file text an operator opens with the standard tool. Only for types the
   * server can seal to (pgp).
   * @throws Error when `sealedB64` is not base64 of a message of this type.
   */
  armorServerSealed?(sealedB64: string): Promise<string>;
  /**
   * Server sealing only: checks that a message the server sealed (base64 of the binary message) is addressed to
   * `recipient`'s encryption key, and to nothing else: a hostile or broken node could otherwise hand back files nobody
   * can open while the ceremony reports success.
   * @throws Error naming the key IDs found and the ones expected.
   */
  checkServerSealed?(recipient: LoadedRecipient, sealedB64: string): Promise<void>;
}

/** Opens sealed shares of one key type with an operator's identity. */
export interface ShareOpener {
  /**
   * Decrypts a sealed share.
   * @param sealed the file's content (armored or binary), or for pgp also Vault's base64 (`keys_base64`) or hex
   *   (`keys`) form of a server-sealed share.
   * @param identity the identity file's content: a PGP private key (armored or binary, possibly several keys) or an
   *   age identity file (`AGE-SECRET-KEY-1...` lines, or such a file itself encrypted with a passphrase).
   * @param passphrase unlocks a protected identity; ignored when the identity is not protected.
   * @returns the plaintext, or `null` when the sealed share is not addressed to this identity (for age, whose
   *   recipients are anonymous, "no stanza opens with this identity" is reported as null).
   * @throws OpenShareError when it is addressed to this identity but cannot be opened: passphrase-required,
   *   wrong-passphrase, corrupt; or bad-identity when the identity cannot be parsed.
   */
  open(sealed: string | Uint8Array, identity: string | Uint8Array, passphrase?: string): Promise<Uint8Array | null>;
}

/** A key type's heavy implementation, loaded lazily by the registry. */
export interface CipherBackend extends ShareCipher, ShareOpener {
  type: RecipientType;
}

/**
 * A key type's light description, imported eagerly by the registry: no crypto library, only cheap sniffing, so that
 * commands can decide which backend to load without loading all of them.
 */
export interface CipherDescriptor {
  type: RecipientType;
  /** Human name, e.g. "OpenPGP". */
  label: string;
  /** File name extension for an operator's sealed share, with the dot (".asc", ".age"). */
  fileExtension: string;
  /** Spec forms for help text and errors, e.g. "pgp:FILE". */
  specForms: string[];
  /**
   * Decides whether a spec value is a file path or a literal recipient, or explains why it is neither.
   * @returns "file" | "literal", or an error message (lowercase, names the value).
   */
  classifySpecValue(value: string): "file" | "literal" | { error: string };
  /** Whether these bytes look like a share sealed with this type (any accepted form). Cheap, no decryption. */
  looksSealed(sealed: Uint8Array): boolean;
  /** Whether these bytes look like an identity (private key) of this type. Cheap, no parsing of key material. */
  looksLikeIdentity(identity: Uint8Array): boolean;
}
