/** The ceremony file (`sealkeeper init --ceremony FILE`): the same settings as the flags, reviewable in git. */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parseOperatorSpec, parseRecipientSpec } from "../ciphers/recipient-spec.js";
import type { OperatorSpec, RecipientSpec } from "../ciphers/types.js";
import { UsageError } from "../errors.js";
import { parseYamlWithSchema } from "../util/yaml-schema.js";

const ceremonySchema = z.strictObject({
  /** Node to initialise (a flag --address wins). */
  address: z.string().optional(),
  kind: z.enum(["auto", "unseal", "recovery"]).optional(),
  shares: z.number().int(),
  threshold: z.number().int(),
  sealShares: z.enum(["auto", "server", "client"]).optional(),
  /** Output directory, relative to this file. */
  out: z.string().min(1).optional(),
  operators: z.array(z.strictObject({ name: z.string().min(1), recipient: z.string().min(1) })).min(1),
  rootToken: z.strictObject({ recipient: z.string().min(1) }).optional(),
  transcript: z.string().min(1).optional(),
});

export interface CeremonyFile {
  path: string;
  /** Directory that relative paths in the file are resolved against. */
  baseDir: string;
  address?: string;
  kind?: "auto" | "unseal" | "recovery";
  shares: number;
  threshold: number;
  sealShares?: "auto" | "server" | "client";
  out?: string;
  operators: OperatorSpec[];
  rootTokenRecipient?: RecipientSpec;
  transcript?: string;
}

/**
 * Reads and validates a ceremony file.
 * @throws UsageError with file:line for YAML, schema and recipient-spec problems; for an unreadable file.
 */
export function readCeremonyFile(path: string): CeremonyFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ceremony file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const { value, lines } = parseYamlWithSchema(text, ceremonySchema, path);
  const baseDir = dirname(resolve(path));
  const operators = value.operators.map((op, i) => {
    try {
      return parseOperatorSpec(`${op.name}=${op.recipient}`);
    } catch (err) {
      return lines.fail(["operators", i], (err as Error).message);
    }
  });
  let rootTokenRecipient: RecipientSpec | undefined;
  if (value.rootToken) {
    try {
      rootTokenRecipient = parseRecipientSpec(value.rootToken.recipient);
    } catch (err) {
      lines.fail(["rootToken", "recipient"], (err as Error).message);
    }
  }
  return {
    path,
    baseDir,
    address: value.address,
    kind: value.kind,
    shares: value.shares,
    threshold: value.threshold,
    sealShares: value.sealShares,
    out: value.out ? resolve(baseDir, value.out) : undefined,
    operators,
    rootTokenRecipient,
    transcript: value.transcript ? resolve(baseDir, value.transcript) : undefined,
  };
}
