import { describe, expect, it } from "vitest";
import { runPool } from "../../../src/bootstrap/pool.js";

describe("runPool stops at a step boundary when asked (issue 35: apply interrupted)", () => {
  it("starts nothing new once aborted; the items in flight finish", async () => {
    const stop = new AbortController();
    const started: number[] = [];
    const finished: number[] = [];
    await runPool(
      Array.from({ length: 20 }, (_, i) => i),
      3,
      async (i) => {
        started.push(i);
        if (i === 4) stop.abort();
        await new Promise((r) => setTimeout(r, 5));
        finished.push(i);
      },
      stop.signal,
    );
    expect(started.length).toBeLessThan(20);
    expect(finished.sort((a, b) => a - b)).toEqual(started.sort((a, b) => a - b));
  });
});
