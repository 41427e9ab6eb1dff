/**
 * manifest.json: the public record of a ceremony's output directory. It holds no secret: names, key fingerprints,
 * file hashes and salted share digests, so an operator can check offline that their file is the one that was written
 * and that it decrypts to the share that was handed out (`sealkeeper shares check`).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { OPERATOR_NAME } from "../ciphers/recipient-spec.js";
import { recipientTypes } from "../ciphers/registry.js";
import type { LoadedRecipient } from "../ciphers/types.js";
import { VERSION } from "../version.js";
import { errnoCode, StoreError } from "./errors.js";
import { computeShareDigest, createDigestSalt, shareIndexOf } from "./share-text.js";

export const MANIFEST_FORMAT = "sealkeeper-ceremony-manifest";
export const MANIFEST_FILE = "manifest.json";

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lower-case hex digits");
const keyType = z.string().refine((t) => recipientTypes.includes(t), {
  message: `expected one of ${recipientTypes.join(", ")}`,
});
/** A plain file name in the ceremony directory: no path separators, not hidden. */
const fileName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, "expected a plain file name");

/** Printed and written to the transcript: no control character (C0, DEL, C1, bidirectional overrides). */
const printable = z
  .string()
  .min(1)
  .regex(/^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$/, "expected printable text");

