/**
 * Regression tests for the bugs the fuzz tests found, one case each, so they stay found even with another seed.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseSpec, SpecError } from "../../../src/bootstrap/spec.js";
import { readCeremonyFile } from "../../../src/ceremony/ceremony-file.js";
import { verifyTranscriptText } from "../../../src/ceremony/transcript.js";
import { runUnseal } from "../../../src/ceremony/unseal.js";
import { parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { RecipientError } from "../../../src/ciphers/errors.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import { loadRecipient } from "../../../src/ciphers/registry.js";
import { UsageError, VaultHttpError } from "../../../src/errors.js";
import { redactSecrets } from "../../../src/util/redact.js";
import { YamlSpecError } from "../../../src/util/yaml-schema.js";
import type { VaultClient } from "../../../src/vault/client.js";
import { resolveConnection } from "../../../src/vault/env.js";
import type { SealStatus } from "../../../src/vault/types.js";
import { freshSecrets, secretsIn } from "./fuzz-kit.js";

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RecipientError);
    return (err as Error).message;
  }
  throw new Error("expected a RecipientError");
}

describe("recipient specs never repeat a secret pasted into them", () => {
  const s = freshSecrets();
  it("a token before the colon (the 'type' part) is cut", () => {
    const msg = messageOf(() => parseRecipientSpec(`${s.token}:x`));
    expect(msg).toMatch(/^unknown recipient type "hvs\.\.\.\." in "hvs\.\.\.\.:x"/);
    expect(msg.toLowerCase()).not.toContain(s.token.toLowerCase());
  });
  it("an age secret key as an operator name is cut", () => {
    const msg = messageOf(() => parseOperatorSpec(`${s.ageSecret}=age:age1qq`));
    expect(msg).toMatch(/^bad operator name "AGE-SECRET-KEY-1\.\.\."/);
    expect(msg).not.toContain(s.ageSecret.slice(16));
  });
  it("a share (hex or base64) as a type or name is cut", () => {
    for (const secret of [s.shareHex, s.shareB64]) {
      expect(messageOf(() => parseRecipientSpec(`${secret}:x`))).not.toContain(secret);
    }
    // 66 hex digits: too long for a name (a 44-character base64 share without + or / IS a valid name, and is not echoed
    // unless it is wrong)
    expect(messageOf(() => parseOperatorSpec(`${s.shareHex}=pgp:a.asc`))).not.toContain(s.shareHex);
  });
});

describe("redactSecrets", () => {
  it("keeps ordinary values (paths, names, URLs) as they are", () => {
    for (const v of ["keys/alice.asc", "gpg", "https://127.0.0.1:8200", "alice", "/home/ops/ceremony-2026-11-29"]) {
      expect(redactSecrets(v)).toBe(v);
    }
  });
  it("cuts tokens, age secret keys, hex and base64 key material", () => {
    const s = freshSecrets();
    expect(redactSecrets(`a ${s.token} b`)).toBe("a hvs.... b");
    expect(redactSecrets(s.ageSecret)).toBe("AGE-SECRET-KEY-1...");
    expect(redactSecrets(s.shareHex)).toBe(`${s.shareHex.slice(0, 4)}...`);
    expect(redactSecrets(`x${s.shareB64}`)).not.toContain(s.shareB64.slice(4));
  });
});

describe("a control character in a value is shown escaped, never sent to the terminal (fuzz:deep seed 1878533556)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-regress-ctl-"));
  const ceremony = (recipient: string) => {
    const file = join(dir, "ceremony.yaml");
    writeFileSync(file, `shares: 1\nthreshold: 1\noperators: [{name: a, recipient: ${recipient}}]\n`);
    return () => readCeremonyFile(file);
  };
  it("the shrunk counterexample: a YAML backspace escape before a token-like run", () => {
    expect(ceremony('"\\b.AAAAAAAAAAAAAAAAAAAAMZaA"')).toThrow(
      /operators\[0\]: bad recipient "\\x08\.AAAAAAAAAAAAAAAAAAAAMZaA": expected TYPE:VALUE/,
    );
  });
  it("an ANSI escape sequence and a bidirectional override", () => {
    expect(ceremony('"\\e[2J\\e]0;owned\\a"')).toThrow(/bad recipient "\\x1b\[2J\\x1b\]0;owned\\x07"/);
    expect(ceremony('"\\u202Eabc"')).toThrow(/\\u202e/);
  });
  it("every SealkeeperError escapes its message and hint, whoever built them (a server's answer too)", () => {
    const err = new UsageError("bad \x1b[31mvalue\u202e", { hint: "try \x07again" });
    expect(err.message).toBe("bad \\x1b[31mvalue\\u202e");
    expect(err.hint).toBe("try \\x07again");
    const http = new VaultHttpError("http://127.0.0.1:8200", "PUT", "/v1/sys/unseal", 400, ["\x1b]0;owned\x07"]);
    expect(http.message).toBe("PUT /v1/sys/unseal on http://127.0.0.1:8200: 400 \\x1b]0;owned\\x07");
  });
  it("newline and tab stay as they are; secrets are still cut", () => {
    const s = freshSecrets();
    expect(redactSecrets(`a\tb\nc \x1b${s.token}`)).toBe("a\tb\nc \\x1bhvs....");
  });
});

describe("YAML aliases are refused with file:line, not a bare ReferenceError", () => {
  const bomb =
    'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n' +
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n";
  const dir = mkdtempSync(join(tmpdir(), "sk-regress-"));
  const ceremony = (text: string) => {
    const file = join(dir, "ceremony.yaml");
    writeFileSync(file, text);
    return () => readCeremonyFile(file);
  };
  it("an alias bomb (billion laughs)", () => {
    expect(() => parseSpec(bomb, "s.yaml")).toThrow(SpecError);
    expect(() => parseSpec(bomb, "s.yaml")).toThrow(/^s\.yaml:2: not valid YAML: excessive alias count/);
    expect(ceremony(bomb)).toThrow(YamlSpecError);
    expect(ceremony(bomb)).toThrow(/ceremony\.yaml:2: not valid YAML: excessive alias count/);
  });
  it("an alias without its anchor", () => {
    expect(() => parseSpec("version: 1\nmounts: *nope\n", "s.yaml")).toThrow(
      /^s\.yaml:2: not valid YAML: unresolved alias \(the anchor must be set before the alias\): nope$/,
    );
    expect(ceremony("shares: 3\nthreshold: *t\n")).toThrow(/ceremony\.yaml:2: not valid YAML: unresolved alias/);
  });
});

describe("a secret slipped into a YAML mapping key is not repeated (fuzz:deep, shrunk counterexamples)", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-regress-slip-"));
  const ceremony =
    'address: https://vault-0.example:8200\nshares: 3\nthreshold: 2\noperators:\n  - { name: alice, recipient: "pgp:keys/alice.asc" }\n';
  it("a token as an unknown key of a ceremony file: cut after its prefix", () => {
    const file = join(dir, "ceremony.yaml");
    writeFileSync(file, `b.AAAAAAAAAAAAAAAAAAAAAAAA: x\n${ceremony}`);
    expect(() => readCeremonyFile(file)).toThrow(/ceremony\.yaml:1: b\.\.\.\.: unknown key$/);
  });
  it("a hex share as an unknown key of a bootstrap spec: cut to its first characters", () => {
    const share = `${"0".repeat(62)}7a00`;
    expect(() => parseSpec(`${share}: x\nversion: 1\n`, "s.yaml")).toThrow(/^s\.yaml:1: 0000\.\.\.: unknown key$/);
  });
  it("the same for every place a YAML slip can put it: a nested key, a tag, an anchor, an alias", () => {
    const s = freshSecrets();
    for (const secret of [s.token, s.ageSecret, s.ageSecret.toLowerCase(), s.shareHex, s.shareB64]) {
      for (const text of [
        `version: 1\nmounts:\n  - path: a\n    type: kv\n    options: {${secret}: {}}\n`,
        `version: 1\nmounts: !${secret} []\n`,
        `version: 1\nmounts: !<${secret}> []\n`,
        `version: 1\nmounts: *${secret}\n`,
        `version: 1\nmounts: &${secret} x\n`,
        `%${secret} 1\n---\nversion: 1\n`,
        `version: 1\npolicies: [{name: p, hcl: |${secret}\n  x}]\n`,
        `version: 1\nauth: [{path: kubernetes, type: kubernetes, roles: [{name: r, bound_service_account_names: [a], bound_service_account_namespaces: [b], token_ttl: ${secret}}]}]\n`,
      ]) {
        let msg = "";
        try {
          parseSpec(text, "s.yaml");
        } catch (err) {
          expect(err).toBeInstanceOf(SpecError);
          msg = (err as Error).message;
        }
        expect(msg.toLowerCase(), text).not.toContain(secret.toLowerCase());
        expect(msg.toLowerCase(), text).not.toContain(secret.slice(-20).toLowerCase());
      }
    }
  });
});

describe("other errors that repeated a secret from their input (fuzz:deep, shrunk counterexamples)", () => {
  it("a base64 share as a recipient type: not lower-cased before it is cut (lower case hid its shape)", () => {
    const msg = messageOf(() => parseRecipientSpec("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAF+AAAAAAAAFgAA=age:age1qq"));
    expect(msg.toLowerCase()).not.toContain("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaf+aaaaaaaafgaa");
    expect(msg).toMatch(/^unknown recipient type "AAAA\.\.\.age"/);
  });
  it("a token given as an age recipients file, or as a line in one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-regress-age-"));
    await expect(loadRecipient(parseRecipientSpec("age:# s.AAAAAAAAAAAAAAAAAAAAAAAA"), { cwd: dir })).rejects.toThrow(
      /^cannot read age recipients file # s\.\.\.\.: ENOENT$/,
    );
    writeFileSync(join(dir, "r.txt"), "hvs.AAAAAAAAAAAAAAAAAAAAAAAA\n");
    await expect(loadRecipient(parseRecipientSpec("age:r.txt"), { cwd: dir })).rejects.toThrow(
      /line 1: "hvs\.\.\.\." is not an age recipient/,
    );
    writeFileSync(join(dir, "r.txt"), `${freshSecrets().ageSecret.toLowerCase()}\n`);
    await expect(loadRecipient(parseRecipientSpec("age:r.txt"), { cwd: dir })).rejects.toThrow(/is a SECRET key/);
  });
  it("a base64 share behind a token prefix: cut whole, not up to its first + (fuzz:deep seed 1680941672)", () => {
    const file = join(mkdtempSync(join(tmpdir(), "sk-regress-b64-")), "ceremony.yaml");
    writeFileSync(
      file,
      'shares: 1\nthreshold: 1\noperators: [{name: a, recipient: "b.AAAAAAAAAAAAAAAAAH9+AAAAAAAAAAAAAAAAAAAAZgAA"}]\n',
    );
    expect(() => readCeremonyFile(file)).toThrow(/:3: operators\[0\]: bad recipient "b\.\.\.\.": expected TYPE:VALUE/);
    expect(redactSecrets(`b.${freshSecrets().shareB64}`)).toBe("b....");
  });
  it("a PGP private key block pasted into VAULT_CLIENT_TIMEOUT: cut to its armor header", () => {
    const block =
      "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAGAAAAAAAIgAAAAAA\n" +
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAA==\n=AAAA\n-----END PGP PRIVATE KEY BLOCK-----\n";
    expect(() => resolveConnection({}, { VAULT_CLIENT_TIMEOUT: block })).toThrow(
      /^VAULT_CLIENT_TIMEOUT must be a duration .*, got "-----BEGIN PGP PRIVATE KEY BLOCK-----\.\.\.\n"$/,
    );
  });
  it("a transcript line whose seq a hand edit turned into a token", () => {
    const { token } = freshSecrets();
    const r = verifyTranscriptText(`{"action":"x","seq":"${token}","prev":"${"0".repeat(64)}","hash":"h"}\n`);
    expect(r).toEqual({ ok: false, line: 1, error: 'line 1 has sequence number "hvs....' + '"' });
  });
});

describe("transcript verify", () => {
  it("a line with deeply nested values is 'not a transcript entry', not a stack overflow", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const line = `{"action":${deep},"seq":1,"prev":"${"0".repeat(64)}","hash":"x"}\n`;
    expect(verifyTranscriptText(line)).toEqual({ ok: false, line: 1, error: "line 1 is not a transcript entry" });
    expect(verifyTranscriptText('{"action":{"a":1},"seq":1,"prev":"0","hash":"x"}\n')).toMatchObject({ ok: false });
  });
});

describe("connection settings", () => {
  it("a token pasted into VAULT_ADDR is not repeated in the error", () => {
    const { token } = freshSecrets();
    expect(() => resolveConnection({}, { VAULT_ADDR: token })).toThrow(/^address "hvs\.\.\.\." is not a URL/);
  });
  it("a timeout too long for Node's timers is refused up front, not a RangeError at the first request", () => {
    for (const v of ["5000000", "3000000", "9".repeat(400), "600000h"]) {
      expect(() => resolveConnection({}, { VAULT_CLIENT_TIMEOUT: v })).toThrow(/^timeout must be at most 2147483s/);
    }
    expect(resolveConnection({}, { VAULT_CLIENT_TIMEOUT: "2147483" }).timeoutMs).toBe(2_147_483_000);
  });
});

/** A Shamir node in memory: progress and nonce live in memory, as on the server; restart() loses them. */
function fakeNode(threshold: number) {
  let progress = 0;
  let nonce = "";
  let sealed = true;
  let attempts = 0;
  const keys = new Set<string>();
  const status = (): SealStatus =>
    ({ type: "shamir", initialized: true, sealed, t: threshold, n: 5, progress, nonce }) as SealStatus;
  const client = {
    address: "http://127.0.0.1:1",
    sealStatus: async () => status(),
    unseal: async (req: { key?: string }) => {
      if (!sealed) return status();
      if (!keys.has(req.key!)) {
        keys.add(req.key!);
        if (progress === 0) nonce = `nonce-${++attempts}`;
        progress++;
      }
      if (progress >= threshold) {
        sealed = false;
        progress = 0;
        nonce = "";
      }
      return status();
    },
  } as unknown as VaultClient;
  return {
    client,
    restart() {
      progress = 0;
      nonce = "";
      keys.clear();
    },
  };
}

