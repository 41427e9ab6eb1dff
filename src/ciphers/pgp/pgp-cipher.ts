/**
 * OpenPGP backend (openpgp.js 6). Loaded lazily by the registry: importing this module loads openpgp.
 *
 * Messages are made to be indistinguishable in form from the ones Vault's own `pgp_keys` produce (Vault 1.21,
 * helper/pgpkeys EncryptShares -> ProtonMail go-crypto openpgp.Encrypt with a nil config): one v3 PKESK, one SEIPD v1
 * (MDC, no AEAD), no compression, a literal data packet of format 'u' with an empty file name and date 0 (go-crypto v1.3.0
 * packet.SerializeLiteral writes 'u' when FileHints.IsBinary is false, which nil hints are). Keys must be
 * v4 (GnuPG 2.2 and older Vault builds read neither v6 keys nor SEIPD v2).
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import * as openpgp from "openpgp";
import { OpenShareError, RecipientError } from "../errors.js";
import { asText, decodeBase64OrHex, firstPacketTag, leadingText, toBytes } from "../sniff.js";
import type { CipherBackend, LoadedRecipient, LoadRecipientOptions, RecipientSpec } from "../types.js";

const ARMORED_KEY = /^-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----/;

/**
 * Encryption settings pinned rather than inherited from openpgp's defaults, so that a future openpgp default (or a
 * recipient key advertising SEIPDv2) cannot change the message form: see `sealToKey`, which also passes an explicit
 * session key without an AEAD algorithm, the only way to stop openpgp 6 from choosing SEIPDv2 for keys that advertise it.
 */
const ENCRYPT_CONFIG: openpgp.PartialConfig = {
  aeadProtect: false,
  preferredCompressionAlgorithm: openpgp.enums.compression.uncompressed,
  v6Keys: false,
};

interface PgpHandle {
  key: openpgp.PublicKey;
  /** When loadRecipient found the key able to encrypt: sealing judges the key as of then (see sealToKey). */
  checkedAt: Date;
}

function userIdOf(key: openpgp.Key): string {
  return key.getUserIDs()[0] ?? "no user id";
}

function describeKey(key: openpgp.Key): string {
  const info = key.getAlgorithmInfo();
  // "rsaEncryptSign" + 3072 -> "rsa3072"; "eddsaLegacy" on "ed25519Legacy" -> "ed25519"
  const algo = info.algorithm.startsWith("rsa")
    ? `rsa${info.bits ?? ""}`
    : (info.curve?.replace(/Legacy$/, "") ?? info.algorithm);
  return `pgp ${key.getFingerprint().toUpperCase()} ${algo} "${userIdOf(key)}"`;
}

function isoDay(d: Date): string {
  return d.toISOString().slice(0, 10);
}

/**
 * Parses the key file content: armored, binary, or base64 of binary (what Vault's API and `vault operator init` take).
 * Also returns the key's exact binary bytes, passed to the server untouched (as `gpg --export | base64` would be)
 * rather than re-serialised by openpgp, which writes other packet headers.
 */
async function readKeyFile(bytes: Uint8Array): Promise<{ keys: openpgp.Key[]; binary: Uint8Array }> {
  let binary: Uint8Array | null = null;
  if (ARMORED_KEY.test(leadingText(bytes))) {
    binary = (await openpgp.unarmor(asText(bytes))).data as Uint8Array;
  } else if (firstPacketTag(bytes) !== null) {
    binary = bytes;
  } else {
    const decoded = decodeBase64OrHex(asText(bytes));
    if (decoded !== null && firstPacketTag(decoded) !== null) binary = decoded;
  }
  if (binary === null) throw new Error("not an OpenPGP key (expected an armored, binary or base64 public key)");
  return { keys: await openpgp.readKeys({ binaryKeys: binary }), binary };
}

const ENCRYPT_FLAGS = openpgp.enums.keyFlags.encryptCommunication | openpgp.enums.keyFlags.encryptStorage;

function hasEncryptFlag(sigs: { keyFlags: Uint8Array | null }[]): boolean {
  return sigs.some((s) => s.keyFlags !== null && ((s.keyFlags[0] ?? 0) & ENCRYPT_FLAGS) !== 0);
}

/**
 * Why the key cannot encrypt at `now`, in words an operator understands, or null when it can.
 * openpgp's own errors ("Could not find valid encryption key packet") do not say which of the usual causes it is.
 */
