/**
 * `bootstrap cluster` run again: a pipeline reruns the same job after a success (it must stay green) or after a
 * failure half-way (it must go on, or say exactly why it cannot). Before anything is sent, the nodes' state is read
 * and compared with the ceremony directory of the first run (its manifest.json and transcript):
 * - every node blank: a first run (bootstrap-cluster.ts does the whole thing);
 * - initialised by THIS ceremony (the manifest's share configuration is the node's), every node unsealed, and the
 *   transcript records the root token's revocation: done; nothing is sent but reads (and verify, when a token is given);
 * - initialised by this ceremony, unsealed, root not revoked yet: resumed with the root token from VAULT_TOKEN/BAO_TOKEN
 *   (apply, verify, revoke), or refused saying how to get that token;
 * - anything else (sealed nodes, another ceremony, a directory with no ceremony, nodes initialised separately):
 *   refused with what was found and what to do; nothing changes.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import type { ShareStore } from "../store/share-store.js";
import type { VaultClient } from "../vault/client.js";
import type { SealStatus } from "../vault/types.js";

export type RerunState =
  | { state: "blank" }
  | { state: "done"; manifest: import("../store/manifest.js").Manifest; revokedAccessor: string; revokedAt: string }
  | { state: "resume"; manifest: import("../store/manifest.js").Manifest };

/**
 * Decides what this run is. @throws UsageError (exit 1) for a state it cannot go on from, naming what was found.
 */
export async function classifyRerun(opts: {
  clients: VaultClient[];
  store: ShareStore;
  transcriptPath?: string;
}): Promise<RerunState> {
  const statuses: { client: VaultClient; status: SealStatus }[] = [];
  for (const c of opts.clients) statuses.push({ client: c, status: await c.sealStatus() });
  const [first] = statuses;
  if (!first) throw new UsageError("give every node of the cluster with --address (the first one is initialised)");
  if (!first.status.initialized) {
    // followers join the first node: one already initialised and unsealed on its own is another cluster
    for (const { client, status } of statuses.slice(1)) {
      if (status.initialized && !status.sealed) {
        throw new UsageError(
          `${client.address} is already initialised and unsealed while ${first.client.address} is blank: ` +
            "bootstrap cluster initialises the first node and joins the others to it",
          { hint: "give the nodes of one cluster, the blank node first only if every node is blank" },
        );
      }
    }
    return { state: "blank" };
  }

  const dir = opts.store.dir;
  const { MANIFEST_FILE, readManifest } = await import("../store/manifest.js");
  let manifest: import("../store/manifest.js").Manifest;
  try {
    manifest = await readManifest(join(dir, MANIFEST_FILE));
  } catch {
    throw new UsageError(
      `${first.client.address} is already initialised, and ${dir} holds no ceremony manifest: this run cannot tell ` +
        "whether its ceremony initialised the cluster",
      {
        hint:
          "rerun with the first run's output directory (-o, or out: in the ceremony file); a cluster initialised " +
          "by other means is configured with sealkeeper bootstrap apply -f SPEC",
      },
    );
  }
  const nodeKind = first.status.recovery_seal ? "recovery" : "unseal";
  if (manifest.kind !== nodeKind || manifest.shares !== first.status.n || manifest.threshold !== first.status.t) {
    throw new UsageError(
      `${first.client.address} is initialised with ${nodeKind} shares ${first.status.t} of ${first.status.n}, but the ` +
        `ceremony in ${dir} handed out ${manifest.kind} shares ${manifest.threshold} of ${manifest.shares}: another ` +
        "ceremony initialised this cluster",
      { hint: "check the addresses and the output directory; nothing was changed" },
    );
  }
  const sealed = statuses.filter((s) => s.status.sealed || !s.status.initialized);
  if (sealed.length > 0) {
    const addrs = sealed.map((s) => s.client.address);
    throw new UsageError(
      `the cluster was initialised by the ceremony in ${dir}, and ${sealed.length} node(s) are sealed or not joined ` +
        `(${addrs.join(", ")})`,
      {
        hint:
          manifest.kind === "unseal"
            ? `the holders unseal them: sealkeeper unseal ${addrs.map((a) => `-a ${a}`).join(" ")} (each with their file), then run this command again`
            : "auto-unseal nodes unseal themselves once their seal is reachable: check the seal and the nodes' logs, then run this command again",
      },
    );
  }
  const revoked = readTranscriptEvents(opts.transcriptPath ?? join(dir, "transcript.jsonl")).findLast(
    (e) => e.action === "root-revoked",
  );
  if (revoked) {
    return {
      state: "done",
      manifest,
      revokedAccessor: /accessor (\S+)/.exec(revoked.detail ?? "")?.[1] ?? "",
      revokedAt: revoked.time ?? "",
    };
  }
  return { state: "resume", manifest };
}

/** The transcript's events, unverified (the transcript is verified when a run appends to it). Empty when absent. */
function readTranscriptEvents(path: string): { action: string; detail?: string; time?: string }[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return [];
  }
  const out: { action: string; detail?: string; time?: string }[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const v = JSON.parse(line) as { action?: unknown; detail?: unknown; time?: unknown };
      if (typeof v.action === "string") {
        out.push({
          action: v.action,
          detail: typeof v.detail === "string" ? v.detail : undefined,
          time: typeof v.time === "string" ? v.time : undefined,
        });
      }
    } catch {
      // a torn last line: Transcript.open refuses it when a run appends
    }
  }
  return out;
}
