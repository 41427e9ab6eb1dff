/**
 * Init's two sealing modes and its nothing-lost guarantee, against real single nodes:
 * - all-PGP operators: the SERVER encrypts (Vault's pgp_keys); the files open with the real gpg, and the message
 *   structure is what sealkeeper itself would write;
 * - a failure injected after the server answered: every sealed share survives in a rescue bundle and unseals the node;
 * - a ceremony file with a schema error names the line.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runInitCeremony } from "../../src/ceremony/init.js";
import { parseOperatorSpec, parseRecipientSpec } from "../../src/ciphers/recipient-spec.js";
import { ShareStore } from "../../src/store/share-store.js";
import { startNode, type TestNode } from "../harness/cluster.js";
import {
  gpgDecrypt,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
  stopGpgAgent,
} from "../harness/operators.js";
import { runSealkeeper } from "../harness/run-cli.js";

let serverSealed: TestNode;
let rescued: TestNode;
let work: string;
let ops: PgpOperator[];

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "sk-init-modes-"));
  const keys = join(work, "keys");
  mkdirSync(keys);
  const nodes = Promise.all([startNode({ storage: "file" }), startNode({ storage: "file" })]);
  const home = makeGnupgHome(work);
  ops = ["ann", "ben", "cat"].map((n) => makePgpOperator(home, keys, n));
  [serverSealed, rescued] = await nodes;
}, 120_000);

afterAll(async () => {
  await Promise.all([serverSealed?.stop(), rescued?.stop()]);
  stopGpgAgent(join(work, "gnupg"));
});

function packetTags(file: string, home: string): string {
  return execFileSync("gpg", ["--homedir", home, "--batch", "--list-packets", file], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  })
    .split("\n")
    .filter((l) => l.startsWith(":"))
    .map((l) => l.split(" ")[0])
    .join(" ");
}

describe("all-PGP operators: the server seals the shares (Vault's pgp_keys)", () => {
  it("writes armored files that gpg opens to hex shares, with the same packet structure as sealkeeper's own", async () => {
    const out = join(work, "server-sealed");
    const r = await runSealkeeper([
      "init",
      "-a",
      serverSealed.address,
      "-n",
      "3",
      "-t",
      "2",
      ...ops.flatMap((o) => ["--operator", `${o.name}=pgp:${o.publicKeyPath}`]),
      "--root-token-recipient",
      `pgp:${ops[0]!.publicKeyPath}`,
      "-o",
      out,
      "--format",
      "json",
    ]);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ kind: "unseal", sealedBy: "server", threshold: 2, shares: 3 });
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    expect(
      manifest.operators.every(
        (o: { sealedBy: string; shareDigest: null }) => o.sealedBy === "server" && o.shareDigest === null,
      ),
    ).toBe(true);
    expect(manifest.rootToken.sealedBy).toBe("server");
    const shares = ops.map((o) => gpgDecrypt(o, join(out, `${o.name}.asc`)));
    for (const s of shares) expect(s).toMatch(/^[0-9a-f]{66}$/);
    expect(gpgDecrypt(ops[0]!, join(out, "root-token.asc"))).toMatch(/^hvs\.|^s\./);
    // Vault's message (server-sealed) and ours (client-sealed) have the same packet structure: PKESK, SEIPD v1
    const home = ops[0]!.gnupgHome;
    const vaultTags = packetTags(join(out, "ann.asc"), home);
    const clientOut = join(work, "client-probe");
    mkdirSync(clientOut);
    const { sealShare, loadRecipient } = await import("../../src/ciphers/registry.js");
    const recipient = await loadRecipient(parseRecipientSpec(`pgp:${ops[0]!.publicKeyPath}`));
    writeFileSync(join(clientOut, "ours.asc"), await sealShare(recipient, Buffer.from(shares[0]!)));
    expect(packetTags(join(clientOut, "ours.asc"), home)).toBe(vaultTags);
    expect(vaultTags).toBe(":pubkey :encrypted :literal");
    // the node unseals with two of the server-sealed shares
    const u = await runSealkeeper(["unseal", "-a", serverSealed.address], { stdin: `${shares[0]}\n${shares[2]}\n` });
    expect(u.code).toBe(0);
  });
});

describe("a failure after the server answered loses nothing", () => {
  it("puts every sealed share in a 0600 rescue bundle that opens and unseals the node", async () => {
    const rescueDir = join(work, "rescue");
    mkdirSync(rescueDir);
    const age = makeAgeOperator(join(work, "keys"), "dan");
    const operators = [
      parseOperatorSpec(`ann=pgp:${ops[0]!.publicKeyPath}`),
      parseOperatorSpec(`dan=age:${age.recipient}`),
      parseOperatorSpec(`cat=pgp:${ops[2]!.publicKeyPath}`),
    ];
    const client = rescued.client();
    const err = await runInitCeremony(
      { shares: 3, threshold: 2, operators, rootTokenRecipient: parseRecipientSpec(`age:${age.recipient}`) },
      {
        client,
        store: new ShareStore(join(work, "doomed")),
        cwd: work,
        rescueDirs: [rescueDir],
        afterServerAnswered: () => {
          throw new Error("disk unplugged (injected)");
        },
      },
    ).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(
      /the cluster WAS initialised but writing the shares to .*doomed failed \(disk unplugged \(injected\)\)/,
    );
    expect((err as Error).message).toMatch(/rescue bundle .*sealkeeper-rescue-.*\.json \(0600\)/);
    expect((await client.sealStatus()).initialized).toBe(true);
    const [bundleName] = readdirSync(rescueDir);
    const bundlePath = join(rescueDir, bundleName!);
    expect(statSync(bundlePath).mode & 0o777).toBe(0o600);
    const bundle = JSON.parse(readFileSync(bundlePath, "utf8"));
    expect(bundle.files.map((f: { name: string }) => f.name)).toEqual([
      "ann.asc",
      "dan.age",
      "cat.asc",
      "root-token.age",
    ]);
    // recover as the bundle says: write each content to its name; operators open them with the real tools
    const recovered = join(work, "recovered");
    mkdirSync(recovered);
    for (const f of bundle.files) writeFileSync(join(recovered, f.name), f.content);
    const annShare = gpgDecrypt(ops[0]!, join(recovered, "ann.asc"));
    const danShare = execFileSync("age", ["-d", "-i", age.identityPath, join(recovered, "dan.age")], {
      encoding: "utf8",
    });
    for (const plain of [annShare, danShare]) expect(readFileSync(bundlePath, "utf8")).not.toContain(plain);
    const u = await runSealkeeper(["unseal", "-a", rescued.address], { stdin: `${annShare}\n${danShare}\n` });
    expect(u.code).toBe(0);
    await client.close();
  });
});

describe("ceremony file", () => {
  it("a schema error names the file, line and key; nothing is sent", async () => {
    const file = join(work, "ceremony.yaml");
    writeFileSync(file, "shares: 3\nthreshold: 2\noperators:\n  - name: ann\n    recipent: pgp:keys/ann.pub.asc\n");
    const r = await runSealkeeper(["init", "--ceremony", file, "-a", "http://127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`error: ${file}:5: operators[0].recipent: unknown key\n`);
  });
});
