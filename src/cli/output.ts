import { UsageError } from "../errors.js";
import { escapeControl } from "../util/redact.js";
import type { CliIO } from "./io.js";

export type OutputFormat = "table" | "json";

/** --format wins, then VAULT_FORMAT/BAO_FORMAT, then table. */
export function resolveFormat(flag: string | undefined, io: CliIO): OutputFormat {
  const raw = flag ?? io.env.BAO_FORMAT ?? io.env.VAULT_FORMAT ?? "table";
  if (raw === "table" || raw === "json") return raw;
  throw new UsageError(`format must be table or json, got "${raw}"`);
}

/** Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(io: CliIO, stream: "stdout" | "stderr" = "stdout"): boolean {
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== "") return false;
  if (io.env.TERM === "dumb") return false;
  return stream === "stdout" ? io.stdoutIsTTY : io.stderrIsTTY;
}

export interface Paint {
  green(s: string): string;
  red(s: string): string;
  yellow(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

export function paint(enabled: boolean): Paint {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { green: wrap(32, 39), red: wrap(31, 39), yellow: wrap(33, 39), bold: wrap(1, 22), dim: wrap(2, 22) };
}

const ANSI = /\x1b\[[0-9;]*m/g;
/** Exactly the sequences `paint` writes; no other escape sequence is ever ours. */
const OWN_PAINT = /(\x1b\[(?:1|2|22|3[1239])m)/;

/**
 * `text` for a terminal: every control character escaped (`\x1b`, `\u202e`; newline and tab stay), except the
 * colour codes `paint` adds. For lines that mix our colours with values from a server, a manifest or a file; such
 * values are escaped where they are read as well (escapeControl), so that a server cannot even recolour.
 */
export function terminalSafe(text: string): string {
  return text
    .split(OWN_PAINT)
    .map((part, i) => (i % 2 === 1 ? part : escapeControl(part)))
    .join("");
}

/**
 * Renders rows as an aligned table. Cells may carry colour codes (widths ignore them); every other control character
 * in a cell is shown escaped, whatever the cell's source (terminalSafe).
 */
export function renderTable(headers: string[], unsafeRows: string[][]): string {
  const rows = unsafeRows.map((r) => r.map(terminalSafe));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").replace(ANSI, "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + " ".repeat(widths[i]! - c.replace(ANSI, "").length)))
      .join("  ")
      .trimEnd();
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") + "\n";
}

/**
 * JSON on stdout. JSON.stringify escapes C0 controls but leaves DEL, C1 (U+009B is a CSI to some terminals) and the
 * bidirectional overrides raw: they are written as \uXXXX escapes, the same JSON value.
 */
export function writeJson(io: CliIO, value: unknown): void {
  const text = JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  io.stdout.write(`${text}\n`);
}
