/**
 * Issue 25 ("refuse before sending") and issue 26 item 5: what cannot be a share of this cluster is refused with the
 * reason before anything is sent, no progress is consumed, and a person at the prompt is asked again. Messages say
 * what was seen (an empty line, spaces inside, two shares in one file), never the share.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fixedSource, newNode, type QuorumTarget, runQuorum } from "../../../src/ceremony/quorum.js";
import { interactiveShareSource, scriptedShareSource } from "../../../src/ceremony/share-source.js";
import { runUnseal, type UnsealEvent } from "../../../src/ceremony/unseal.js";
import { parseKeyShare } from "../../../src/ceremony/unseal-key.js";
import { UsageError } from "../../../src/errors.js";
import type { Prompter } from "../../../src/prompt/prompter.js";
import { computeShareDigest } from "../../../src/store/share-text.js";
import type { VaultClient } from "../../../src/vault/client.js";
import type { SealStatus } from "../../../src/vault/types.js";

const hex = (n: number) => n.toString(16).padStart(2, "0").repeat(33);
const GOOD = hex(0x11);

function refusal(text: string): string {
  try {
    parseKeyShare(text, "stdin line 2");
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    const message = (err as Error).message;
    for (const word of text.split(/\s+/).filter((w) => w.length > 8)) expect(message).not.toContain(word);
    return message;
  }
  throw new Error("accepted");
}

describe("parseKeyShare says what it saw", () => {
  it.each([
    ["", /is empty \(an empty line\)/],
    ["   ", /is empty/],
    [`${GOOD.slice(0, 30)} ${GOOD.slice(30)}`, /has 1 space\(s\) inside/],
    [`${GOOD} ${hex(0x22)}`, /holds 2 shares on one line/],
    [`${GOOD}\n${hex(0x22)}\n`, /holds 2 lines \(2 shares in one file\?\)/],
    [GOOD.slice(0, -1), /is 65 hex digits, an odd number: a digit was dropped or added/],
    [`${"ab".repeat(32)}00`, /x-coordinate 00 \(its last byte\), which no share has/],
    ["zz!!", /neither hex nor base64/],
  ])("%j", (text, expected) => {
    expect(refusal(text)).toMatch(expected);
  });

  it("a share whose last byte was dropped is still a possible key (32 bytes): the engine refuses it by length", () => {
    expect(parseKeyShare(GOOD.slice(0, -2), "x").bytes.length).toBe(32);
  });
});

/** A node counting shares (never completing below the threshold), recording what it was sent. */
function countingNode(threshold: number) {
  const sent: string[] = [];
  const node = newNode("http://n1", 0, threshold);
  const target: QuorumTarget = {
    node,
    submit: async (s) => {
      sent.push(s.origin);
      return { progress: sent.length, nonce: "n", complete: sent.length >= threshold };
    },
  };
  return { target, sent };
}

describe("the engine refuses a share whose length differs from the cluster's", () => {
  const run = (shares: string[], opts: { known?: number; onRefused?: boolean } = {}) => {
    const n = countingNode(3);
    const refused: string[] = [];
    const done = runQuorum({
      targets: [n.target],
      source: fixedSource(shares.map((s, i) => parseKeyShare(s, `line ${i + 1}`))),
      describe: () => undefined,
      prompt: () => ({ progressLine: "", remaining: 3 }),
      shareLength: () => opts.known,
      ...(opts.onRefused === false ? {} : { onRefused: (_s: unknown, reason: string) => refused.push(reason) }),
    });
    return { n, refused, done };
  };

  it("by the shares counted so far: a 40-hex-digit string after a good share is not sent, no progress consumed", async () => {
    const { n, refused, done } = run([GOOD, "ab".repeat(20), hex(0x22), hex(0x33)]);
    const result = await done;
    expect(n.sent).toEqual(["line 1", "line 3", "line 4"]);
    expect(n.target.node.state).toBe("complete");
    expect(result.sharesUsed).toBe(3);
    expect(refused).toEqual([
      "the share from line 2 is 20 bytes, this cluster's shares are 33 (as those counted so far): a digit dropped or added, or a key of another kind; it was not sent",
    ]);
  });

  it("by what the ceremony knows (the server's share count): even the first share", async () => {
    const { n, refused, done } = run([GOOD.slice(0, -2), GOOD], { known: 33 });
    await done;
    expect(n.sent).toEqual(["line 2"]);
    expect(refused[0]).toMatch(/line 1 is 32 bytes, this cluster's shares are 33 \(by the server's share count\)/);
  });

  it("without a place to say it, the refusal ends the run before sending (a UsageError)", async () => {
    const { n, done } = run([GOOD, "ab".repeat(20)], { onRefused: false });
    await expect(done).rejects.toThrow(UsageError);
    expect(n.sent).toEqual(["line 1"]);
  });
});

