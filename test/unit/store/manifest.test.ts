import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildManifest,
  findManifestOperator,
  type ManifestInput,
  readManifest,
  validateManifest,
} from "../../../src/store/manifest.js";
import { computeShareDigest } from "../../../src/store/share-text.js";
import { VERSION } from "../../../src/version.js";

const SALT = "ab".repeat(32);
const H = (c: string) => c.repeat(64);
const share = (x: number) => Uint8Array.from([...new Uint8Array(32).fill(x * 3), x]);

function input(over: Partial<ManifestInput> = {}): ManifestInput {
  return {
    node: "https://10.0.0.1:8200",
    kind: "unseal",
    threshold: 2,
    shares: 3,
    created: new Date("2026-01-02T03:04:05Z"),
    shareDigestSalt: SALT,
    operators: [
      {
        name: "alice",
        recipient: { type: "pgp", fingerprint: "A".repeat(40) },
        file: "alice.asc",
        fileSha256: H("1"),
        sealedBy: "server",
      },
      {
        name: "bob",
        recipient: { type: "age", fingerprint: "age1bob" },
        file: "bob.age",
        fileSha256: H("2"),
        sealedBy: "client",
        share: share(2),
      },
      {
        name: "carol",
        recipient: { type: "age", fingerprint: "age1carol" },
        file: "carol.age",
        fileSha256: H("3"),
        sealedBy: "client",
        share: share(9),
      },
    ],
    rootToken: {
      file: "root-token.asc",
      fileSha256: H("4"),
      recipient: { type: "pgp", fingerprint: "B".repeat(40) },
      sealedBy: "server",
    },
    ...over,
  };
}

describe("buildManifest", () => {
  it("records salted digests and indexes of the shares it saw, and null for server-sealed ones", () => {
    const m = buildManifest(input());
    expect(m).toMatchObject({
      format: "sealkeeper-ceremony-manifest",
      version: 1,
      toolVersion: VERSION,
      created: "2026-01-02T03:04:05.000Z",
      shareDigestSalt: SALT,
      rootToken: { file: "root-token.asc", recipientType: "pgp", recipientFingerprint: "B".repeat(40) },
    });
    expect(m.operators.map((o) => [o.name, o.keyType, o.sealedBy, o.shareIndex])).toEqual([
      ["alice", "pgp", "server", null],
      ["bob", "age", "client", 2],
      ["carol", "age", "client", 9],
    ]);
    expect(m.operators[0]!.shareDigest).toBeNull();
    expect(m.operators[1]!.shareDigest).toBe(computeShareDigest(SALT, share(2)));
    expect(m.operators[1]!.shareDigest).not.toBe(computeShareDigest("cd".repeat(32), share(2)));
  });

  it("draws a fresh salt per manifest", () => {
    const a = buildManifest(input({ shareDigestSalt: undefined }));
    const b = buildManifest(input({ shareDigestSalt: undefined }));
    expect(a.shareDigestSalt).toMatch(/^[0-9a-f]{64}$/);
    expect(a.shareDigestSalt).not.toBe(b.shareDigestSalt);
  });

  it("never contains a share", () => {
    const text = JSON.stringify(buildManifest(input()));
    for (const x of [2, 9]) expect(text).not.toContain(Buffer.from(share(x)).toString("hex"));
  });
});

describe("validateManifest", () => {
  const good = () => JSON.parse(JSON.stringify(buildManifest(input())));
  it.each<[string, (m: Record<string, unknown> & { operators: Record<string, unknown>[] }) => void, RegExp]>([
    ["operators != shares", (m) => m.operators.pop(), /operators: 2 operators listed for 3 shares/],
    ["threshold > shares", (m) => (m.threshold = 4), /threshold: threshold 4 is greater than shares 3/],
    [
      "duplicate names",
      (m) => (m.operators[1]!.name = "alice"),
      /operators.1.name: operator name "alice" appears twice/,
    ],
    ["duplicate files", (m) => (m.operators[2]!.file = "bob.age"), /file "bob.age" appears twice/],
    ["unknown key type", (m) => (m.operators[0]!.keyType = "kms"), /operators.0.keyType: expected one of pgp, age/],
    ["path in file name", (m) => (m.operators[0]!.file = "../x.asc"), /operators.0.file: expected a plain file name/],
    ["bad hash", (m) => (m.operators[0]!.fileSha256 = "xyz"), /operators.0.fileSha256/],
    ["wrong format", (m) => (m.format = "other"), /format/],
    [
      "root token file reused",
      (m) => ((m.rootToken as { file: string }).file = "bob.age"),
      /root token file "bob.age"/,
    ],
  ])("refuses %s", (_, mutate, message) => {
    const m = good();
    mutate(m);
    expect(() => validateManifest(m, "m.json")).toThrow(/^m.json is not a valid sealkeeper manifest: /);
    expect(() => validateManifest(m, "m.json")).toThrow(message);
  });
});

describe("readManifest and findManifestOperator", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sk-manifest-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a manifest back", async () => {
    const m = buildManifest(input());
    await writeFile(join(dir, "manifest.json"), JSON.stringify(m));
    expect(await readManifest(join(dir, "manifest.json"))).toEqual(m);
  });
  it("says clearly when the file is missing, not JSON, or not a manifest", async () => {
    await expect(readManifest(join(dir, "none.json"))).rejects.toThrow(/cannot read manifest .*none.json: ENOENT/);
    await writeFile(join(dir, "bad.json"), "{ not json");
    await expect(readManifest(join(dir, "bad.json"))).rejects.toThrow(/bad.json is not JSON/);
    await writeFile(join(dir, "other.json"), "{}");
    await expect(readManifest(join(dir, "other.json"))).rejects.toThrow(
      /other.json is not a valid sealkeeper manifest/,
    );
  });
  it("finds an operator by file name, else by file hash", () => {
    const m = buildManifest(input());
    expect(findManifestOperator(m, "bob.age", "0")?.name).toBe("bob");
    expect(findManifestOperator(m, "renamed.age", H("3"))?.name).toBe("carol");
    expect(findManifestOperator(m, "x", "y")).toBeNull();
  });
});
