/**
 * The share sources' handling of a passphrase-protected key: the cipher's typed reason (OpenShareError.reason), not
 * the text of its message, decides whether to ask for the passphrase; a wrong one is explained and asked again.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { armor, Encrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { beforeAll, describe, expect, it } from "vitest";
import { interactiveShareSource, scriptedShareSource } from "../../../src/ceremony/share-source.js";
import { OpenShareError } from "../../../src/ciphers/errors.js";
import type { Prompter } from "../../../src/prompt/prompter.js";

const SHARE = `${"ab".repeat(32)}05`;
const ctx = { progressLine: "0/3", remaining: 3 };

/** A prompter that answers from a script, in order, and records what was asked and said. */
function scripted(answers: string[]): Prompter & { asked: string[]; said: string[] } {
  const asked: string[] = [];
  const said: string[] = [];
  const next = (message: string) => {
    asked.push(message);
    const a = answers.shift();
    if (a === undefined) throw new Error(`unexpected prompt: ${message}`);
    return a;
  };
  return {
    asked,
    said,
    secret: async (m) => next(m),
    input: async (m) => next(m),
    select: async <T>(m: string) => next(m) as T,
    confirm: async (m) => next(m) === "y",
    say: (line) => said.push(line),
  };
}

describe("share sources and a passphrase-protected age identity", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-share-source-"));
  const sealedPath = join(dir, "alice.age");
  const idPath = join(dir, "alice.key.age");
  beforeAll(async () => {
    const id = await generateX25519Identity();
    const seal = new Encrypter();
    seal.addRecipient(await identityToRecipient(id));
    writeFileSync(sealedPath, armor.encode(await seal.encrypt(SHARE)));
    const protect = new Encrypter();
    protect.setPassphrase("correct horse");
    protect.setScryptWorkFactor(10);
    writeFileSync(idPath, armor.encode(await protect.encrypt(`${id}\n`)), { mode: 0o600 });
  });

  it("scripted: no passphrase -> OpenShareError reason passphrase-required, naming the file", async () => {
    const source = scriptedShareSource({
      files: [sealedPath],
      identities: [{ path: idPath, content: readId() }],
      cwd: dir,
    });
    const err = await source.next(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenShareError);
    expect(err).toMatchObject({ reason: "passphrase-required" });
    expect((err as Error).message).toContain(`cannot open share file ${sealedPath} with ${idPath}`);
  });

  it("scripted: a wrong passphrase keeps its reason; the right one opens the share", async () => {
    const identities = [{ path: idPath, content: readId() }];
    const wrong = scriptedShareSource({ files: [sealedPath], identities, passphrase: "nope", cwd: dir });
    await expect(wrong.next(ctx)).rejects.toMatchObject({ reason: "wrong-passphrase" });
    // a source that failed has zeroed its identities' bytes (issue 34): the next run reads the file again
    expect(identities[0]!.content.every((b) => b === 0)).toBe(true);
    const again = [{ path: idPath, content: readId() }];
    const right = scriptedShareSource({
      files: [sealedPath],
      identities: again,
      passphrase: "correct horse",
      cwd: dir,
    });
    expect((await right.next(ctx))?.hex).toBe(SHARE);
    // and one whose files are all open has zeroed them too
    expect(again[0]!.content.every((b) => b === 0)).toBe(true);
  });

  it("interactive: asks for the passphrase because of the reason; a wrong one is explained and asked again", async () => {
    const p = scripted(["file", sealedPath, idPath, "wrong", "file", sealedPath, idPath, "correct horse", "alice"]);
    const share = await interactiveShareSource(p, { cwd: dir }).next(ctx);
    expect(share?.hex).toBe(SHARE);
    expect(share?.operator).toBe("alice");
    expect(p.asked.filter((m) => m === "Passphrase for your key:")).toHaveLength(2);
    expect(
      p.said.some((l) =>
        /^✗ cannot open share file .*wrong passphrase for the age identity file\. Try again\.$/.test(l),
      ),
    ).toBe(true);
  });

  it("interactive: a message that merely mentions a passphrase (a file name) does not ask for one", async () => {
    const odd = join(dir, "my-passphrase-notes.txt");
    writeFileSync(odd, "AGE-SECRET-KEY-1NOTREALLYAKEY!!\n");
    const p = scripted(["file", sealedPath, odd, "stop"]);
    expect(await interactiveShareSource(p, { cwd: dir }).next(ctx)).toBeNull();
    expect(p.asked).not.toContain("Passphrase for your key:");
    expect(p.said.some((l) => l.includes("my-passphrase-notes.txt") && l.endsWith("Try again."))).toBe(true);
  });

  function readId(): Uint8Array {
    return new Uint8Array(readFileSync(idPath));
  }
});
