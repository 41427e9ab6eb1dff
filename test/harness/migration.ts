/**
 * Helpers of the seal-migration tests (autounseal-migrate, migrate-faults, autounseal-e2e): what an operator does to a
 * node, and the client of whichever node is active.
 */
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { VaultClient } from "../../src/vault/client.js";
import { sleep, type TestNode } from "./cluster.js";

/** What an operator does: stop the node, add the seal stanza to its config, start it again. */
export async function restartWithSeal(node: TestNode, stanzaPath: string): Promise<void> {
  await node.stop();
  appendFileSync(join(node.dir, "config.hcl"), `\n${readFileSync(stanzaPath, "utf8")}`);
  await node.start();
}

/** The node's sys/health status code (200 active, 429 standby, ...). */
export async function healthOf(node: TestNode): Promise<number> {
  const c = node.client();
  try {
    return (await c.health()).status;
  } finally {
    await c.close();
  }
}

/** A client (with `token`) of the node that answers health 200; polls every 200 ms, `rounds` times. */
export async function activeClient(nodes: TestNode[], token: string, rounds = 150): Promise<VaultClient> {
  for (let i = 0; i < rounds; i++) {
    for (const n of nodes) {
      const c = n.client(token);
      try {
        if ((await c.health()).status === 200) return c;
      } catch {
        // not up
      }
      await c.close();
    }
    await sleep(200);
  }
  throw new Error("no active node");
}