export const manifestOperatorSchema = z.object({
  /** The same rule as an operator spec's name (src/ciphers/recipient-spec.ts): names become file names. */
  name: z.string().regex(OPERATOR_NAME, 'expected 1-64 letters, digits, ".", "_" or "-"'),
  keyType,
  recipientFingerprint: printable,
  file: fileName,
  /** Hex SHA-256 of the operator's file, byte for byte. */
  fileSha256: hex64,
  /** Who encrypted the share: the server (Vault's pgp_keys; the plaintext never left it) or sealkeeper. */
  sealedBy: z.enum(["server", "client"]),
  /** SHA-256(salt || share bytes); null when the server sealed the share (sealkeeper never saw it). */
  shareDigest: hex64.nullable(),
  /** The share's x coordinate (its last byte); null when unknown (server-sealed) or for a single-share root key. */
  shareIndex: z.number().int().min(1).max(255).nullable(),
});

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(1),
    toolVersion: printable,
    created: z.iso.datetime({ offset: true }),
    /** The address of the node that was initialised. */
    node: printable,
    /** unseal shares (Shamir seal) or recovery shares (auto-unseal). */
    kind: z.enum(["unseal", "recovery"]),
    threshold: z.number().int().min(1).max(255),
    shares: z.number().int().min(1).max(255),
    /** Hex salt of the share digests, random per manifest. */
    shareDigestSalt: hex64,
    rootToken: z
      .object({
        file: fileName,
        fileSha256: hex64,
        recipientType: keyType,
        recipientFingerprint: printable,
        sealedBy: z.enum(["server", "client"]),
      })
      .nullable(),
    operators: z.array(manifestOperatorSchema),
  })
  .superRefine((m, ctx) => {
    const issue = (message: string, path: (string | number)[]) => ctx.addIssue({ code: "custom", message, path });
    if (m.threshold > m.shares) issue(`threshold ${m.threshold} is greater than shares ${m.shares}`, ["threshold"]);
    if (m.shares > 1 && m.threshold < 2) issue("threshold must be at least 2 when shares > 1", ["threshold"]);
    if (m.operators.length !== m.shares) {
      issue(`${m.operators.length} operators listed for ${m.shares} shares`, ["operators"]);
    }
    const seen = { name: new Set<string>(), file: new Set<string>(), index: new Set<number>() };
    m.operators.forEach((op, i) => {
      if (seen.name.has(op.name)) issue(`operator name "${op.name}" appears twice`, ["operators", i, "name"]);
      if (seen.file.has(op.file)) issue(`file "${op.file}" appears twice`, ["operators", i, "file"]);
      if (op.shareIndex !== null && seen.index.has(op.shareIndex)) {
        issue(`share index ${op.shareIndex} appears twice`, ["operators", i, "shareIndex"]);
      }
      seen.name.add(op.name);
      seen.file.add(op.file);
      if (op.shareIndex !== null) seen.index.add(op.shareIndex);
    });
    if (m.rootToken && seen.file.has(m.rootToken.file)) {
      issue(`root token file "${m.rootToken.file}" is also an operator's file`, ["rootToken", "file"]);
    }
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestOperator = z.infer<typeof manifestOperatorSchema>;

/** What the ceremony knows about one operator's share when it writes the manifest. */
export interface ManifestOperatorInput {
  name: string;
  recipient: Pick<LoadedRecipient, "type" | "fingerprint">;
  file: string;
  fileSha256: string;
  sealedBy: "server" | "client";
  /** The raw share bytes when sealkeeper sealed it (client), to record its digest and index; omit when server-sealed. */
  share?: Uint8Array;
}

export interface ManifestInput {
  node: string;
  kind: "unseal" | "recovery";
  threshold: number;
  shares: number;
  operators: ManifestOperatorInput[];
  rootToken: {
    file: string;
    fileSha256: string;
    recipient: Pick<LoadedRecipient, "type" | "fingerprint">;
    sealedBy: "server" | "client";
  } | null;
  /** Default: now. */
  created?: Date;
  /** Default: a fresh random salt. Tests pin it. */
  shareDigestSalt?: string;
}

/**
 * Builds a manifest from what the ceremony has in memory: draws the digest salt, digests the shares it was given, and
 * validates the result.
 * @throws StoreError when the result is not a valid manifest (a bug in the caller: e.g. operators != shares).
 */
export function buildManifest(input: ManifestInput): Manifest {
  const salt = input.shareDigestSalt ?? createDigestSalt();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: 1,
    toolVersion: VERSION,
    created: (input.created ?? new Date()).toISOString(),
    node: input.node,
    kind: input.kind,
    threshold: input.threshold,
    shares: input.shares,
    shareDigestSalt: salt,
    rootToken: input.rootToken && {
      file: input.rootToken.file,
      fileSha256: input.rootToken.fileSha256,
      recipientType: input.rootToken.recipient.type,
      recipientFingerprint: input.rootToken.recipient.fingerprint,
      sealedBy: input.rootToken.sealedBy,
    },
    operators: input.operators.map((op) => ({
      name: op.name,
      keyType: op.recipient.type,
      recipientFingerprint: op.recipient.fingerprint,
      file: op.file,
      fileSha256: op.fileSha256,
      sealedBy: op.sealedBy,
      shareDigest: op.share ? computeShareDigest(salt, op.share) : null,
      shareIndex: op.share ? shareIndexOf(op.share) : null,
    })),
  };
  return validateManifest(manifest, "the new manifest");
}

/**
 * Validates a parsed manifest.
 * @param label names the source in messages (a file path).
 * @throws StoreError listing the first problems with their JSON paths.
 */
export function validateManifest(value: unknown, label = "manifest"): Manifest {
  const result = manifestSchema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
  throw new StoreError(`${label} is not a valid sealkeeper manifest: ${problems}`);
}

/**
 * Reads and validates a manifest file.
 * @throws StoreError when the file cannot be read, is not JSON, or is not a valid manifest.
 */
export async function readManifest(path: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new StoreError(`cannot read manifest ${path}: ${errnoCode(err)}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StoreError(`manifest ${path} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  return validateManifest(value, `manifest ${path}`);
}

/** The operator whose file this is: by file name, else by the file's hash. Null when the manifest does not list it. */
export function findManifestOperator(
  manifest: Manifest,
  fileBaseName: string,
  fileSha256: string,
): ManifestOperator | null {
  return (
    manifest.operators.find((op) => op.file === fileBaseName) ??
    manifest.operators.find((op) => op.fileSha256 === fileSha256) ??
    null
  );
}