async function explainCannotEncrypt(key: openpgp.PublicKey, now: Date): Promise<string | null> {
  if (key.keyPacket.version !== 4) {
    return `is a v${key.keyPacket.version} key; Vault and GnuPG 2.2 read only v4 keys (make one with gpg --quick-gen-key)`;
  }
  if (await key.isRevoked(undefined, undefined, now)) return "is revoked";
  const expires = await key.getExpirationTime();
  if (expires instanceof Date && expires.getTime() <= now.getTime()) return `expired on ${isoDay(expires)}`;
  try {
    await key.getEncryptionKey(undefined, now);
    return null;
  } catch (err) {
    const primaryCanEncrypt = hasEncryptFlag(key.users.flatMap((u) => u.selfCertifications));
    const encryptSubkeys = key.subkeys.filter((s) => hasEncryptFlag(s.bindingSignatures));
    if (!primaryCanEncrypt && encryptSubkeys.length === 0) return "has no encryption subkey (a sign-only key)";
    for (const subkey of encryptSubkeys) {
      const subExpires = await subkey.getExpirationTime(now).catch(() => null);
      if (subExpires instanceof Date && subExpires.getTime() <= now.getTime()) {
        return `has an encryption subkey that expired on ${isoDay(subExpires)} and no valid one`;
      }
    }
    if (encryptSubkeys.length > 0) return "has no valid encryption subkey (revoked or invalid)";
    return `cannot encrypt: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * The primary key and every subkey that may encrypt, by material: the algorithm and the public parameters that make
 * the key (the KDF parameters of an ECDH key are settings, not key material, and are left out). A fingerprint would
 * not do: it covers the creation time, so the same subkey imported under another primary (gpg's "Existing key") has
 * a new fingerprint but opens the same messages.
 */
function keyMaterial(key: openpgp.PublicKey): { material: string; name: string }[] {
  const material = (p: { algorithm: openpgp.enums.publicKey; publicParams: object }) => {
    const params = p.publicParams as Record<string, unknown>;
    const parts = Object.keys(params)
      .filter((k) => k !== "kdfParams")
      .sort()
      .map((k) => {
        const v = params[k] as Uint8Array | { write(): Uint8Array };
        return `${k}=${Buffer.from(v instanceof Uint8Array ? v : v.write()).toString("hex")}`;
      });
    return `pgp:${p.algorithm}:${parts.join(",")}`;
  };
  const subkeys = key.subkeys.filter((s) => hasEncryptFlag(s.bindingSignatures));
  return [
    { material: material(key.keyPacket), name: `pgp key ${key.getFingerprint().toUpperCase()}` },
    ...subkeys.map((s) => ({
      material: material(s.keyPacket),
      name: `pgp subkey ${s.getFingerprint().toUpperCase()} of ${key.getFingerprint().toUpperCase()}`,
    })),
  ];
}

/** AES-256 when the recipient lists it (go-crypto's first candidate), else AES-128, which every implementation has. */
async function chooseCipher(key: openpgp.PublicKey, now: Date): Promise<"aes256" | "aes128"> {
  const primary = await key.getPrimaryUser(now).catch(() => null);
  const prefs = primary?.selfCertification.preferredSymmetricAlgorithms ?? [];
  return prefs.includes(openpgp.enums.symmetric.aes256) ? "aes256" : "aes128";
}

/**
 * Seals as of `checkedAt`, the pre-flight's time: a key that expires between the pre-flight and the sealing (a
 * ceremony can wait minutes on the server) still gets its share, rather than the share going to the EMERGENCY path
 * after the server handed it out. The key object is the one checked, so nothing else about it can change meanwhile;
 * the message's form carries no date (the literal packet's is 0).
 */
async function sealToKey(key: openpgp.PublicKey, plaintext: Uint8Array, checkedAt: Date): Promise<string> {
  const algorithm = await chooseCipher(key, checkedAt);
  const sessionKey = {
    data: crypto.getRandomValues(new Uint8Array(algorithm === "aes256" ? 32 : 16)),
    algorithm,
    // no aeadAlgorithm: v3 PKESK + SEIPD v1, whatever the key advertises
  };
  // format 'u', empty file name, date 0: go-crypto's literal packet with nil FileHints. setBytes stores the bytes
  // as given (no line-ending conversion), so the hex share is byte-identical
  const message = await openpgp.createMessage({ binary: plaintext, format: "utf8", date: new Date(0) });
  const binary = await openpgp.encrypt({
    message,
    encryptionKeys: key,
    sessionKey,
    date: checkedAt,
    format: "binary",
    config: ENCRYPT_CONFIG,
  });
  return armorMessage(binary);
}

/**
 * Armors with the CRC-24 checksum line. openpgp.js 6 leaves it out by default (RFC 9580 made it optional), but
 * GnuPG 2.2 then misreads the armor when the body's base64 has no padding (a message of 3n bytes): it skips the
 * END line as "invalid radix64 character 2D" and fails with "invalid packet". Seen with Vault's own 213-byte
 * messages; the checksum line ends the body unambiguously for every reader.
 */
function armorMessage(binary: Uint8Array): string {
  return openpgp.armor(openpgp.enums.armor.message, binary, undefined, undefined, undefined, true);
}

async function readMessageAnyForm(sealed: Uint8Array): Promise<openpgp.Message<Uint8Array>> {
  if (leadingText(sealed).startsWith("-----BEGIN PGP MESSAGE-----")) {
    return (await openpgp.readMessage({ armoredMessage: asText(sealed) })) as openpgp.Message<Uint8Array>;
  }
  if (firstPacketTag(sealed) !== null) return openpgp.readMessage({ binaryMessage: sealed });
  const decoded = decodeBase64OrHex(asText(sealed));
  if (decoded === null) throw new Error("neither armored, binary, base64 nor hex");
  return openpgp.readMessage({ binaryMessage: decoded });
}

async function readIdentity(identity: Uint8Array): Promise<openpgp.PrivateKey[]> {
  try {
    if (ARMORED_KEY.test(leadingText(identity)))
      return await openpgp.readPrivateKeys({ armoredKeys: asText(identity) });
    return await openpgp.readPrivateKeys({ binaryKeys: identity });
  } catch (err) {
    throw new OpenShareError("bad-identity", "the pgp identity is not a readable private key", {
      cause: err,
      hint: "export it with: gpg --export-secret-keys --armor KEYID > key.asc",
    });
  }
}

async function unlock(key: openpgp.PrivateKey, passphrase: string | undefined): Promise<openpgp.PrivateKey> {
  if (key.isDecrypted()) return key;
  const fpr = key.getFingerprint().toUpperCase();
  if (passphrase === undefined) {
    throw new OpenShareError("passphrase-required", `pgp key ${fpr} is protected by a passphrase`, {
      hint: "give the passphrase (e.g. --passphrase-file FILE)",
    });
  }
  try {
    return await openpgp.decryptKey({ privateKey: key, passphrase });
  } catch (err) {
    const msg = err instanceof Error ? err.message : "";
    if (/incorrect key passphrase/i.test(msg)) {
      throw new OpenShareError("wrong-passphrase", `wrong passphrase for pgp key ${fpr}`);
    }
    throw new OpenShareError("bad-identity", `cannot unlock pgp key ${fpr}: ${msg}`, { cause: err });
  }
}

export const pgpBackend: CipherBackend = {
  type: "pgp",

  async loadRecipient(spec: RecipientSpec, opts: LoadRecipientOptions = {}): Promise<LoadedRecipient> {
    const now = opts.now ?? new Date();
    const path = resolve(opts.cwd ?? process.cwd(), spec.value);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new RecipientError(`cannot read pgp key file ${spec.value}: ${code}`, { cause: err });
    }
    let keys: openpgp.Key[];
    let binary: Uint8Array;
    try {
      ({ keys, binary } = await readKeyFile(bytes));
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new RecipientError(`pgp key file ${spec.value} is not a usable OpenPGP key: ${why}`, { cause: err });
    }
    if (keys.length !== 1) {
      throw new RecipientError(`pgp key file ${spec.value} holds ${keys.length} keys: give exactly one per recipient`);
    }
    const key = keys[0]!;
    if (key.isPrivate()) {
      // refuse rather than convert: a private key in a ceremony's recipient list is a leak waiting to happen
      throw new RecipientError(`pgp key file ${spec.value} holds a PRIVATE key: give the public key (gpg --export)`);
    }
    const publicKey = key as openpgp.PublicKey;
    const why = await explainCannotEncrypt(publicKey, now);
    if (why !== null) {
      throw new RecipientError(
        `pgp key ${publicKey.getFingerprint().toUpperCase()} "${userIdOf(publicKey)}" (${spec.value}) ${why}`,
      );
    }
    const handle: PgpHandle = { key: publicKey, checkedAt: now };
    return {
      type: "pgp",
      fingerprint: publicKey.getFingerprint().toUpperCase(),
      describe: describeKey(publicKey),
      serverPgpKeyB64: Buffer.from(binary).toString("base64"),
      keys: keyMaterial(publicKey),
      spec,
      handle,
    };
  },

  async seal(recipient: LoadedRecipient, plaintext: Uint8Array): Promise<string> {
    const handle = recipient.handle as PgpHandle | undefined;
    if (recipient.type !== "pgp" || !handle?.key) throw new Error("not a loaded pgp recipient");
    try {
      return await sealToKey(handle.key, plaintext, handle.checkedAt);
    } catch (err) {
      throw new Error(`failed to seal to pgp key ${recipient.fingerprint}`, { cause: err });
    }
  },

  async armorServerSealed(sealedB64: string): Promise<string> {
    const binary = decodeBase64OrHex(sealedB64);
    if (binary === null || firstPacketTag(binary) !== 1) {
      throw new Error("the server's sealed share is not base64 of an OpenPGP message");
    }
    await openpgp.readMessage({ binaryMessage: binary }); // proves it parses
    // armor the server's exact bytes rather than a re-serialisation of them
    return armorMessage(binary);
  },

  async checkServerSealed(recipient: LoadedRecipient, sealedB64: string): Promise<void> {
    const handle = recipient.handle as PgpHandle | undefined;
    if (recipient.type !== "pgp" || !handle?.key) throw new Error("not a loaded pgp recipient");
    const binary = decodeBase64OrHex(sealedB64);
    if (binary === null || firstPacketTag(binary) !== 1) {
      throw new Error("the server's sealed share is not base64 of an OpenPGP message");
    }
    const found = (await openpgp.readMessage({ binaryMessage: binary })).getEncryptionKeyIDs();
    // the key IDs of this key that can encrypt (the subkey Vault picks is one of them; a sign-only one is not)
    const expected: openpgp.KeyID[] = [];
    for (const id of handle.key.getKeyIDs()) {
      const usable = await handle.key.getEncryptionKey(id, handle.checkedAt).catch(() => undefined);
      if (usable) expected.push(usable.getKeyID());
    }
    const ours = (id: openpgp.KeyID) => expected.some((e) => e.equals(id));
    if (found.length === 0 || !found.every(ours)) {
      const hex = (ids: openpgp.KeyID[]) => ids.map((i) => i.toHex().toUpperCase()).join(", ") || "none";
      throw new Error(
        `the server sealed it to key ID ${hex(found)}, not to the encryption key of ${recipient.fingerprint} ` +
          `(${hex(expected)}): its holder could not open it`,
      );
    }
  },

  async open(sealedIn, identityIn, passphrase) {
    const sealed = toBytes(sealedIn);
    const keys = await readIdentity(toBytes(identityIn));
    let message: openpgp.Message<Uint8Array>;
    try {
      message = await readMessageAnyForm(sealed);
    } catch (err) {
      throw new OpenShareError("corrupt", "the sealed share is not a readable OpenPGP message", { cause: err });
    }
    const wanted = message.getEncryptionKeyIDs();
    const addressed = keys.filter((k) => k.getKeyIDs().some((id) => wanted.some((w) => w.equals(id, true))));
    if (addressed.length === 0) return null;
    const unlocked: openpgp.PrivateKey[] = [];
    try {
      for (const key of addressed) unlocked.push(await unlock(key, passphrase));
      const { data } = await openpgp.decrypt({ message, decryptionKeys: unlocked, format: "binary" });
      return data as Uint8Array;
    } catch (err) {
      if (err instanceof OpenShareError) throw err;
      const fpr = addressed[0]!.getFingerprint().toUpperCase();
      const why = err instanceof Error ? err.message : String(err);
      throw new OpenShareError("corrupt", `the sealed share for pgp key ${fpr} cannot be decrypted: ${why}`, {
        cause: err,
      });
    } finally {
      // the decrypted secret key material openpgp.js holds for this call: zeroed by its own clearPrivateParams
      // (in openpgp.js 6.3 at run time, not in its typings), which fills each private parameter with zeros
      for (const k of [...unlocked, ...keys]) (k as unknown as { clearPrivateParams(): void }).clearPrivateParams();
    }
  },
};