describe("unseal: a node restarted between shares", () => {
  it("is not told the next share is a duplicate; the earlier share, not proven by any unsealed node, is asked for again (issue 25)", async () => {
    const n = fakeNode(3);
    const shares = ["01", "02", "03", "04"].map((x) => parseKeyShare(x.repeat(33), `share ${x}`));
    let i = 0;
    const outcomes: string[] = [];
    const report = await runUnseal({
      clients: [n.client],
      source: {
        async next() {
          if (i === 1) n.restart(); // the node lost share 1
          return shares[i++] ?? null;
        },
      },
      onEvent: (e) => {
        if (e.kind === "share") outcomes.push(`${e.share.origin}: ${e.results[0]!.outcome}`);
      },
    });
    expect(outcomes).toEqual(["share 01: accepted", "share 02: restarted", "share 03: accepted", "share 04: complete"]);
    expect(report.nodes[0]!.state).toBe("unsealed");
    expect(report.sharesUsed).toBe(4);
  });

  it("a true duplicate (same attempt, same nonce) is still named a duplicate", async () => {
    const n = fakeNode(3);
    const share = parseKeyShare("01".repeat(33), "stdin line 1");
    let i = 0;
    const report = await runUnseal({
      clients: [n.client],
      source: { next: async () => (i++ < 2 ? share : null) },
    });
    expect(report.nodes[0]!.message).toMatch(/^duplicate share from stdin line 1/);
  });
});

