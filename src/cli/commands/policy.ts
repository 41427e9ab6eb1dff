import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { LintFinding } from "../../bootstrap/lint.js";
import { UsageError } from "../../errors.js";
import { ExitWith } from "../exit.js";
import type { CliIO } from "../io.js";
import { resolveFormat, writeJson } from "../output.js";

/** `policy lint FILE...`: least-privilege lint of bootstrap specs (.yaml/.yml) and bare policy files (.hcl). */
export function registerPolicy(program: Command, io: CliIO): void {
  const group = program.command("policy").description("ACL policy tools");
  group
    .command("lint")
    .description("lint bootstrap specs (.yaml) and policy files (.hcl) for least privilege; each finding names a fix")
    .argument("<files...>", "spec or policy files")
    .option("--strict", "exit 1 when there is any finding")
    .option(
      "--kv-mount <path>",
      "a KV v2 mount, for bare .hcl files (repeatable; default: secret)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--format <format>", "output format: table or json (VAULT_FORMAT)")
    .action(async (files: string[], opts: { strict?: boolean; kvMount?: string[]; format?: string }) => {
      const format = resolveFormat(opts.format, io);
      const { lintPolicyFile, lintSpec, formatFinding } = await import("../../bootstrap/lint.js");
      const { loadSpec } = await import("../../bootstrap/spec.js");
      const findings: LintFinding[] = [];
      for (const file of files) {
        const path = resolve(io.cwd, file);
        if (/\.ya?ml$/i.test(file)) {
          findings.push(...lintSpec(loadSpec(path, { env: io.env })));
        } else {
          let text: string;
          try {
            text = readFileSync(path, "utf8");
          } catch (err) {
            throw new UsageError(`cannot read policy file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
          }
          findings.push(...lintPolicyFile(path, text, opts.kvMount ?? ["secret"]));
        }
      }
      if (format === "json") writeJson(io, { findings });
      else {
        for (const f of findings) io.stdout.write(`${formatFinding(f)}\n`);
        io.stdout.write(
          findings.length === 0
            ? `${files.length} file(s): no findings\n`
            : `${findings.length} finding(s) in ${files.length} file(s)\n`,
        );
      }
      if (opts.strict && findings.length > 0) throw new ExitWith(1);
    });
}
