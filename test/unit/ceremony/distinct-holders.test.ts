/**
 * Issue 26.1: one person must not hold two shares. Two holders whose recipients share a key (the same PGP key, the
 * same age recipient given as a literal and in a recipients file, a PGP encryption subkey reused under another
 * primary key) are refused before anything is sent, naming both. Keys made by the real gpg and age-keygen.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOperators } from "../../../src/ceremony/deliver-shares.js";
import { parseOperatorSpec } from "../../../src/ciphers/recipient-spec.js";
import { UsageError } from "../../../src/errors.js";
import {
  type AgeOperator,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  type PgpOperator,
  shareEncryptionSubkey,
  stopAllGpgAgents,
} from "../../harness/operators.js";

let dir: string;
let alice: PgpOperator;
let bob: PgpOperator;
let carol: PgpOperator;
let dave: AgeOperator;
let erin: AgeOperator;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sk-holders-"));
  const home = makeGnupgHome(dir);
  alice = makePgpOperator(home, dir, "alice");
  bob = makePgpOperator(home, dir, "bob");
  carol = makePgpOperator(home, dir, "carol");
  // carol's key also carries alice's encryption subkey: a message to carol can go to alice's subkey
  shareEncryptionSubkey(carol, alice);
  dave = makeAgeOperator(dir, "dave");
  erin = makeAgeOperator(dir, "erin");
}, 60_000);
afterAll(() => stopAllGpgAgents());

const load = (...specs: string[]) => loadOperators(specs.map(parseOperatorSpec), dir);

describe("two holders with one key are refused (issue 26.1)", () => {
  it("the same PGP key file twice, names both holders", async () => {
    const err = await load(
      `alice=pgp:${alice.publicKeyPath}`,
      `mallory=pgp:${alice.publicKeyPath}`,
      `bob=pgp:${bob.publicKeyPath}`,
    ).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/operators alice \(pgp:.*alice\.pub\.asc\) and mallory \(pgp:.*alice\.pub\.asc\)/);
    expect(err.message).toContain(alice.fingerprint);
    expect(err.message).toMatch(/nothing was sent/);
  });

  it("the same PGP key in two files (a copy)", async () => {
    const copy = join(dir, "copy-of-alice.asc");
    writeFileSync(copy, readFileSync(alice.publicKeyPath));
    await expect(load(`alice=pgp:${alice.publicKeyPath}`, `bob=pgp:${copy}`)).rejects.toThrow(
      /operators alice .* and bob /,
    );
  });

  it("a PGP encryption subkey shared by two primary keys", async () => {
    const err = await load(`alice=pgp:${alice.publicKeyPath}`, `carol=pgp:${carol.publicKeyPath}`).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/operators alice .* and carol /);
    expect(err.message).toMatch(
      new RegExp(
        `pgp subkey [0-9A-F]{40} of ${alice.fingerprint}, the same key as pgp subkey [0-9A-F]{40} of ${carol.fingerprint}`,
      ),
    );
  });

  it("the same age recipient as a literal and in a recipients file", async () => {
    const file = join(dir, "dave-recipients.txt");
    writeFileSync(file, `# dave\n${dave.recipient}\n`);
    const err = await load(`dave=age:${dave.recipient}`, `erin=age:${erin.recipient}`, `frank=age:${file}`).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toMatch(/operators dave \(age:age1.*\) and frank \(age:.*dave-recipients\.txt\)/);
    expect(err.message).toContain(`age recipient ${dave.recipient}`);
  });

  it("a recipients file listing another holder's recipient among others", async () => {
    const file = join(dir, "team.txt");
    writeFileSync(file, `${erin.recipient}\n${dave.recipient}\n`);
    await expect(load(`team=age:${file}`, `dave=age:${dave.recipient}`)).rejects.toThrow(/operators team .* and dave /);
  });

  it("distinct holders of mixed types load", async () => {
    const ops = await load(
      `alice=pgp:${alice.publicKeyPath}`,
      `bob=pgp:${bob.publicKeyPath}`,
      `dave=age:${dave.recipient}`,
      `erin=age:${erin.recipient}`,
    );
    expect(ops.map((o) => o.name)).toEqual(["alice", "bob", "dave", "erin"]);
  });
});
