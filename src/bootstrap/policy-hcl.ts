/**
 * Just enough HCL to read and write ACL policies: `path "..." { capabilities = [...] ... }` blocks, comments, lists,
 * nested objects (allowed_parameters). The server stays the judge of validity: this parser exists so that lint can
 * point at a line, and a parse failure here is reported as a finding, never as a reason to refuse an apply.
 */

/** One `path` block of a policy. Lines are 1-based within the policy text. */
export interface PolicyRule {
  path: string;
  capabilities: string[];
  /** Line of the `path` keyword. */
  line: number;
  /** Line of `capabilities` (the path line when absent). */
  capabilitiesLine: number;
  /** Other attributes of the block (allowed_parameters, min_wrapping_ttl, ...), as parsed values. */
  extra: Record<string, unknown>;
}

export class PolicyParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(message);
  }
}

type Tok = { t: "str" | "ident" | "num" | "punct"; v: string; line: number };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === "#" || (c === "/" && src[i + 1] === "/")) {
      while (i < src.length && src[i] !== "\n") i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) throw new PolicyParseError("unterminated comment", line);
      for (let j = i; j < end; j++) if (src[j] === "\n") line++;
      i = end + 2;
    } else if (c === '"') {
      let j = i + 1;
      let out = "";
      for (;;) {
        if (j >= src.length || src[j] === "\n") throw new PolicyParseError("unterminated string", line);
        if (src[j] === "\\") {
          const n = src[j + 1];
          out += n === "n" ? "\n" : n === "t" ? "\t" : (n ?? "");
          j += 2;
          continue;
        }
        if (src[j] === '"') break;
        out += src[j];
        j++;
      }
      toks.push({ t: "str", v: out, line });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < src.length && /[A-Za-z0-9_-]/.test(src[j]!)) j++;
      toks.push({ t: "ident", v: src.slice(i, j), line });
      i = j;
    } else if (/[0-9-]/.test(c)) {
      let j = i + 1;
      while (j < src.length && /[0-9.]/.test(src[j]!)) j++;
      toks.push({ t: "num", v: src.slice(i, j), line });
      i = j;
    } else if ("{}[]=,:".includes(c)) {
      toks.push({ t: "punct", v: c, line });
      i++;
    } else {
      throw new PolicyParseError(`unexpected character "${c}"`, line);
    }
  }
  return toks;
}

/**
 * Parses policy HCL into its path rules.
 * @throws PolicyParseError (with the line) when the text is not HCL this parser understands.
 */
export function parsePolicyHcl(src: string): PolicyRule[] {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p];
  const lastLine = () => toks[toks.length - 1]?.line ?? 1;
  const expect = (v: string): Tok => {
    const t = toks[p];
    if (!t || t.v !== v || (t.t !== "punct" && t.t !== "ident")) {
      throw new PolicyParseError(`expected "${v}"${t ? ` near "${t.v}"` : " at end of policy"}`, t?.line ?? lastLine());
    }
    p++;
    return t;
  };
  const parseValue = (): unknown => {
    const t = toks[p];
    if (!t) throw new PolicyParseError("expected a value at end of policy", lastLine());
    if (t.t === "str") {
      p++;
      return t.v;
    }
    if (t.t === "num") {
      p++;
      return Number(t.v);
    }
    if (t.t === "ident" && (t.v === "true" || t.v === "false")) {
      p++;
      return t.v === "true";
    }
    if (t.v === "[") {
      p++;
      const out: unknown[] = [];
      while (peek()?.v !== "]") {
        out.push(parseValue());
        if (peek()?.v === ",") p++;
        else if (peek()?.v !== "]") throw new PolicyParseError('expected "," or "]" in a list', t.line);
      }
      p++;
      return out;
    }
    if (t.v === "{") {
      p++;
      const obj = parseBody("}");
      p++;
      return obj;
    }
    throw new PolicyParseError(`unexpected "${t.v}"`, t.line);
  };
  // A body is a sequence of `key = value` and `key "label" { body }` items, up to `end` (or the end of input).
  const parseBody = (end: string | undefined): Record<string, unknown> => {
    const obj: Record<string, unknown> = {};
    while (p < toks.length && toks[p]!.v !== end) {
      const key = toks[p]!;
      if (key.t !== "ident" && key.t !== "str") throw new PolicyParseError(`unexpected "${key.v}"`, key.line);
      p++;
      if (peek()?.v === "=" || peek()?.v === ":") {
        p++;
        obj[key.v] = parseValue();
      } else if (peek()?.t === "str") {
        const label = toks[p]!;
        p++;
        expect("{");
        const body = parseBody("}");
        p++;
        if (!Array.isArray(obj[key.v])) obj[key.v] = [];
        (obj[key.v] as unknown[]).push({ label: label.v, line: key.line, body });
      } else if (peek()?.v === "{") {
        p++;
        obj[key.v] = parseBody("}");
        p++;
      } else {
        throw new PolicyParseError(`expected "=" or a block after "${key.v}"`, key.line);
      }
      if (peek()?.v === ",") p++;
    }
    if (end !== undefined && p >= toks.length) throw new PolicyParseError(`missing "${end}"`, lastLine());
    return obj;
  };
  const top = parseBody(undefined);
  const rules: PolicyRule[] = [];
  for (const [key, value] of Object.entries(top)) {
    if (key !== "path" || !Array.isArray(value)) {
      throw new PolicyParseError(`unexpected top-level "${key}" (a policy holds path blocks)`, 1);
    }
    for (const block of value as { label: string; line: number; body: Record<string, unknown> }[]) {
      const { capabilities, ...extra } = block.body;
      const caps = Array.isArray(capabilities) ? capabilities.map(String) : [];
      const capTok = toks.find((t) => t.line >= block.line && t.v === "capabilities");
      rules.push({
        path: block.label,
        capabilities: caps,
        line: block.line,
        capabilitiesLine: capabilities === undefined ? block.line : (capTok?.line ?? block.line),
        extra,
      });
    }
  }
  return rules;
}

/** Renders structured rules as canonical policy HCL (what sealkeeper writes for apps and `rules:` policies). */
export function renderPolicyHcl(rules: { path: string; capabilities: string[] }[]): string {
  return rules
    .map((r) => `path "${r.path}" {\n  capabilities = [${r.capabilities.map((c) => `"${c}"`).join(", ")}]\n}\n`)
    .join("\n");
}

/** Vault's capabilities. */
export const CAPABILITIES = ["create", "read", "update", "patch", "delete", "list", "sudo", "deny", "subscribe"];
export const WRITE_CAPABILITIES = new Set(["create", "update", "patch", "delete"]);
