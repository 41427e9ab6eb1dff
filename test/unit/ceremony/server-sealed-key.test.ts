/**
 * Issue 34, item 6: shares sealed by the server (Vault's pgp_keys) were accepted when the first packet was a PKESK,
 * to whatever key. Now the PKESK's key ID must be the operator's encryption key: a hostile node cannot hand back files
 * nobody can open while init reports success.
 */
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { beforeAll, describe, expect, it } from "vitest";
import { deliverShares, SharesRescuedError } from "../../../src/ceremony/deliver-shares.js";
import { parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import { checkServerSealedShare, loadRecipient, sealShare } from "../../../src/ciphers/registry.js";
import type { LoadedRecipient } from "../../../src/ciphers/types.js";
import { ShareStore } from "../../../src/store/share-store.js";

const SHARE = `${"ab".repeat(32)}01`;
let alice: LoadedRecipient;
let mallory: LoadedRecipient;

async function recipientFor(name: string, dir: string): Promise<LoadedRecipient> {
  const { publicKey } = await openpgp.generateKey({
    userIDs: [{ name, email: `${name}@example.org` }],
    type: "ecc",
    curve: "curve25519Legacy",
    format: "armored",
  });
  writeFileSync(join(dir, `${name}.asc`), publicKey);
  return loadRecipient(parseRecipientSpec(`pgp:${name}.asc`), { cwd: dir });
}

/** What Vault returns in keys_base64: base64 of the binary message (v3 PKESK + SEIPD v1, as sealShare makes). */
async function serverSealedTo(r: LoadedRecipient): Promise<string> {
  const armored = await sealShare(r, Buffer.from(SHARE, "utf8"));
  // the armor's body: every line but the BEGIN/END lines, header lines and the "=XXXX" checksum
  const body = armored
    .split(/\r?\n/)
    .filter((l) => l !== "" && !l.startsWith("-----") && !/^=.{4}$/.test(l) && !/^[A-Za-z-]+: /.test(l))
    .join("");
  return Buffer.from(body, "base64").toString("base64");
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-server-sealed-"));
  alice = await recipientFor("alice", dir);
  mallory = await recipientFor("mallory", dir);
});

describe("a share the server sealed", () => {
  it("is accepted when addressed to the operator's encryption subkey, refused when to another key", async () => {
    await expect(checkServerSealedShare(alice, await serverSealedTo(alice))).resolves.toBeUndefined();
    await expect(checkServerSealedShare(alice, await serverSealedTo(mallory))).rejects.toThrow(
      new RegExp(
        `^the server sealed it to key ID [0-9A-F]{16}, not to the encryption key of ${alice.fingerprint} \\([0-9A-F]{16}\\): its holder could not open it$`,
      ),
    );
  });

  it("init's delivery: a share sealed to the wrong key is not reported as success; the server's bytes are rescued", async () => {
    const input = async (sealedTo: LoadedRecipient): Promise<Parameters<typeof deliverShares>[0]> => {
      const b64 = await serverSealedTo(sealedTo);
      return {
        ceremony: "init",
        node: "n1",
        kind: "unseal",
        threshold: 1,
        shares: 1,
        operators: [{ name: "alice", recipient: alice }],
        sealMode: "server",
        keys: [Buffer.from(b64, "base64").toString("hex")],
        keysB64: [b64],
      };
    };
    const good = mkdtempSync(join(tmpdir(), "sk-server-sealed-ok-"));
    const d = await deliverShares(await input(alice), {
      store: new ShareStore(good),
      rescueDirs: [mkdtempSync(join(tmpdir(), "sk-server-sealed-rescue-"))],
    });
    expect(d.files.map((f) => f.name)).toEqual(["alice.asc", "manifest.json"]);

    const out = mkdtempSync(join(tmpdir(), "sk-server-sealed-bad-"));
    const rescueDir = mkdtempSync(join(tmpdir(), "sk-server-sealed-rescue-"));
    const err = await deliverShares(await input(mallory), {
      store: new ShareStore(out),
      rescueDirs: [rescueDir],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SharesRescuedError);
    expect((err as Error).message).toMatch(
      /alice's share: the server sealed it to key ID [0-9A-F]{16}, not to the encryption key/,
    );
    expect((err as Error).message).not.toMatch(/EMERGENCY/);
    expect(existsSync(join(out, "manifest.json"))).toBe(false);
  });
});
