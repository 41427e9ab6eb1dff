/**
 * Issue 26.4: each share's note is its own (a rejection's note never rides on the next, accepted share), and a
 * server's multi-line error is shown on one line.
 */
import { describe, expect, it } from "vitest";
import { classifyFailure, fixedSource, newNode, oneLine, runQuorum } from "../../../src/ceremony/quorum.js";
import type { KeyShare } from "../../../src/ceremony/unseal-key.js";
import { VaultHttpError } from "../../../src/errors.js";

const share = (n: number, operator: string): KeyShare => ({
  hex: `${"ab".repeat(32)}0${n}`,
  bytes: new Uint8Array(33),
  fingerprint: `f${n}`.padEnd(16, "0"),
  origin: `share ${n}`,
  operator,
});

describe("notes true to the node", () => {
  it("a rejected set's note is not carried by the next accepted share", async () => {
    const node = newNode("n", 0, 2);
    const notes: (string | undefined)[] = [];
    let calls = 0;
    await runQuorum({
      targets: [
        {
          node,
          submit: async () => {
            calls++;
            if (calls === 2)
              throw new VaultHttpError("n", "PUT", "/v1/sys/generate-root/update", 400, ["verification failed"]);
            return { progress: 1, complete: false };
          },
        },
      ],
      source: fixedSource([share(1, "alice"), share(2, "bob"), share(3, "carol")]),
      describe: (outcome, { who }) => (outcome === "rejected-set" ? `rejected at ${who}` : undefined),
      prompt: () => ({ progressLine: "", remaining: 1 }),
      onShare: () => notes.push(node.message),
    });
    expect(notes).toEqual([undefined, "rejected at bob", undefined]);
  });

  it("a server's multi-line error is one line", () => {
    expect(oneLine("1 error occurred:\n\t* failed to write keys to storage: node is not the leader\n\n")).toBe(
      "failed to write keys to storage: node is not the leader",
    );
    expect(oneLine("2 errors occurred:\n\t* a\n\t* b\n\n")).toBe("a; b");
    const f = classifyFailure(new VaultHttpError("n", "PUT", "/v1/x", 500, ["1 error occurred:\n\t* boom\n\n"]));
    expect(f.text).toBe("boom");
  });
});
