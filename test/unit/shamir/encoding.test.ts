import { describe, expect, it } from "vitest";
import { decodeBase64, decodeShare, decodeShares, encodeShare } from "../../../src/shamir/encoding.js";
import { ShamirError } from "../../../src/shamir/errors.js";

describe("share encodings", () => {
  const bytes = Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 0x01]);
  it("writes hex and padded base64 like Vault", () => {
    expect(encodeShare(bytes, "hex")).toBe("deadbeef01");
    expect(encodeShare(bytes, "base64")).toBe("3q2+7wE=");
  });

  it("reads hex first, else base64, ignoring surrounding whitespace and hex case", () => {
    expect(decodeShare("DEADbeef01")).toEqual(bytes);
    expect(decodeShare(" 3q2+7wE=\n")).toEqual(bytes);
    expect(() => decodeShare("3q2+7wE")).toThrow("neither"); // Go's StdEncoding requires the padding
    // "abcd" is both; like the server, hex wins when nothing says otherwise
    expect(decodeShare("abcd")).toEqual(Uint8Array.of(0xab, 0xcd));
    expect(decodeShare("abcd", { encoding: "base64" })).toEqual(Uint8Array.from(Buffer.from("abcd", "base64")));
  });

  it("rejects what is neither, without echoing the value", () => {
    expect(() => decodeShare("not a share!")).toThrow("share is neither hex nor base64");
    expect(() => decodeShare("abc")).toThrow("share is neither hex nor base64");
    expect(() => decodeShare("zz", { encoding: "hex", label: "share 2" })).toThrow("share 2 is not hex");
    expect(decodeBase64("3q2+7wF=")).toBeNull(); // non-canonical trailing bits
    expect(decodeBase64("a")).toBeNull();
    expect(decodeBase64("3q2+7w E=")).toBeNull();
  });

  it("takes the base64 reading of an ambiguous share when the other shares say so", () => {
    // 3 bytes whose base64 is made only of hex characters: its hex reading would be 2 bytes
    const ambiguous = Buffer.from("abcd", "base64");
    const other = Buffer.from([1, 2, 3]).toString("base64"); // "AQID": base64 only
    const [a, b] = decodeShares(["abcd", other]);
    expect(a).toEqual(new Uint8Array(ambiguous));
    expect(b).toEqual(Uint8Array.of(1, 2, 3));
  });

  it("names the share that cannot be decoded", () => {
    try {
      decodeShares(["abcd", "??"], { labels: ["share 1 (line 1 of stdin)", "share 2 (line 3 of stdin)"] });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ShamirError);
      expect((err as ShamirError).message).toBe("share 2 (line 3 of stdin) is neither hex nor base64");
      expect((err as ShamirError).shareIndex).toBe(2);
    }
  });
});
