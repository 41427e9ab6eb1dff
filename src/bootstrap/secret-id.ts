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
  /**
   * minted: a new secret_id was created and delivered; exists: the role already had one and nothing was minted (a
   * rerun); rotated: a new one was delivered and the previous ones were destroyed (`revoked`).
   */
  status: "minted" | "exists" | "rotated";
  /** The sealed file (minted, rotated). */
  file?: string;
  /** The new secret_id's accessor, or the existing ones' (not secret: lets an operator look one up or destroy it). */
  accessor: string;
  recipient: string;
  /** rotated: the accessors of the secret_ids destroyed after the new one was delivered. */
  revoked?: string[];
}

export interface SecretIdOptions {
  /** Mint a new secret_id even when the role has some, then destroy the previous ones (default: mint only when none). */
  rotate?: boolean;
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
  opts: SecretIdOptions = {},
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
  // the directory may already hold the files of an earlier run: they are kept, never overwritten
  await store.checkWritable({ existingFiles: "keep" });
  const out: DeliveredSecretId[] = [];
  for (const { req, recipient } of prepared) {
    const slash = req.role.lastIndexOf("/");
    const authPath = req.role.slice(0, slash);
    const name = req.role.slice(slash + 1);
    // a rerun mints nothing: a role that has a secret_id keeps it unless rotation is asked for
    const previous = await client.list(`auth/${authPath}/role/${name}/secret-id`);
    if (previous.length > 0 && !opts.rotate) {
      out.push({ role: req.role, status: "exists", accessor: previous.join(","), recipient: recipient.describe });
      continue;
    }
    const created = await client.write<{ data?: { secret_id?: string; secret_id_accessor?: string } }>(
      `auth/${authPath}/role/${name}/secret-id`,
      {},
    );
    const accessor = created.data?.secret_id_accessor ?? "";
    const secretId = created.data?.secret_id;
    try {
      if (!secretId) throw new Error("the server returned no secret_id");
      const sealed = await sealShare(recipient, Buffer.from(secretId, "utf8"));
      const base = `${authPath.replace(/\//g, "-")}-${name}.secret-id`;
      const written = await writeFresh(store, base, fileExtensionFor(recipient.type), sealed);
      out.push({
        role: req.role,
        status: previous.length > 0 ? "rotated" : "minted",
        file: written.path,
        accessor,
        recipient: recipient.describe,
      });
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
    const last = out.at(-1)!;
    if (last.status === "rotated") {
      // the new one is delivered: only now are the old ones destroyed (a failure here leaves both valid, and says so)
      last.revoked = [];
      for (const old of previous) {
        try {
          await client.write(`auth/${authPath}/role/${name}/secret-id-accessor/destroy`, { secret_id_accessor: old });
          last.revoked.push(old);
        } catch (err) {
          throw new SealkeeperError(
            `secret_id for ${req.role} rotated (new accessor ${accessor}, sealed in ${last.file}), but the previous one ` +
              `(accessor ${old}) could not be destroyed: ${err instanceof Error ? err.message : String(err)}`,
            {
              cause: err,
              hint: `destroy it by hand: write auth/${authPath}/role/${name}/secret-id-accessor/destroy secret_id_accessor=${old}`,
            },
          );
        }
      }
    }
  }
  return out;
}

/** Writes `<base><ext>`, or `<base>.2<ext>`, `.3`, ... when an earlier run's file has the name (never overwritten). */
async function writeFresh(
  store: import("../store/share-store.js").ShareStore,
  base: string,
  ext: string,
  content: string | Uint8Array,
): Promise<import("../store/share-store.js").WrittenFile> {
  const { existsSync } = await import("node:fs");
  const { join } = await import("node:path");
  for (let n = 1; n < 1000; n++) {
    const name = n === 1 ? `${base}${ext}` : `${base}.${n}${ext}`;
    if (!existsSync(join(store.dir, name))) return store.writeSecretFile(name, content);
  }
  throw new SealkeeperError(`${store.dir} holds 999 files named ${base}.*${ext}: clean it up first`);
}
