/**
 * Durations as Vault's parseutil.ParseDurationSecond accepts them for TTL fields: a whole number of seconds, or a
 * sequence of number+unit with units ms, s, m, h, d (e.g. 90, "90s", "1h30m", "7d"). Returns whole seconds, or
 * undefined when the value cannot be parsed (the caller names the field in its error).
 */
export function parseTtlSeconds(value: number | string): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  if (trimmed === "") return undefined;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let pos = 0;
  while (pos < trimmed.length) {
    re.lastIndex = pos;
    const m = re.exec(trimmed);
    if (!m) return undefined;
    const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
    total += Number(m[1]) * unit;
    pos = re.lastIndex;
  }
  return Math.floor(total);
}

/** Renders seconds the short way people write them: 3600 -> "1h", 5400 -> "1h30m", 0 -> "0s". */
export function formatSeconds(total: number): string {
  if (total === 0) return "0s";
  let rest = total;
  let out = "";
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
