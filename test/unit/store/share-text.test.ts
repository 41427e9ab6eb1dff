import { describe, expect, it } from "vitest";
import { computeShareDigest, decodeShareText, sha256Hex, shareIndexOf } from "../../../src/store/share-text.js";

const share = Uint8Array.from([...new Uint8Array(32).fill(0xab), 7]);
const hex = Buffer.from(share).toString("hex");

describe("decodeShareText", () => {
  it("accepts the hex string of a 33-byte share, with surrounding whitespace, any case", () => {
    expect(decodeShareText(hex)).toEqual(share);
    expect(decodeShareText(new TextEncoder().encode(`${hex.toUpperCase()}\n`), 5)).toEqual(share);
    expect(shareIndexOf(share)).toBe(7);
  });
  it("accepts the 32-byte root key when there is a single share", () => {
    const key = "cd".repeat(32);
    expect(decodeShareText(key, 1)).toHaveLength(32);
    expect(shareIndexOf(decodeShareText(key))).toBeNull();
    expect(() => decodeShareText(key, 3)).toThrow(/expected 33 bytes \(66 hex digits\), got 32 bytes/);
    expect(() => decodeShareText(hex, 1)).toThrow(/expected 32 bytes \(64 hex digits\), got 33 bytes/);
  });
  it.each([
    ["not hex", "zz".repeat(33), /expected a hex string/],
    ["odd length", `${hex}0`, /expected a hex string/],
    ["too short", "ab".repeat(10), /got 10 bytes/],
    ["empty", "", /got 0 bytes/],
    ["x coordinate 0", "ab".repeat(32) + "00", /x coordinate \(last byte\) is 0/],
  ])("refuses %s without repeating it", (_, text, message) => {
    let error: unknown;
    try {
      decodeShareText(text, 5);
    } catch (err) {
      error = err;
    }
    // the leak check runs on an error that must exist (it used to run only inside the catch)
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    if (text.length > 4) expect((error as Error).message).not.toContain(text.slice(0, 8));
  });
});

describe("digests", () => {
  it("is sha256(salt || share), hex", () => {
    const salt = "00".repeat(32);
    expect(computeShareDigest(salt, share)).toBe(sha256Hex(Buffer.concat([Buffer.alloc(32), share])));
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
