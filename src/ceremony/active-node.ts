/**
 * Rekey and root generation (and their --status and --cancel) are the cluster's, held by its ACTIVE node: a standby
 * forwards some calls and not others (OpenBao 2.6.2 forwards a rekey's updates but fails its verification with "node is
 * not the leader", and answers status and cancel from its own empty state; Vault 1.21 redirects rekey calls when
 * request forwarding is off). So every such ceremony first asks the node it was given who is active (sys/leader, as
 * `bootstrap plan` does) and talks to that node, once the node itself has confirmed it is the active node of the same
 * cluster; or it refuses and says why. Unseal is per node and needs none of this.
 */
import { describeError, SealkeeperError, VaultConnectionError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";

/**
 * The client to run `operation` with: `client` itself when its node is active (or not part of an HA cluster, or
 * sealed, or cannot say: the ceremony then reports what it finds), else a client for the active node it names, after
 * that node answered that it is active and of the same cluster id. The caller closes what it gets (and `client`).
 * @throws SealkeeperError (exit 2, nothing sent) when the node is a standby and the active node is unknown, not
 *   reachable, not active, of another cluster, or named over plain HTTP where the node given was HTTPS.
 */
export async function onActiveNode(
  client: VaultClient,
  operation: string,
  say: (line: string) => void,
): Promise<VaultClient> {
  const seal = await client.sealStatus().catch(() => undefined);
  if (!seal?.initialized || seal.sealed) return client;
  const leader = await client.leader().catch(() => undefined);
  if (!leader?.haEnabled || leader.isSelf) return client;
  const refuse = (why: string) =>
    new SealkeeperError(
      `${client.address} is a standby and ${operation} runs on the active node: ${why}; nothing was sent`,
      {
        exitCode: 2,
        hint: "give the active node's address with -a (sealkeeper status -a EVERY-NODE shows which one it is)",
      },
    );
  const target = leader.leaderAddress.replace(/\/+$/, "");
  if (!target) throw refuse("it names no active node (none is elected yet, or it lost it)");
  if (target === client.address) return client;
  if (client.address.startsWith("https:") && !target.startsWith("https:")) {
    throw refuse(`it names ${target} as active, over plain HTTP, where ${client.address} was given over HTTPS`);
  }
  const active = client.withAddress(target);
  let why: string | undefined;
  try {
    const [status, itself] = await Promise.all([active.sealStatus(), active.leader()]);
    if (!itself.isSelf) why = `it names ${target} as active, but ${target} says it is not`;
    else if (seal.cluster_id && status.cluster_id !== seal.cluster_id) {
      why = `it names ${target} as active, but ${target} is of another cluster (id ${status.cluster_id ?? "none"})`;
    }
  } catch (err) {
    if (!(err instanceof SealkeeperError)) throw err;
    why = `it names ${target} as active, which ${err instanceof VaultConnectionError ? "does not answer" : "could not confirm it"} (${describeError(err)})`;
  }
  if (why) {
    await active.close();
    throw refuse(why);
  }
  say(
    `note: ${client.address} is a standby; ${operation} runs on the active node, ${target} (it confirms it is active, ` +
      `cluster ${seal.cluster_id ?? "id unknown"}): talking to it`,
  );
  return active;
}
