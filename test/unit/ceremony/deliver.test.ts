/**
 * The one delivery path (deliverSealedItems, used by init, rekey and root generate): with the real ShareStore and the
 * real age cipher, faults injected into the store's file system. Once the server has answered, nothing is lost: the
 * files are written, or every item is in a rescue bundle, or (an item that cannot be sealed) printed once.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { armor, Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { beforeAll, describe, expect, it } from "vitest";
import {
  deliverRootToken,
  deliverSealedItems,
  deliverShares,
  type SealedItem,
  SharesRescuedError,
} from "../../../src/ceremony/deliver-shares.js";
import { parseRecipientSpec } from "../../../src/ciphers/recipient-spec.js";
import { loadRecipient } from "../../../src/ciphers/registry.js";
import type { LoadedRecipient } from "../../../src/ciphers/types.js";
import { SealkeeperError } from "../../../src/errors.js";
import { ShareStore } from "../../../src/store/share-store.js";
import type { VaultClient } from "../../../src/vault/client.js";
import { faultyFs } from "../store/fault-fs.js";

const SHARES = [`${"11".repeat(32)}01`, `${"22".repeat(32)}02`, `${"33".repeat(32)}03`];
const TOKEN = "hvs.CAESIFAKEFAKEFAKEFAKEFAKEFAKEFAKE";

let identity: string;
let recipient: LoadedRecipient;
beforeAll(async () => {
  identity = await generateX25519Identity();
  recipient = await loadRecipient(parseRecipientSpec(`age:${await identityToRecipient(identity)}`));
});

async function open(text: string): Promise<string> {
  const d = new Decrypter();
  d.addIdentity(identity);
  return d.decrypt(armor.decode(text), "text");
}
const fresh = (p: string) => mkdtempSync(join(tmpdir(), `sk-deliver-${p}-`));
const rescued = (dir: string) =>
  JSON.parse(readFileSync(join(dir, readdirSync(dir).find((f) => f.startsWith("sealkeeper-rescue-"))!), "utf8")) as {
    files: { name: string; content: string }[];
  };
/** init's shares for alice, bob and carol, sealed here (client) to one age recipient. */
const initInput = (): Parameters<typeof deliverShares>[0] => ({
  ceremony: "init",
  node: "n1",
  kind: "unseal",
  threshold: 2,
  shares: 3,
  operators: ["alice", "bob", "carol"].map((name) => ({ name, recipient })),
  sealMode: "client",
  keys: SHARES,
  keysB64: [],
});

describe("deliverShares through deliverSealedItems", () => {
  it("writes every share 0600 and the manifest last", async () => {
    const out = fresh("ok");
    const d = await deliverShares(initInput(), { store: new ShareStore(out) });
    expect(d.files.map((f) => f.name)).toEqual(["alice.age", "bob.age", "carol.age", "manifest.json"]);
    for (const [i, f] of d.files.slice(0, 3).entries()) {
      expect(statSync(f.path).mode & 0o777).toBe(0o600);
      expect(await open(readFileSync(f.path, "utf8"))).toBe(SHARES[i]);
    }
    expect(d.plaintext.map((p) => p.hex)).toEqual(SHARES);
  });

  it("a failed write of the 2nd file: every share and the root token in the rescue bundle, opened with age", async () => {
    const out = fresh("enospc");
    const rescueDir = fresh("rescue");
    const store = new ShareStore(out, { fs: faultyFs({ write: (p) => (p.includes("bob") ? "ENOSPC" : undefined) }) });
    const err = await deliverShares(
      { ...initInput(), rootToken: { recipient, sealMode: "client", value: TOKEN } },
      { store, rescueDirs: [rescueDir] },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SharesRescuedError);
    expect((err as Error).message).toMatch(
      /^the cluster WAS initialised but writing the shares to .* failed \(cannot write .*bob\.age: ENOSPC\); all the sealed shares and the sealed root token are saved in the rescue bundle/,
    );
    expect((err as Error).message).not.toContain(SHARES[0]);
    const bundle = rescued(rescueDir);
    expect(bundle.files.map((f) => f.name)).toEqual(["alice.age", "bob.age", "carol.age", "root-token.age"]);
    expect(await Promise.all(bundle.files.map((f) => open(f.content)))).toEqual([...SHARES, TOKEN]);
  });

  it("an item that cannot be sealed after the server answered is printed once, as the EMERGENCY last resort", async () => {
    const out = fresh("unsealable");
    const rescueDir = fresh("rescue2");
    const items: SealedItem[] = [
      { name: "a.age", seal: async () => await loadRecipientSealed(SHARES[0]!), label: "alice", plaintext: SHARES[0]! },
      { name: "b.age", seal: async () => Promise.reject(new Error("no key")), label: "bob", plaintext: SHARES[1]! },
    ];
    let outcome: { unsealable: string[]; written: boolean } | undefined;
    await expect(
      deliverSealedItems(items, {
        store: new ShareStore(out),
        node: "n1",
        rescueDirs: [rescueDir],
        finish: async () => "done",
        onRescue: (o) => {
          outcome = { unsealable: o.unsealable, written: o.result.written };
          return new Error("rescued");
        },
      }),
    ).rejects.toThrow("rescued");
    expect(outcome).toEqual({ unsealable: [`bob: ${SHARES[1]}`], written: true });
    expect(readdirSync(out)).toEqual([]); // sealing comes first: nothing half-written
    expect(rescued(rescueDir).files.map((f) => f.name)).toEqual(["a.age"]);
  });
});

describe("deliverRootToken through deliverSealedItems", () => {
  const generated = (): Parameters<typeof deliverRootToken>[0] => ({
    client: { address: "http://127.0.0.1:8200" } as VaultClient,
    nonce: "n",
    mode: "otp",
    token: TOKEN,
  });
  it("writes the sealed token 0600", async () => {
    const path = join(fresh("token"), "root.age");
    expect(await deliverRootToken(generated(), { recipient, outPath: path })).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await open(readFileSync(path, "utf8"))).toBe(TOKEN);
  });
  it("an unwritable destination: the sealed token in the rescue bundle, exit 2, the token never in the message", async () => {
    const rescueDir = fresh("token-rescue");
    const path = join(fresh("token2"), "no-such-dir", "root.age");
    const err = await deliverRootToken(generated(), { recipient, outPath: path }, { rescueDirs: [rescueDir] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SealkeeperError);
    expect((err as SealkeeperError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(
      /^the new root token was generated but .*root\.age could not be written .*the sealed token is in the rescue bundle /,
    );
    expect((err as Error).message).not.toContain(TOKEN.slice(4));
    expect(await open(rescued(rescueDir).files[0]!.content)).toBe(TOKEN);
  });
});

async function loadRecipientSealed(value: string): Promise<string> {
  const { sealShare } = await import("../../../src/ciphers/registry.js");
  return sealShare(recipient, Buffer.from(value, "utf8"));
}
