/**
 * Break-glass root generation against a real server: the root token from init is revoked first, then a quorum
 * (3 of 5) makes a new one through the OTP path (decoded here, sealed to a real age key) and the PGP path (encrypted by
 * the server, opened by the real gpg); each new token is used, then revoked. Faults: an attempt already running, a
 * wrong nonce, a duplicate share (the server refuses it here, unlike unseal), a cancel in the middle, a node sealed
 * mid-ceremony, and the refusal when no usable API is there.
 *
 * Which API: Vault 1.21 serves /sys/generate-root/* without a token. OpenBao 2.6.2 turns that pair off by default
 * (listener option disable_unauthed_generate_root_endpoints, default true) and serves /sys/generate-root-token/* to a
 * token allowed on it: so on OpenBao the operators provision a break-glass token before they revoke the root token (a
 * policy on sys/generate-root-token/* and nothing else) and every run here gives it in BAO_TOKEN, as they would; the
 * operator who has no such token turns the listener option off and restarts the node, which is tested too.
 */
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readGenerateRootStatus, runGenerateRoot } from "../../src/ceremony/generate-root.js";
import type { ShareSource } from "../../src/ceremony/share-source.js";
import { parseKeyShare } from "../../src/ceremony/unseal-key.js";
import { initAndUnseal, startNode, type TestNode, unsealNodes } from "../harness/cluster.js";
import {
  type AgeOperator,
  ageDecrypt,
  gpgDecrypt,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
} from "../harness/operators.js";
import { SERVER_NAMES, serverKind } from "../harness/paths.js";
import { runSealkeeper } from "../harness/run-cli.js";

const kind = serverKind();
const name = SERVER_NAMES[kind];
let node: TestNode;
let work: string;
/**
 * OpenBao only: a token whose policy allows sys/generate-root-token/* and nothing else (no default policy), made
 * before the root token was revoked; given in BAO_TOKEN to every run. undefined on Vault, which needs no token.
 */
let breakGlass: string | undefined;
/** OpenBao only: a token of the default policy, which may not use sys/generate-root-token. */
let defaultOnly: string | undefined;
/** What an OpenBao operator's break-glass policy grants: the authenticated root generation endpoints, no more. */
const BREAK_GLASS_POLICY = `path "sys/generate-root-token/*" {
  capabilities = ["create", "read", "update", "delete"]
}
`;
let keys: string[];
let alice: PgpOperator;
let holder: AgeOperator;
/** Every secret the test saw (shares, tokens), to scan all outputs for. */
const secrets: string[] = [];
const outputs: string[] = [];