describe("an age secret key whose prefix a slip mangled is still cut (fuzz:deep seed 20261203, shrunk)", () => {
  it("a YAML '\\a' escape ate the A of AGE-SECRET-KEY-1: the bech32 body is cut, file:line kept", () => {
    const dir = mkdtempSync(join(tmpdir(), "sk-regress-"));
    const file = join(dir, "c.yaml");
    const body = "q".repeat(58);
    writeFileSync(file, `shares: 1\nthreshold: 1\noperators: [{name: a, recipient: "\\age-secret-key-1${body}"}]\n`);
    let msg = "";
    try {
      readCeremonyFile(file);
    } catch (err) {
      expect(err).toBeInstanceOf(UsageError);
      msg = (err as Error).message;
    }
    expect(msg).toMatch(/c\.yaml:3: operators\[0\]: bad recipient "\\x07ge-secret-key-1qqqq\.\.\."/);
    expect(msg).not.toContain(body.slice(0, 16));
  });
  it("a recipient with a tab after age1 (the rest a secret-shaped run): the descriptor's error is cut too", () => {
    const run = "3npzcupkaa3fk4wtdwpnres7vcmutugl8El8tc3ff67c4j7lfszq609e84";
    const msg = messageOf(() => parseRecipientSpec(`age:age1\t${run}`));
    expect(msg).toContain("is not a valid age recipient");
    expect(msg).not.toContain(run.slice(0, 16));
  });
  it("an age1... recipient stays whole, in either case; a long lower-case word-like run does not", () => {
    const r = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
    expect(redactSecrets(`"${r}" is wrong`)).toBe(`"${r}" is wrong`);
    expect(redactSecrets(r.toUpperCase())).toBe(r.toUpperCase());
    expect(redactSecrets(`x ${"q".repeat(58)} y`)).toBe("x qqqq... y");
    expect(redactSecrets(`x ${"Q".repeat(58)} y`)).toBe("x QQQQ... y");
  });
});

describe("the leak check itself (fuzz:deep seed 904836828, shrunk)", () => {
  it("a one-letter window in mixed case is not a secret: case-folded it matched any run of 16 q's", () => {
    const input = "age:`ge1qqqqqqqqqqqqqqqq;qqqqqqqqqqqqqqqqqqqqqqqqqqqqQQQQQQQQqqqqqqqqqqqqq";
    expect(secretsIn(input).filter((w) => w.length === 16)).toEqual([]);
    // a real base64 share still yields its windows
    expect(secretsIn(freshSecrets().shareB64).length).toBeGreaterThan(1);
  });
});
