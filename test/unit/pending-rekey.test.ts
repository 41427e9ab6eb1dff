/**
 * The rekey side of the pending-ceremony journal (src/ceremony/pending.ts): a record written before a rekey's
 * completing share, and what the next run says from the server's rekey state now. Each branch of diagnoseLostRekey,
 * and that the init diagnosis ignores rekey records.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearPendingRekeys, diagnoseLostInit, diagnoseLostRekey, recordPending } from "../../src/ceremony/pending.js";

const NODE = "http://127.0.0.1:8200";
let dir: string;
let state: string;
let out: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "sk-pending-rekey-"));
  state = join(dir, "pending");
  out = join(dir, "new-shares");
  mkdirSync(out);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = (verification = true) =>
  recordPending(state, { ceremony: "rekey", node: NODE, out, nonce: "n-1", verification }).path!;
const records = () => readdirSync(state).filter((f) => f.endsWith(".json"));

describe("diagnoseLostRekey", () => {
  it("the server waits for verification of shares nobody received: void, cancel; the record stays", () => {
    record();
    const story = diagnoseLostRekey(state, NODE, { started: true, nonce: "n-1", verificationNonce: "v-1" });
    expect(story).toMatch(/never wrote the new shares to .*new-shares/);
    expect(story).toMatch(
      /they are void and the OLD shares stay valid\. Cancel this rekey with sealkeeper rekey --cancel/,
    );
    expect(records()).toHaveLength(1);
    clearPendingRekeys(state, NODE);
    expect(records()).toHaveLength(0);
  });

  it("the attempt still collects old shares: the completing share never counted; nothing to say, record settled", () => {
    record();
    expect(diagnoseLostRekey(state, NODE, { started: true, nonce: "n-1" })).toBeUndefined();
    expect(records()).toHaveLength(0);
  });

  it("verification off and the attempt gone: it most likely switched the keys, and says how bad that is", () => {
    record(false);
    const story = diagnoseLostRekey(state, NODE, { started: false, nonce: "" });
    expect(story).toMatch(/ran without verification/);
    expect(story).toMatch(/Nobody can unseal this cluster after its next seal or restart/);
  });

  it("verification on and the attempt gone (cancelled, sealed): nothing took effect; record settled", () => {
    record();
    expect(diagnoseLostRekey(state, NODE, { started: false, nonce: "" })).toBeUndefined();
    expect(records()).toHaveLength(0);
  });

  it("the shares were written after all (a manifest): nothing to say, record settled", () => {
    record();
    writeFileSync(join(out, "manifest.json"), "{}\n");
    expect(diagnoseLostRekey(state, NODE, { started: true, nonce: "n-1", verificationNonce: "v-1" })).toBeUndefined();
    expect(records()).toHaveLength(0);
  });

  it("another node's record, and the init diagnosis, ignore it", () => {
    record();
    expect(
      diagnoseLostRekey(state, "http://127.0.0.1:8210", { started: true, nonce: "n-1", verificationNonce: "v" }),
    ).toBeUndefined();
    expect(diagnoseLostInit(state, NODE, [])).toBeUndefined();
    expect(records()).toHaveLength(1);
  });
});