/** `root generate` against the node; on OpenBao with the break-glass token in BAO_TOKEN unless noToken. */
async function sk(argv: string[], opts: Parameters<typeof runSealkeeper>[1] & { noToken?: boolean } = {}) {
  const { noToken, ...rest } = opts;
  const env = { ...(breakGlass && !noToken ? { BAO_TOKEN: breakGlass } : {}), ...rest.env };
  const r = await runSealkeeper(["root", "generate", "-a", node.address, ...argv], { cwd: work, ...rest, env });
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function lookupSelf(token: string): Promise<{ status: number; policies: string[] }> {
  const c = node.client(token);
  try {
    const res = await c.request<{ data?: { policies?: string[] } }>("GET", "auth/token/lookup-self", {
      accept: [403],
    });
    return { status: res.status, policies: res.body?.data?.policies ?? [] };
  } finally {
    await c.close();
  }
}

async function status() {
  const c = node.client(breakGlass);
  try {
    return (await readGenerateRootStatus(c)).status;
  } finally {
    await c.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-genroot-"));
  const keysDir = join(work, "keys");
  mkdirSync(keysDir);
  const ready = startNode();
  alice = makePgpOperator(makeGnupgHome(work), keysDir, "alice");
  holder = makeAgeOperator(keysDir, "holder");
  node = await ready;
  const init = await initAndUnseal([node], { shares: 5, threshold: 3 });
  keys = init.keys;
  secrets.push(...keys, init.rootToken);
  keys.forEach((k, i) => {
    writeFileSync(join(work, `share${i + 1}.txt`), `${k}\n`, { mode: 0o600 });
  });
  const c = node.client(init.rootToken);
  if (kind === "openbao") {
    // OpenBao: root generation needs a token allowed on sys/generate-root-token/*; made while the root token lives
    await c.write("sys/policies/acl/break-glass", { policy: BREAK_GLASS_POLICY });
    const mint = async (policies: string[]) =>
      (
        await c.request<{ auth: { client_token: string } }>("POST", "auth/token/create", {
          // an orphan: revoking the root token revokes its children
          body: { policies, no_default_policy: !policies.includes("default"), no_parent: true, ttl: "2h" },
        })
      ).body.auth.client_token;
    breakGlass = await mint(["break-glass"]);
    defaultOnly = await mint(["default"]);
    secrets.push(breakGlass, defaultOnly);
  }
  // the starting point of break-glass: the root token from init is gone
  await c.request("POST", "auth/token/revoke-self");
  await c.close();
  expect((await lookupSelf(init.rootToken)).status).toBe(403);
}, 180_000);

afterAll(async () => {
  await node?.stop();
});

const shareArgs = (...n: number[]) => n.flatMap((i) => ["--share-file", `share${i}.txt`]);

describe("root generate, OTP path", () => {
  it("3 of 5 shares make a root token, sealed to a real age key; it works and is revoked", async () => {
    const transcript = join(work, "otp.jsonl");
    const r = await sk([
      "--token-recipient",
      `age:${holder.recipient}`,
      "-o",
      "otp-token.age",
      "--transcript",
      transcript,
      "--non-interactive",
      ...shareArgs(1, 2, 3),
    ]);
    expect(r.stderr).toContain("one-time password held in memory");
    expect(r.code, r.stderr).toBe(0);
    // OpenBao: through the token path with the break-glass token (the unauthenticated one is off)
    expect(r.stderr).toContain(kind === "openbao" ? "via /v1/sys/generate-root-token," : "via /v1/sys/generate-root,");
    const file = join(work, "otp-token.age");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const token = ageDecrypt(holder, file).trim();
    secrets.push(token);
    expect(token).toMatch(/^hvs\.|^s\./);
    const looked = await lookupSelf(token);
    expect(looked.status).toBe(200);
    expect(looked.policies).toContain("root");
    expect(r.stderr).toContain("sealkeeper root revoke");

    const lines = readFileSync(transcript, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.action)).toEqual([
      "generate-root-start",
      "generate-root-share",
      "generate-root-share",
      "generate-root-share",
      "generate-root-end",
      "generate-root-token-written",
    ]);
    expect(lines[3].detail).toBe("complete");
    expect(lines[1].shareFingerprint).toMatch(/^[0-9a-f]{16}$/);

    const revoke = await runSealkeeper(["root", "revoke", "-a", node.address, "--yes"], {
      env: { VAULT_TOKEN: token },
    });
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await lookupSelf(token)).status).toBe(403);
  });

  it("prints the token only with --print-token", async () => {
    const r = await sk(["--print-token", "--non-interactive"], { stdin: keys.slice(2, 5).join("\n") });
    expect(r.code, r.stderr).toBe(0);
    const token = /root token \(you asked for it in plaintext\): (\S+)/.exec(r.stdout)?.[1];
    expect(token).toBeDefined(); // not added to `secrets`: printing it was asked for
    expect((await lookupSelf(token!)).policies).toContain("root");
    const c = node.client(token);
    await c.request("POST", "auth/token/revoke-self");
    await c.close();
  });

  it("refuses to start without saying where the token goes", async () => {
    const r = await sk(["--non-interactive", ...shareArgs(1, 2, 3)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("say where the new root token goes");
    expect((await status()).started).toBe(false);
  });

  it("an OTP attempt that runs out of shares is cancelled: nobody else holds its OTP", async () => {
    const r = await sk(["--print-token", "--non-interactive", ...shareArgs(1)]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain("the OTP attempt was cancelled");
    expect((await status()).started).toBe(false);
  });
});

describe("root generate, PGP path", () => {
  it("the server encrypts the token to --pgp-key; real gpg opens it; root revoke with the file revokes it", async () => {
    const r = await sk([
      "--pgp-key",
      alice.publicKeyPath,
      "-o",
      "pgp-token.asc",
      "--non-interactive",
      ...shareArgs(2, 4, 5),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const file = join(work, "pgp-token.asc");
    expect(readFileSync(file, "utf8")).toMatch(/^-----BEGIN PGP MESSAGE-----/);
    const token = gpgDecrypt(alice, file).trim();
    secrets.push(token);
    expect((await lookupSelf(token)).policies).toContain("root");
    const revoke = await runSealkeeper(
      ["root", "revoke", "-a", node.address, "--root-token-file", file, "--identity", alice.secretKeyPath, "--yes"],
      { cwd: work },
    );
    expect(revoke.code, revoke.stderr).toBe(0);
    expect((await lookupSelf(token)).status).toBe(403);
  });
});

describe("faults leave a state to resume or cancel from", () => {
  it("an attempt already running, a wrong nonce, a duplicate share, then resume to the end", async () => {
    // one share, then the source runs dry: a PGP attempt stays open for others
    const first = await sk([
      "--pgp-key",
      alice.publicKeyPath,
      "-o",
      "resumed.asc",
      "--non-interactive",
      ...shareArgs(1),
    ]);
    expect(first.code).toBe(2);
    expect(first.stdout).toContain("continue with --resume");
    const st = await status();
    expect(st).toMatchObject({ started: true, progress: 1, required: 3 });

    const again = await sk(["--pgp-key", alice.publicKeyPath, "-o", "other.asc", "--non-interactive", ...shareArgs(2)]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(
      `a root generation attempt is already in progress on ${node.address} (nonce ${st.nonce}, progress 1/3`,
    );
    expect(again.stderr).toContain("--resume");

    const shown = await sk(["--status", "--format", "json"]);
    expect(JSON.parse(shown.stdout)).toMatchObject({ started: true, nonce: st.nonce, progress: 1, mode: "pgp" });

    const wrong = await sk([
      "--resume",
      "--nonce",
      "00000000-0000-0000-0000-000000000000",
      "-o",
      "resumed.asc",
      "--non-interactive",
      ...shareArgs(2),
    ]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("wrong-nonce");
    expect(wrong.stdout).toContain("wrong nonce");
    expect(await status()).toMatchObject({ started: true, nonce: st.nonce, progress: 1 });

    // both servers refuse a share already given in this attempt (400), unlike unseal, which ignores it silently
    const dup = await sk(["--resume", "-o", "resumed.asc", "--non-interactive", ...shareArgs(1, 2)]);
    expect(dup.code).toBe(2);
    expect(dup.stderr).toMatch(/share from share1 \[[0-9a-f]{16}\]: duplicate 1\/3/);
    expect(dup.stderr).toMatch(/share from share2 \[[0-9a-f]{16}\]: accepted 2\/3/);
    expect(await status()).toMatchObject({ started: true, progress: 2 });

    const done = await sk(["--resume", "--nonce", st.nonce, "-o", "resumed.asc", "--non-interactive", ...shareArgs(3)]);
    expect(done.code, done.stderr).toBe(0);
    const token = gpgDecrypt(alice, join(work, "resumed.asc")).trim();
    secrets.push(token);
    expect((await lookupSelf(token)).policies).toContain("root");
    const c = node.client(token);
    await c.request("POST", "auth/token/revoke-self");
    await c.close();
  });

  it("--resume with nothing running", async () => {
    const none = await sk(["--resume", "-o", "x.asc", "--non-interactive", ...shareArgs(1)]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("nothing to resume");
  });

  it("a cancel in the middle", async () => {
    const first = await sk([
      "--pgp-key",
      alice.publicKeyPath,
      "-o",
      "cancelled.asc",
      "--non-interactive",
      ...shareArgs(4),
    ]);
    expect(first.code).toBe(2);
    const nonce = (await status()).nonce;
    const cancel = await sk(["--cancel"]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toContain(`cancelled the root generation attempt ${nonce} (it had 1/3 shares)`);
    expect((await status()).started).toBe(false);
    const again = await sk(["--cancel"]);
    expect(again.stdout).toContain("no root generation attempt was in progress");
  });

  it("a node sealed mid-ceremony (restarted between two shares): clear message, then a clean state", async () => {
    let n = 0;
    const source: ShareSource = {
      async next() {
        n++;
        if (n === 2) await node.restart(); // a Shamir node comes back sealed
        if (n > 3) return null;
        return parseKeyShare(keys[n - 1]!, `share ${n}`);
      },
    };
    const c = node.client(breakGlass);
    const report = await runGenerateRoot({ client: c, source });
    await c.close();
    expect(report.state).not.toBe("complete");
    // Vault 1.21 and OpenBao 2.6.2 answer 503 "Vault is sealed" to the update and to the DELETE that would cancel it
    expect(report.message).toContain("was sealed during the ceremony");
    // the OTP attempt could not be cancelled on a sealed node: the message says to cancel it later
    expect(report.message).toContain("could not cancel the unfinished OTP attempt");
    expect(report.message).toContain("503 Vault is sealed");
    const sealed = await sk(["--status"]);
    expect(sealed.code).toBe(2);
    expect(sealed.stderr).toContain("is sealed: root generation needs an unsealed node");
    await unsealNodes([node], keys.slice(0, 3));
    // both servers keep the attempt in memory only: a restart loses it
    expect((await status()).started).toBe(false);
  });
});

describe("which API the server offers", () => {
  it(`${name}: the authenticated path and the refusal when nothing is usable`, async () => {
    const noToken = await sk(["--status", "--endpoint", "authenticated"], { noToken: true });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toContain("offers no usable root generation API");
    expect(noToken.stderr).toContain("not tried: no token (set BAO_TOKEN or VAULT_TOKEN)");
    expect(noToken.stderr).toContain("disable_unauthed_generate_root_endpoints = false");
    if (kind === "vault") {
      // HashiCorp Vault 1.21 has no /sys/generate-root-token: an invalid token gets 403 (Vault checks the token
      // first), and even a valid root token finds no such path
      const bogus = await sk(["--status", "--endpoint", "authenticated"], { env: { VAULT_TOKEN: "hvs.bogus" } });
      expect(bogus.code).toBe(2);
      expect(bogus.stderr).toContain("generate-root-token/attempt (needs a token): 403: the token may not use it");
      const made = await sk(["--print-token", "--non-interactive", ...shareArgs(1, 3, 5)]);
      const token = /root token \(you asked for it in plaintext\): (\S+)/.exec(made.stdout)![1]!;
      const valid = await sk(["--status", "--endpoint", "authenticated"], { env: { VAULT_TOKEN: token } });
      expect(valid.code).toBe(2);
      expect(valid.stderr).toMatch(
        /generate-root-token\/attempt \(needs a token\): 40[45] \(this server has no such path\)/,
      );
      const c = node.client(token);
      await c.request("POST", "auth/token/revoke-self");
      await c.close();
      const unauth = await sk(["--status", "--endpoint", "unauthenticated"]);
      expect(unauth.code).toBe(0);
      expect(unauth.stdout).toContain("/v1/sys/generate-root is usable (3 shares required)");
    } else {
      // OpenBao 2.6.2 after the root token is revoked: the unauthenticated pair is off (405), so without a token
      // nothing is usable; a token of the default policy is refused on the token path (403); the break-glass one works
      const auto = await sk(["--status"], { noToken: true });
      expect(auto.code).toBe(2);
      expect(auto.stderr).toMatch(/\/v1\/sys\/generate-root\/attempt: 405 /);
      expect(auto.stderr).toContain("not tried: no token (set BAO_TOKEN or VAULT_TOKEN)");
      expect(auto.stderr).not.toMatch(/^error: 40[0-9]/m);
      const denied = await sk(["--status"], { env: { BAO_TOKEN: defaultOnly! } });
      expect(denied.code).toBe(2);
      expect(denied.stderr).toContain("generate-root-token/attempt (needs a token): 403: the token may not use it");
      const allowed = await sk(["--status"]);
      expect(allowed.code, allowed.stderr).toBe(0);
      expect(allowed.stdout).toContain("/v1/sys/generate-root-token is usable (3 shares required)");
      const forced = await sk(["--status", "--endpoint", "unauthenticated"]);
      expect(forced.code).toBe(2);
      expect(forced.stderr).toMatch(/\/v1\/sys\/generate-root\/attempt: 405 /);
    }
  });

  it(`${name}: ${kind === "openbao" ? "with no token allowed on the token path, the listener option re-opens /sys/generate-root (restart, quorum unseal, no token)" : "the listener option is unknown (a warning in the log); /sys/generate-root is open without it"}`, async () => {
    // what an operator does who revoked the root token and holds no token for sys/generate-root-token: turn the
    // listener option off, restart the node, unseal it, generate a root token with no token at all, then undo it
    const option = "disable_unauthed_generate_root_endpoints = false";
    const withOption = (hcl: string) => hcl.replace(/listener "tcp" \{\n/, (m) => `${m}  ${option}\n`);
    node.editConfig(withOption);
    await node.restart();
    await unsealNodes([node], keys.slice(0, 3));
    if (kind === "vault") {
      // measured on Vault 1.21.0: the server starts and warns; its unauthenticated pair was never off
      expect(node.readLog()).toContain(
        "unknown or unsupported field disable_unauthed_generate_root_endpoints found in configuration",
      );
    }
    try {
      const shown = await sk(["--status"], { noToken: true });
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toContain("/v1/sys/generate-root is usable (3 shares required)");
      const made = await sk(["--print-token", "--non-interactive", ...shareArgs(2, 3, 4)], { noToken: true });
      expect(made.code, made.stderr).toBe(0);
      expect(made.stderr).toContain("via /v1/sys/generate-root,");
      const token = /root token \(you asked for it in plaintext\): (\S+)/.exec(made.stdout)![1]!;
      expect((await lookupSelf(token)).policies).toContain("root");
      const c = node.client(token);
      await c.request("POST", "auth/token/revoke-self");
      await c.close();
    } finally {
      node.editConfig((hcl) => hcl.replace(`  ${option}\n`, ""));
      await node.restart();
      await unsealNodes([node], keys.slice(0, 3));
    }
    // the option undone: on OpenBao the unauthenticated pair is off again, on Vault it never was
    const after = await sk(["--status"], { noToken: true });
    if (kind === "openbao") {
      expect(after.code).toBe(2);
      expect(after.stderr).toMatch(/\/v1\/sys\/generate-root\/attempt: 405 /);
    } else {
      expect(after.code, after.stderr).toBe(0);
    }
  });
});

describe("hygiene", () => {
  it("no share or token in any output or transcript", () => {
    const transcript = readFileSync(join(work, "otp.jsonl"), "utf8");
    for (const s of secrets) {
      for (const o of [...outputs, transcript]) expect(o).not.toContain(s);
    }
  });
});
