import { describe, expect, it } from "vitest";

describe("the library entry point", () => {
  it("exports the main functions and loads no heavy dependency on import", async () => {
    const lib = await import("../../src/index.js");
    for (const name of [
      "VaultClient",
      "splitSecret",
      "combineShares",
      "runInitCeremony",
      "runUnseal",
      "planBootstrap",
      "renderSealStanza",
    ]) {
      expect(typeof (lib as Record<string, unknown>)[name]).toBe("function");
    }
  });
});
