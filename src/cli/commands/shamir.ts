import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { ExitCode, UsageError } from "../../errors.js";
import { ShamirError } from "../../shamir/errors.js";
import type { VerifyReport } from "../../shamir/verify.js";
import { ExitWith } from "../exit.js";
import { type CliIO, readAllStdin } from "../io.js";
import { addFormatOption, warnSecretInArgv } from "../options.js";
import { paint, renderTable, resolveFormat, useColor, writeJson } from "../output.js";

type SecretEncoding = "raw" | "hex" | "base64";
type ShareInputEncoding = "auto" | "hex" | "base64" | "raw";

/** One share as read, with where it came from, so errors can point at a file and line (never at the value). */
interface ShareInput {
  text: string;
  raw?: Uint8Array;
  source: string;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

type ShamirLib = typeof import("../../shamir/index.js");
let shamirLib: ShamirLib | undefined;
/** The Shamir library, loaded by the actions only: `--help` and other commands do not parse it. */
async function lib(): Promise<ShamirLib> {
  shamirLib ??= await import("../../shamir/index.js");
  return shamirLib;
}

export function registerShamir(program: Command, io: CliIO): void {
  const shamir = program
    .command("shamir")
    .description("split, combine and verify secrets as Shamir shares in Vault's and OpenBao's unseal-key format");

  const split = shamir
    .command("split")
    .description("split the secret read from stdin (raw bytes) into shares, printed one per line")
    .requiredOption("-n, --shares <n>", "number of shares to make (2-255)")
    .requiredOption("-t, --threshold <n>", "shares needed to reconstruct (2-shares)")
    .option("--secret-encoding <enc>", "how the secret on stdin is written: raw, hex or base64", "raw")
    .option("--secret-file <file>", "read the secret from this file instead of stdin")
    .option("--share-encoding <enc>", "how to write the shares: base64 or hex", "base64");
  addFormatOption(split);
  split.action(async (opts) => {
    const { splitSecret, encodeShare, createSecretDigest } = await lib();
    const shares = parseCount(opts.shares, "shares");
    const threshold = parseCount(opts.threshold, "threshold");
    const secretEncoding = parseChoice<SecretEncoding>(opts.secretEncoding, "secret encoding", [
      "raw",
      "hex",
      "base64",
    ]);
    const shareEncoding = parseChoice<"hex" | "base64">(opts.shareEncoding, "share encoding", ["hex", "base64"]);
    const format = resolveFormat(opts.format, io);
    const secret = await readSecret(io, opts.secretFile, secretEncoding);
    try {
      const parts = splitSecret(secret, shares, threshold);
      const encoded = parts.map((p) => encodeShare(p, shareEncoding));
      for (const p of parts) p.fill(0);
      if (format === "json") {
        writeJson(io, { threshold, shares: encoded, digest: await createSecretDigest(secret) });
      } else {
        io.stdout.write(encoded.map((s) => `${s}\n`).join(""));
      }
    } finally {
      secret.fill(0);
    }
  });

  const combine = shamir
    .command("combine")
    .description("combine shares (one per line on stdin and/or in files) and write the secret to stdout")
    .option("--share-file <file>", "read shares from this file, one per line (repeatable)", collect)
    .option(
      "--share <share>",
      "a share on the command line (repeatable; visible to other users: prefer files)",
      collect,
    )
    .option("--share-encoding <enc>", "auto (hex, else base64, as the server does), hex, base64 or raw", "auto")
    .option("--share-format <fmt>", "vault (default), or secretsjs to read legacy secrets.js shares", "vault")
    .option("--secret-encoding <enc>", "how to write the secret: raw (default), hex or base64")
    .option(
      "--digest <digest>",
      "refuse to output a secret that does not match this digest (from split --format json)",
    );
  combine.action(async (opts) => {
    const { combineShares, checkSecretDigest, encodeShare } = await lib();
    const secretEncoding = parseChoice<SecretEncoding>(opts.secretEncoding ?? "raw", "secret encoding", [
      "raw",
      "hex",
      "base64",
    ]);
    const shareFormat = parseChoice<"vault" | "secretsjs">(opts.shareFormat, "share format", ["vault", "secretsjs"]);
    // Before reading anything: a secret must not land on a screen (or in a terminal's scrollback) by accident.
    if (io.stdoutIsTTY && opts.secretEncoding === undefined) {
      throw new UsageError("refusing to write the secret to a terminal", {
        hint: "redirect stdout to a file or a pipe, or give --secret-encoding raw|hex|base64 to print it anyway",
      });
    }
    const inputs = await readShareInputs(io, opts);
    let secret: Uint8Array;
    if (shareFormat === "secretsjs") {
      const { combineSecretsJsShares } = await import("../../shamir/secretsjs.js");
      secret = await withSources(inputs, () => combineSecretsJsShares(inputs.map((s) => s.text)));
    } else {
      const shares = await decodeInputs(inputs, opts.shareEncoding);
      secret = await withSources(inputs, async () => combineShares(shares));
    }
    try {
      if (opts.digest !== undefined && !(await checkSecretDigest(secret, opts.digest))) {
        throw new ShamirError("the combined secret does not match the digest", {
          hint: "a share is wrong, or from another split: run `sealkeeper shamir verify` with more than threshold shares",
        });
      }
      io.stdout.write(secretEncoding === "raw" ? Buffer.from(secret) : `${encodeShare(secret, secretEncoding)}\n`);
    } finally {
      secret.fill(0);
    }
  });

  const verify = shamir
    .command("verify")
    .description("check that every threshold-sized subset of the shares gives the same secret; name bad shares")
    .requiredOption("-t, --threshold <n>", "shares needed to reconstruct")
    .option("--digest <digest>", "also check the secret against this digest (from split --format json)")
    .option("--share-file <file>", "read shares from this file, one per line (repeatable)", collect)
    .option(
      "--share <share>",
      "a share on the command line (repeatable; visible to other users: prefer files)",
      collect,
    )
    .option("--share-encoding <enc>", "auto (hex, else base64, as the server does), hex, base64 or raw", "auto");
  addFormatOption(verify);
  verify.action(async (opts) => {
    const { verifyShares } = await lib();
    const threshold = parseCount(opts.threshold, "threshold");
    const format = resolveFormat(opts.format, io);
    const inputs = await readShareInputs(io, opts);
    const shares = await decodeInputs(inputs, opts.shareEncoding);
    const report = await withSources(inputs, () => verifyShares(shares, threshold, { digest: opts.digest }));
    const good = report.consistent && report.digest !== "mismatch";
    const culprits = report.culprits.map((i) => ({ share: i, source: inputs[i - 1]!.source }));
    if (format === "json") {
      writeJson(io, { ...report, ok: good, culprits });
    } else {
      io.stdout.write(renderVerify(report, culprits, io));
      for (const note of report.notes) io.stderr.write(`note: ${note}\n`);
    }
    if (!good) throw new ExitWith(ExitCode.remote);
  });
}

function renderVerify(report: VerifyReport, culprits: { share: number; source: string }[], io: CliIO): string {
  const p = paint(useColor(io));
  const result = report.consistent ? p.green("consistent") : p.red("inconsistent");
  const rows = [
    ["shares", String(report.shareCount)],
    ["threshold", String(report.threshold)],
    ["subsets", `${report.subsets} (all covered, exactly)`],
    ["result", result],
  ];
  if (!report.consistent) {
    rows.push([
      "culprits",
      culprits.length > 0 ? culprits.map((c) => `share ${c.share} (${c.source})`).join(", ") : "cannot be named",
    ]);
  }
  const digest = { match: p.green("match"), mismatch: p.red("mismatch"), "not-checked": "not checked" }[report.digest];
  rows.push(["digest", digest]);
  return renderTable(["CHECK", "RESULT"], rows);
}

/** Adds the share's source (file and line) to an error that names a share by index. */
async function withSources<T>(inputs: ShareInput[], fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ShamirError && err.shareIndex !== undefined) {
      const source = inputs[err.shareIndex - 1]?.source;
      if (source && !err.message.includes(source)) {
        throw new ShamirError(`${err.message} (share ${err.shareIndex} is ${source})`, {
          shareIndex: err.shareIndex,
          hint: err.hint,
        });
      }
    }
    throw err;
  }
}

