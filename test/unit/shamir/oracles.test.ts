import secrets from "secrets.js-grempe";
import { combine as sssCombine, split as sssSplit } from "shamir-secret-sharing";
import { describe, expect, it } from "vitest";
import { combineShares } from "../../../src/shamir/combine.js";
import { combineSecretsJsShares } from "../../../src/shamir/secretsjs.js";
import { splitSecret } from "../../../src/shamir/split.js";
import { runSealkeeper } from "../../harness/run-cli.js";

/** Oracles: shamir-secret-sharing (privy, audited; Vault's format) and secrets.js-grempe (legacy, read-only). */
describe("shamir-secret-sharing (same format)", () => {
  const secrets32 = [new Uint8Array(32).fill(0), Uint8Array.from({ length: 32 }, (_, i) => i * 7), new Uint8Array(1)];

  it("combines our shares", async () => {
    for (const secret of secrets32) {
      const shares = splitSecret(secret, 5, 3);
      expect(await sssCombine([shares[4]!, shares[1]!, shares[2]!])).toEqual(secret);
      expect(await sssCombine(shares)).toEqual(secret);
    }
  });

  it("makes shares we combine", async () => {
    for (const secret of secrets32) {
      const shares = await sssSplit(secret, 6, 4);
      expect(combineShares(shares.slice(2))).toEqual(secret);
      expect(combineShares([shares[5]!, shares[0]!, shares[3]!, shares[1]!])).toEqual(secret);
    }
  });
});

describe("secrets.js-grempe (legacy format, read only)", () => {
  it("combines its shares through the library and through `combine --share-format secretsjs`", async () => {
    const secretHex = "00ff10deadbeef";
    const shares = secrets.share(secretHex, 5, 3);
    expect(Buffer.from(await combineSecretsJsShares(shares.slice(1, 4))).toString("hex")).toBe(secretHex);
    const run = await runSealkeeper(["shamir", "combine", "--share-format", "secretsjs", "--secret-encoding", "hex"], {
      stdin: `${shares[0]}\n\n${shares[4]}\n${shares[2]}\n`,
    });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${secretHex}\n`);
  });

  it("names the share it cannot parse, and refuses a repeated id", async () => {
    const shares = secrets.share("abcdef", 3, 2);
    const bad = await runSealkeeper(["shamir", "combine", "--share-format", "secretsjs"], {
      stdin: `${shares[0]}\nnot-a-share\n`,
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("share 2 is not a secrets.js share (share 2 is line 2 of stdin)");
    await expect(combineSecretsJsShares([shares[0]!, shares[0]!])).rejects.toThrow(
      "share 2 has the same id (1) as share 1",
    );
  });

  it("is not mistaken for Vault's format", async () => {
    const shares = secrets.share("abcdef", 3, 2);
    const run = await runSealkeeper(["shamir", "combine"], { stdin: `${shares[0]}\n${shares[1]}\n` });
    // secrets.js shares (8 bits) are odd-length hex: neither hex bytes nor padded base64
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("share 1 (line 1 of stdin) is neither hex nor base64");
    expect(run.stderr).toContain("use --share-format secretsjs");
  });
});
