/**
 * YAML files validated by a zod schema, with errors that say file:line, the key, and what is wrong.
 * Shared by every spec the tool reads (ceremony files, bootstrap specs).
 */
import { isMap, isNode, isPair, isScalar, LineCounter, parseDocument, visit } from "yaml";
import type { z } from "zod";
import { UsageError } from "../errors.js";
import { redactSecrets } from "./redact.js";

export type KeyPath = (string | number)[];

/**
 * A problem in a YAML file: `file:line: key: detail`. Exit 1.
 * The key path and the detail come from the file (a mapping key, a value quoted by a check, a tag, an anchor or a
 * token quoted by the YAML parser): a secret that a YAML slip put there (a share or token pasted as a key, say) is cut
 * here, for every spec that reports through this class, by src/util/redact.ts. `key` keeps the cut form too.
 */
export class YamlSpecError extends UsageError {
  readonly key: string;
  constructor(
    readonly file: string,
    readonly line: number,
    key: string,
    detail: string,
  ) {
    const shown = redactSecrets(key);
    super(`${file}:${line}: ${shown ? `${shown}: ` : ""}${redactSecrets(detail)}`);
    this.key = shown;
  }
}

/** Maps key paths of a parsed document to 1-based lines. */
export class YamlLines {
  constructor(
    private readonly doc: ReturnType<typeof parseDocument>,
    private readonly lc: LineCounter,
    readonly file: string,
  ) {}

  /** Line of the value at `path` (the nearest existing ancestor's line when absent). */
  line(path: KeyPath): number {
    for (let n = path.length; n >= 0; n--) {
      const node = this.doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return this.lc.linePos(node.range[0]).line;
    }
    return 1;
  }

  /** Line of the key itself. */
  keyLine(path: KeyPath): number {
    const parent = this.doc.getIn(path.slice(0, -1), true);
    const key = path[path.length - 1];
    if (isMap(parent)) {
      for (const item of parent.items) {
        if (isPair(item) && isScalar(item.key) && item.key.value === key && item.key.range) {
          return this.lc.linePos(item.key.range[0]).line;
        }
      }
    }
    return this.line(path);
  }

  /** File line of the first content line of a string value (block scalars start on the line after `|`). */
  textStartLine(path: KeyPath): number {
    const node = this.doc.getIn(path, true);
    if (isScalar(node) && node.range) {
      const line = this.lc.linePos(node.range[0]).line;
      return node.type === "BLOCK_LITERAL" || node.type === "BLOCK_FOLDED" ? line + 1 : line;
    }
    return this.line(path);
  }

  /** Throws a YamlSpecError at the key. */
  fail(path: KeyPath, detail: string): never {
    throw new YamlSpecError(this.file, this.keyLine(path), formatKeyPath(path), detail);
  }

  /**
   * Validates the value found at `at` against `schema` (a part whose schema depends on another key, e.g. an auth
   * method's config by its type), with the same file:line errors as the whole document.
   * @throws YamlSpecError
   */
  validate<S extends z.ZodType>(schema: S, value: unknown, at: KeyPath = []): z.output<S> {
    const raw = schema.safeParse(value);
    if (raw.success) return raw.data as z.output<S>;
    // a misspelt key also makes the right one "missing": name the misspelling, the more useful of the two
    const issue = raw.error.issues.find((i) => i.code === "unrecognized_keys") ?? raw.error.issues[0]!;
    const path = [...at, ...issue.path.map((k) => (typeof k === "symbol" ? String(k) : k))] as KeyPath;
    if (issue.code === "unrecognized_keys") this.fail([...path, issue.keys[0]!], "unknown key");
    if (issue.code === "invalid_type" && this.doc.getIn(path) === undefined) {
      throw new YamlSpecError(this.file, this.line(path), formatKeyPath(path), "required key is missing");
    }
    return this.fail(path, describeIssue(issue));
  }
}

/** operators[0].name, the way people read a key path. */
export function formatKeyPath(path: KeyPath): string {
  return path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");
}

/**
 * The document as plain JS values. yaml's toJS throws a bare ReferenceError for an alias without an anchor and for
 * an alias bomb (more than 100 alias expansions: "billion laughs"); this turns both into a problem with a line, the
 * first alias's, for the caller's own error type.
 * @returns the value, or `{ error, line }`.
 */
export function documentToJs(
  doc: ReturnType<typeof parseDocument>,
  lc: LineCounter,
): { value: unknown } | { error: string; line: number } {
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) ?? {} };
  } catch (err) {
    let line = 1;
    visit(doc, {
      Alias(_, node) {
        if (node.range) line = lc.linePos(node.range[0]).line;
        return visit.BREAK;
      },
    });
    const what = err instanceof Error ? err.message.split("\n")[0]! : String(err);
    return { error: `not valid YAML: ${what.charAt(0).toLowerCase()}${what.slice(1)}`, line };
  }
}

/**
 * Parses YAML text and validates it against `schema`.
 * @returns the typed value and a YamlLines for further checks with line numbers.
 * @throws YamlSpecError for invalid YAML, a duplicate or unknown key, a wrong type, a missing key.
 */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  schema: S,
  file: string,
): { value: z.output<S>; lines: YamlLines } {
  const lc = new LineCounter();
  // logLevel error: yaml's warnings (e.g. a collection used as a key) would go to the process's stderr
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, logLevel: "error" });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new YamlSpecError(file, lc.linePos(e.pos[0]).line, "", `not valid YAML: ${e.message.split("\n")[0]}`);
  }
  const lines = new YamlLines(doc, lc, file);
  const js = documentToJs(doc, lc);
  if ("error" in js) throw new YamlSpecError(file, js.line, "", js.error);
  return { value: lines.validate(schema, js.value), lines };
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type") return `expected ${issue.expected}`;
  if (issue.code === "invalid_value") return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}