async function decodeInputs(inputs: ShareInput[], encodingFlag: string): Promise<Uint8Array[]> {
  const { decodeShares } = await lib();
  const encoding = parseChoice<ShareInputEncoding>(encodingFlag, "share encoding", ["auto", "hex", "base64", "raw"]);
  if (encoding === "raw") return inputs.map((s) => s.raw ?? Buffer.from(s.text, "utf8"));
  return decodeShares(
    inputs.map((s) => s.text),
    { encoding, labels: inputs.map((s, i) => `share ${i + 1} (${s.source})`) },
  );
}

/**
 * Shares from stdin (unless it is a terminal), then each --share-file, then each --share (with a warning). One share
 * per line, blank lines skipped; with --share-encoding raw, each input is one binary share instead.
 */
async function readShareInputs(
  io: CliIO,
  opts: { shareFile?: string[]; share?: string[]; shareEncoding?: string },
): Promise<ShareInput[]> {
  const raw = opts.shareEncoding === "raw";
  const inputs: ShareInput[] = [];
  const addLines = (data: Buffer, name: string) => {
    if (raw) {
      if (data.length > 0) inputs.push({ text: "", raw: new Uint8Array(data), source: name });
      return;
    }
    data
      .toString("utf8")
      .split(/\r?\n/)
      .forEach((line, i) => {
        const text = line.trim();
        if (text !== "") inputs.push({ text, source: `line ${i + 1} of ${name}` });
      });
  };
  addLines(await readAllStdin(io), "stdin");
  for (const file of opts.shareFile ?? []) {
    let data: Buffer;
    try {
      data = readFileSync(resolve(io.cwd, file));
    } catch (err) {
      throw new UsageError(`cannot read share file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
        cause: err,
      });
    }
    addLines(data, file);
  }
  if (opts.share && opts.share.length > 0) {
    warnSecretInArgv(io, "a share");
    opts.share.forEach((s, i) => {
      inputs.push({ text: s.trim(), raw: raw ? Buffer.from(s, "utf8") : undefined, source: `--share #${i + 1}` });
    });
  }
  if (inputs.length === 0) {
    throw new UsageError("no shares given", {
      hint: "pipe them in one per line, or use --share-file FILE (repeatable)",
    });
  }
  return inputs;
}

