/**
 * Fuzz: connection settings from the environment and flags (src/vault/env.ts): VAULT_ and BAO_ ADDR, SKIP_VERIFY,
 * CLIENT_TIMEOUT and the rest, as CI systems set them (empty, with blanks, with a token pasted into the wrong
 * variable). Also the TTL parser of bootstrap specs.
 */
import { fc } from "@fast-check/vitest";
import { afterAll, describe, expect, it } from "vitest";
import { parseTtlSeconds } from "../../../src/bootstrap/duration.js";
import { UsageError } from "../../../src/errors.js";
import { isLoopbackAddress, parseDurationMs, resolveConnection } from "../../../src/vault/env.js";
import {
  anySecretArb,
  attempt,
  embedded,
  expectWellBehaved,
  junkString,
  mutatedText,
  params,
  RUNS,
  reportCounts,
  secretArb,
  tick,
} from "./fuzz-kit.js";

afterAll(() => reportCounts({ resolveConnection: RUNS.light, duration: RUNS.light }));

const NAMES = ["ADDR", "SKIP_VERIFY", "CLIENT_TIMEOUT", "CACERT", "NAMESPACE", "TLS_SERVER_NAME", "TOKEN"];
const value = fc.oneof(
  junkString,
  mutatedText(["https://127.0.0.1:8200", "http://[::1]:8200/", "true", "0", "30s", "1m30s", "500ms", "2"]),
  embedded(secretArb).map((e) => e.input),
  anySecretArb,
  fc.constantFrom("", " ", "1e400", "9".repeat(400), "-1", "0s", "1.5.5s", "http://", "file:///etc/passwd"),
);
const envArb = fc.dictionary(
  fc.tuple(fc.constantFrom("VAULT_", "BAO_"), fc.constantFrom(...NAMES)).map(([p, n]) => p + n),
  value,
  { maxKeys: 6 },
);

describe("resolveConnection", () => {
  it("settings or a UsageError naming the variable; a token pasted into a variable is never repeated", async () => {
    await fc.assert(
      fc.asyncProperty(envArb, fc.option(value), async (env, address) => {
        tick("resolveConnection");
        const out = await attempt(() =>
          resolveConnection(address === null ? {} : { address }, { ...env, HOME: "/nonexistent" }),
        );
        expectWellBehaved(out, { allowed: [UsageError], input: [...Object.values(env), address ?? ""] });
        if (out.ok) {
          expect(out.value.timeoutMs).toBeGreaterThan(0);
          expect(() => AbortSignal.timeout(out.value.timeoutMs)).not.toThrow();
          expect(() => isLoopbackAddress(out.value.address)).not.toThrow();
        }
      }),
      params("resolveConnection", RUNS.light),
    );
  });
});

describe("durations", () => {
  it("parseDurationMs: milliseconds or a UsageError; parseTtlSeconds: seconds or undefined", async () => {
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        tick("duration");
        const ms = await attempt(() => parseDurationMs(v, "VAULT_CLIENT_TIMEOUT"));
        expectWellBehaved(ms, { allowed: [UsageError], input: v });
        const ttl = await attempt(() => parseTtlSeconds(v));
        expectWellBehaved(ttl, { allowed: [] });
        if (ttl.ok && ttl.value !== undefined) expect(ttl.value).toBeGreaterThanOrEqual(0);
      }),
      params("duration", RUNS.light),
    );
  });
});
