import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { ExitWith } from "../exit.js";
import type { CliIO } from "../io.js";
import { addFormatOption } from "../options.js";
import { resolveFormat, writeJson } from "../output.js";

export function registerTranscript(program: Command, io: CliIO): void {
  const group = program.command("transcript").description("ceremony transcripts (hash-chained JSON lines)");
  const verify = group
    .command("verify <file>")
    .description("check that no line of a transcript was edited, inserted, reordered or removed (exit 0 ok, 1 not)")
    .option("--last-hash <hash>", "the last hash recorded at the ceremony: also detects lines cut off the end");
  addFormatOption(verify);
  verify.action(async (file: string, opts) => {
    const format = resolveFormat(opts.format, io);
    const { verifyTranscriptText } = await import("../../ceremony/transcript.js");
    let text: string;
    try {
      text = readFileSync(resolve(io.cwd, file), "utf8");
    } catch (err) {
      throw new UsageError(`cannot read transcript ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    const result = verifyTranscriptText(text, opts.lastHash);
    if (format === "json") writeJson(io, { file, ...result });
    else if (result.ok) io.stdout.write(`ok: ${result.lines} lines, chain intact, last hash ${result.lastHash}\n`);
    else io.stdout.write(`NOT OK: ${result.error}\n`);
    throw new ExitWith(result.ok ? 0 : 1);
  });
}