/** A sealed node of a cluster of 5 shares (threshold 3) that counts whatever it is sent. */
function sealedNode(sent: string[]): VaultClient {
  let progress = 0;
  const status = (): SealStatus =>
    ({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress, nonce: "n" }) as SealStatus;
  return {
    address: "http://127.0.0.1:1",
    sealStatus: async () => status(),
    unseal: async (req: { key: string }) => {
      sent.push(req.key);
      progress++;
      return status();
    },
  } as unknown as VaultClient;
}

describe("unseal at the prompt: a refused share is asked again", () => {
  it("a 32-byte share (last byte dropped) is refused by the server's share count and the operator asked again", async () => {
    const answers = ["paste", GOOD.slice(0, -2), "", "paste", GOOD, "", "stop"];
    const said: string[] = [];
    const prompter = {
      say: (l: string) => said.push(l),
      select: async () => answers.shift(),
      secret: async () => answers.shift(),
      input: async () => answers.shift(),
      confirm: async () => false,
    } as unknown as Prompter;
    const sent: string[] = [];
    const events: UnsealEvent[] = [];
    const report = await runUnseal({
      clients: [sealedNode(sent)],
      source: interactiveShareSource(prompter, { cwd: "/" }),
      onEvent: (e) => events.push(e),
    });
    expect(sent).toEqual([GOOD]);
    expect(report.sharesUsed).toBe(1);
    expect(report.nodes[0]!.progress).toBe(1);
    const refused = events.find((e) => e.kind === "refused");
    expect(refused).toMatchObject({ reason: expect.stringMatching(/is 32 bytes, this cluster's shares are 33/) });
    // asked again: the progress line is shown once more before the second paste
    expect(said.filter((l) => l.startsWith("progress:"))).toHaveLength(3);
  });
});

describe("a manifest beside a share file", () => {
  const dir = mkdtempSync(join(tmpdir(), "sk-refuse-"));
  const salt = "ab".repeat(32);
  const share = parseKeyShare(GOOD, "x");
  writeFileSync(
    join(dir, "manifest.json"),
    JSON.stringify({
      shares: 2,
      shareDigestSalt: salt,
      operators: [
        { name: "alice", file: "alice.txt", shareDigest: computeShareDigest(salt, share.bytes) },
        { name: "bob", file: "bob.txt", shareDigest: computeShareDigest(salt, parseKeyShare(hex(0x22), "x").bytes) },
      ],
    }),
  );
  const open = (file: string, text: string) => {
    writeFileSync(join(dir, file), `${text}\n`);
    return scriptedShareSource({ files: [file], identities: [], cwd: dir }).next({ progressLine: "", remaining: 1 });
  };

  it("the share listed for the file opens", async () => {
    expect((await open("alice.txt", GOOD))?.operator).toBe("alice");
  });
  it("another share in a listed file is refused, naming the holder", async () => {
    await expect(open("bob.txt", hex(0x33))).rejects.toThrow(
      /bob.txt is not the share manifest.json beside it lists for bob \(from another ceremony, or the file was replaced\): nothing was sent/,
    );
  });
  it("a file the manifest does not list, holding none of its shares, is refused", async () => {
    await expect(open("carol.txt", hex(0x33))).rejects.toThrow(/is none of the shares manifest.json beside it lists/);
  });
  it("a share of the wrong length is refused by the manifest's share count", async () => {
    await expect(open("dave.txt", GOOD.slice(0, -2))).rejects.toThrow(
      /is 32 bytes, while the 2 shares of manifest.json/,
    );
  });
});