async function readSecret(io: CliIO, file: string | undefined, encoding: SecretEncoding): Promise<Uint8Array> {
  let data: Buffer;
  if (file !== undefined) {
    try {
      data = readFileSync(resolve(io.cwd, file));
    } catch (err) {
      throw new UsageError(`cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`, {
        cause: err,
      });
    }
  } else {
    if (io.stdinIsTTY) {
      throw new UsageError("no secret on stdin", { hint: "pipe the secret in, or use --secret-file FILE" });
    }
    data = await readAllStdin(io);
  }
  if (encoding === "raw") {
    if (data.length > 0 && data[data.length - 1] === 0x0a) {
      io.stderr.write(
        "warning: the secret ends with a newline, which is part of it in raw mode (use printf, or --secret-encoding)\n",
      );
    }
    return new Uint8Array(data);
  }
  const text = data.toString("utf8").trim();
  data.fill(0);
  const { decodeHex, decodeBase64 } = await lib();
  const bytes = encoding === "hex" ? decodeHex(text) : decodeBase64(text);
  if (bytes === null) throw new UsageError(`the secret is not valid ${encoding}`);
  if (bytes.length === 0) throw new UsageError("secret must not be empty");
  return bytes;
}

function parseCount(value: string, name: string): number {
  if (!/^\d{1,3}$/.test(String(value)))
    throw new UsageError(`${name} must be an integer from 2 to 255, got "${value}"`);
  return Number(value);
}

function parseChoice<T extends string>(value: string, name: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${name} must be ${choices.join(", ")}; got "${value}"`);
}
