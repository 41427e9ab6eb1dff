/**
 * AppRole secret_id delivery: `bootstrap apply --secret-id approle/backup=age:age1...` asks the server for a new
 * secret_id of the role, seals it to the recipient at once (pgp or age, as shares are: src/ciphers) and writes the
 * sealed file with the share store (0600, atomic, never overwriting). The secret_id itself is never printed, logged
 * or written in clear; only its accessor is shown. Every recipient is loaded and the directory checked BEFORE the
 * first secret_id exists; a secret_id that cannot be delivered is destroyed by its accessor.
 */
import { resolve } from "node:path";
import { SealkeeperError, UsageError } from "../errors.js";
import type { VaultClient } from "../vault/client.js";
import type { BootstrapSpec } from "./spec.js";

export interface SecretIdRequest {
  /** auth path/role name, e.g. approle/backup */
  role: string;
  /** TYPE:VALUE, as for operators (pgp:/path/key.asc, age:age1...). */
  recipient: string;
}

export interface DeliveredSecretId {
  role: string;
  /** The sealed file. */
  file: string;
  /** The secret_id's accessor (not secret: lets an operator look it up or destroy it). */
  accessor: string;
  recipient: string;
}

/** Parses `--secret-id AUTH/ROLE=TYPE:VALUE`. @throws UsageError */
export function parseSecretIdFlag(raw: string): SecretIdRequest {
  const eq = raw.indexOf("=");
  const role = eq > 0 ? raw.slice(0, eq) : "";
  if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/.test(role)) {
    throw new UsageError(
      `--secret-id expects AUTH_PATH/ROLE=TYPE:VALUE (e.g. approle/backup=age:age1...), got "${role || raw.slice(0, 40)}"`,
    );
  }
  return { role, recipient: raw.slice(eq + 1) };
}

/**
 * Creates, seals and writes one secret_id per request into `outDir`.
 * @throws UsageError before anything is created (unknown role, bad recipient, directory not writable);
 *   SealkeeperError naming the role when a created secret_id could not be delivered (it was destroyed).
 */
export async function deliverSecretIds(
  client: VaultClient,
  spec: BootstrapSpec,
  requests: SecretIdRequest[],
  outDir: string,
  cwd: string,
): Promise<DeliveredSecretId[]> {
  const { parseRecipientSpec } = await import("../ciphers/recipient-spec.js");
  const { fileExtensionFor, loadRecipient, sealShare } = await import("../ciphers/registry.js");
  const { ShareStore } = await import("../store/share-store.js");
  // pre-flight everything before the first secret_id exists
  const roles = new Set(spec.appRoles.map((r) => `${r.authPath}/${r.name}`));
  const prepared = [];
  for (const req of requests) {
    if (!roles.has(req.role)) {
      throw new UsageError(`--secret-id ${req.role}: the spec declares no approle role ${req.role}`);
    }
    const recipient = await loadRecipient(parseRecipientSpec(req.recipient), { cwd });
    prepared.push({ req, recipient });
  }
  const store = new ShareStore(resolve(cwd, outDir));
  await store.checkWritable();
  const out: DeliveredSecretId[] = [];
  for (const { req, recipient } of prepared) {
    const slash = req.role.lastIndexOf("/");
    const authPath = req.role.slice(0, slash);
    const name = req.role.slice(slash + 1);
    const created = await client.write<{ data?: { secret_id?: string; secret_id_accessor?: string } }>(
      `auth/${authPath}/role/${name}/secret-id`,
      {},
    );
    const accessor = created.data?.secret_id_accessor ?? "";
    const secretId = created.data?.secret_id;
    try {
      if (!secretId) throw new Error("the server returned no secret_id");
      const sealed = await sealShare(recipient, Buffer.from(secretId, "utf8"));
      const fileName = `${authPath.replace(/\//g, "-")}-${name}.secret-id${fileExtensionFor(recipient.type)}`;
      const written = await store.writeSecretFile(fileName, sealed);
      out.push({ role: req.role, file: written.path, accessor, recipient: recipient.describe });
    } catch (err) {
      // undeliverable: make sure it cannot be used by anyone
      await client
        .write(`auth/${authPath}/role/${name}/secret-id-accessor/destroy`, { secret_id_accessor: accessor })
        .catch(() => undefined);
      throw new SealkeeperError(
        `secret_id for ${req.role} could not be delivered (${err instanceof Error ? err.message : String(err)}); it was destroyed (accessor ${accessor})`,
        { cause: err },
      );
    }
  }
  return out;
}
