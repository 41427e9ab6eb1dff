/**
 * The second half of every ceremony that receives new shares from the server (init, rekey): the server's response is
 * the only copy, so it is sealed in memory first, then written with the store's guarantees (atomic, 0600, never
 * overwriting), then the manifest that records the files' hashes. If anything fails after the server answered, the
 * sealed material survives in a rescue bundle (or on stderr), and only what could not be sealed at all is printed,
 * once, as the last resort.
 */
import { randomBytes } from "node:crypto";
import { basename, dirname } from "node:path";
import type { LoadedRecipient, OperatorSpec } from "../ciphers/types.js";
import { describeError, SealkeeperError, UsageError } from "../errors.js";
import type { Manifest } from "../store/manifest.js";
import type { RescueResult } from "../store/rescue-bundle.js";
import type { ShareStore, WrittenFile } from "../store/share-store.js";
import type { VaultClient } from "../vault/client.js";
import type { Transcript } from "./transcript.js";
import { type KeyShare, parseKeyShare } from "./unseal-key.js";

export type ShareKind = "unseal" | "recovery";
export type SealMode = "server" | "client";

export interface DeliveryOperator {
  name: string;
  recipient: LoadedRecipient;
}

export interface DeliverSharesInput {
  /** Names the transcript actions (`<ceremony>-share-written`, `-done`, `-rescue`) and the rescue message. */
  ceremony: "init" | "rekey";
  node: string;
  kind: ShareKind;
  threshold: number;
  shares: number;
  operators: DeliveryOperator[];
  /** server: `keys`/`keysB64` are the server's PGP messages (hex/base64); client: they are the plaintext shares. */
  sealMode: SealMode;
  keys: string[];
  keysB64: string[];
  /** What the server has done, for the rescue message (default: "the cluster WAS initialised" / "the rekey WAS done"). */
  serverDid?: string;
  /** init only: the root token and where it goes. */
  rootToken?: { recipient: LoadedRecipient; sealMode: SealMode; value: string };
}

export interface DeliverSharesDeps {
  store: ShareStore;
  transcript?: Transcript;
  /** Where a rescue bundle may go (default: $HOME, then the temp dir). */
  rescueDirs?: string[];
  /** Test seam: runs first, inside the rescue guard (fault injection after the server answered). */
  beforeWrite?: () => Promise<void> | void;
}

export interface DeliveredShares {
  manifest: Manifest;
  /** Every file written, operators' first, the manifest last. */
  files: WrittenFile[];
  /** The plaintext shares, client sealing only (empty when the server sealed). In memory only. */
  plaintext: KeyShare[];
}

/** The server did its part, and the material was rescued rather than written normally. Exit 2. */
export class SharesRescuedError extends UsageError {
  /** Where the rescue bundle is (undefined when none could be written and the sealed text was printed instead). */
  readonly bundlePath: string | undefined;
  constructor(message: string, opts: { cause?: unknown; bundlePath?: string }) {
    super(message, { cause: opts.cause, exitCode: 2 });
    this.bundlePath = opts.bundlePath;
  }
}

/**
 * One item the server handed out that must reach a file: a share or a root token. `seal` makes the file's content
 * (the server's own PGP message armored, or the plaintext sealed here); `label` and `plaintext` are for the EMERGENCY
 * line, the last resort when an item cannot be sealed at all after the server answered.
 */
export interface SealedItem {
  name: string;
  seal: () => Promise<string>;
  label: string;
  plaintext: string;
}

/** What the rescue saved after a failed delivery, for the caller's message. */
export interface RescueOutcome {
  /** The failure that started the rescue, described. */
  reason: string;
  result: RescueResult;
  /** `label: plaintext` of every item that could not be sealed (printed once, in the caller's message). */
  unsealable: string[];
}

/**
 * The one delivery path of every ceremony that receives secrets from the server (init's shares and root token,
 * rekey's new shares, root generate's token): every item sealed in memory first, then each written by the store
 * (atomic, 0600, never overwriting), then `finish` (the manifest) inside the same guard. If anything fails after the
 * server answered, every item is sealed again where needed and saved in a rescue bundle (or its text handed on), and
 * `onRescue` turns what was saved into the error to throw.
 */
export async function deliverSealedItems<T>(
  items: SealedItem[],
  deps: {
    store: ShareStore;
    node: string;
    rescueDirs?: string[];
    /** Test seam: runs first, inside the rescue guard (fault injection after the server answered). */
    beforeWrite?: () => Promise<void> | void;
    finish: (written: { file: WrittenFile; content: string }[]) => Promise<T>;
    onRescue: (outcome: RescueOutcome, cause: unknown) => Error;
  },
): Promise<T> {
  const sealed = new Map<string, string>();
  try {
    await deps.beforeWrite?.();
    // 1. Seal everything in memory first (fast, and no file is half-written if sealing fails).
    for (const item of items) sealed.set(item.name, await item.seal());
    // 2. Write each file (never overwriting), then what records them.
    const written: { file: WrittenFile; content: string }[] = [];
    for (const item of items) {
      const content = sealed.get(item.name)!;
      written.push({ file: await deps.store.writeSecretFile(item.name, content), content });
    }
    return await deps.finish(written);
  } catch (cause) {
    // Rebuild the full set of sealed files (the failure may have come before all were sealed).
    const files: { name: string; content: string }[] = [];
    const unsealable: string[] = [];
    for (const item of items) {
      const done = sealed.get(item.name);
      try {
        files.push({ name: item.name, content: done ?? (await item.seal()) });
      } catch {
        unsealable.push(`${item.label}: ${item.plaintext}`);
      }
    }
    const { writeRescueBundle } = await import("../store/rescue-bundle.js");
    const reason = describeError(cause);
    const result = await writeRescueBundle(
      { node: deps.node, intendedDir: deps.store.dir, reason, files, manifest: null },
      deps.rescueDirs ? { dirs: deps.rescueDirs } : {},
    );
    throw deps.onRescue({ reason, result, unsealable }, cause);
  }
}

/**
 * Seals and writes the new shares (and the root token when given) and the manifest, through deliverSealedItems.
 * @throws SharesRescuedError when writing failed: its message says where the rescue bundle is (or carries the sealed
 *   text when no bundle could be written).
 */
export async function deliverShares(input: DeliverSharesInput, deps: DeliverSharesDeps): Promise<DeliveredShares> {
  const { fileExtensionFor } = await import("../ciphers/registry.js");
  const { buildManifest } = await import("../store/manifest.js");
  const { sha256Hex } = await import("../store/share-text.js");
  const items: SealedItem[] = input.operators.map((op, i) => ({
    name: `${op.name}${fileExtensionFor(op.recipient.type)}`,
    seal: () =>
      sealItem(op.recipient, input.sealMode, input.sealMode === "server" ? input.keysB64[i]! : input.keys[i]!),
    label: op.name,
    plaintext: input.keys[i]!,
  }));
  const root = input.rootToken;
  const rootFile = root ? `root-token${fileExtensionFor(root.recipient.type)}` : undefined;
  if (root && rootFile) {
    items.push({
      name: rootFile,
      seal: () => sealItem(root.recipient, root.sealMode, root.value),
      label: "root token",
      plaintext: root.value,
    });
  }
  return deliverSealedItems(items, {
    store: deps.store,
    node: input.node,
    rescueDirs: deps.rescueDirs,
    beforeWrite: async () => {
      // inside the rescue guard, like everything after the server answered: what it did return is saved
      if (input.keys.length !== input.operators.length) {
        throw new Error(`the server returned ${input.keys.length} shares for ${input.operators.length} operators`);
      }
      // what the server sealed must be addressed to each holder's own key: else nobody could open it, and the
      // ceremony must not report success (the server's messages are kept in the rescue bundle as they came)
      const { checkServerSealedShare } = await import("../ciphers/registry.js");
      if (input.sealMode === "server") {
        for (const [i, op] of input.operators.entries()) {
          await checkServerSealedShare(op.recipient, input.keysB64[i]!).catch((err: Error) => {
            throw new Error(`${op.name}'s share: ${err.message}`);
          });
        }
      }
      if (root?.sealMode === "server") {
        await checkServerSealedShare(root.recipient, root.value).catch((err: Error) => {
          throw new Error(`the root token: ${err.message}`);
        });
      }
      await deps.beforeWrite?.();
    },
    finish: async (written) => {
      const plaintext: KeyShare[] =
        input.sealMode === "client"
          ? input.operators.map((op, i) => parseKeyShare(input.keys[i]!, `the server's share ${i + 1}`, op.name))
          : [];
      const manifest = buildManifest({
        node: input.node,
        kind: input.kind,
        threshold: input.threshold,
        shares: input.shares,
        operators: input.operators.map((op, i) => ({
          name: op.name,
          recipient: op.recipient,
          file: written[i]!.file.name,
          fileSha256: sha256Hex(written[i]!.content),
          sealedBy: input.sealMode,
          share: input.sealMode === "client" ? plaintext[i]!.bytes : undefined,
        })),
        rootToken:
          root && rootFile
            ? {
                file: rootFile,
                fileSha256: sha256Hex(written.at(-1)!.content),
                recipient: root.recipient,
                sealedBy: root.sealMode,
              }
            : null,
      });
      const files = [...written.map((w) => w.file), await deps.store.writeManifest(manifest)];
      for (const [i, op] of input.operators.entries()) {
        deps.transcript?.append({
          action: `${input.ceremony}-share-written`,
          node: input.node,
          operator: op.name,
          shareFingerprint: plaintext[i]?.fingerprint,
          detail: `${files[i]!.name} sealed to ${op.recipient.type} ${op.recipient.fingerprint} by the ${input.sealMode}`,
        });
      }
      deps.transcript?.append({
        action: `${input.ceremony}-done`,
        node: input.node,
        detail: `manifest ${files.at(-1)!.sha256}`,
      });
      return { manifest, files, plaintext };
    },
    onRescue: ({ reason, result, unsealable }, cause) => {
      deps.transcript?.append({
        action: `${input.ceremony}-rescue`,
        node: input.node,
        detail: result.written ? result.path : "printed",
      });
      const what =
        input.serverDid ?? (input.ceremony === "init" ? "the cluster WAS initialised" : "the rekey WAS done");
      let message = `${what} but writing the shares to ${deps.store.dir} failed (${reason}); `;
      if (result.written) {
        message += `all the sealed shares${root ? " and the sealed root token" : ""} are saved in the rescue bundle ${result.path} (0600): move it somewhere safe and give each operator their file`;
      } else {
        message += `no rescue file could be written either (${result.errors.join("; ")}); the sealed shares follow, copy them now:\n${result.text}`;
      }
      if (unsealable.length > 0) {
        // Losing these would lose the cluster: this is the one place plaintext is ever printed, and only to stderr.
        message += `\nEMERGENCY: these could not be sealed; they are printed once, here, in plaintext:\n${unsealable.join("\n")}`;
      }
      return new SharesRescuedError(message, { cause, bundlePath: result.written ? result.path : undefined });
    },
  });
}

/**
 * One operator per share, no name twice.
 * @throws UsageError naming the count or the repeated name.
 */
export function checkOperatorCount(operators: { name: string }[], shares: number): void {
  if (operators.length !== shares) {
    throw new UsageError(
      `${operators.length} operator${operators.length === 1 ? "" : "s"} given for ${shares} shares: give exactly one --operator per share`,
    );
  }
  const names = new Set<string>();
  for (const op of operators) {
    if (names.has(op.name)) throw new UsageError(`operator ${op.name} is given twice`);
    names.add(op.name);
  }
}

/**
 * Reads and pre-flights every operator's key.
 * @throws UsageError naming the operator and what is wrong with their key.
 */
export async function loadOperators(operators: OperatorSpec[], cwd: string): Promise<DeliveryOperator[]> {
  const { loadRecipient } = await import("../ciphers/registry.js");
  const loaded = await Promise.all(
    operators.map(async (op) => {
      try {
        return { name: op.name, recipient: await loadRecipient(op.recipient, { cwd }) };
      } catch (err) {
        throw new UsageError(`operator ${op.name}: ${describeError(err)}`, { cause: err });
      }
    }),
  );
  checkDistinctHolders(loaded);
  return loaded;
}

/**
 * No two share holders with one key: whoever holds that key would open both shares, and a threshold of holders could
 * be fewer people than the threshold says. Compared by key material (`LoadedRecipient.keys`), so a key given as a
 * file and as a literal, a recipients file listing another holder's recipient, or a PGP subkey reused under another
 * primary key are all caught. There is no override: a person who should hold two shares is a threshold of one less.
 * @throws UsageError naming both holders, their specs and the shared key.
 */
export function checkDistinctHolders(operators: DeliveryOperator[]): void {
  const seen = new Map<string, { op: DeliveryOperator; name: string }>();
  for (const op of operators) {
    for (const key of op.recipient.keys) {
      const first = seen.get(key.material);
      if (first && first.op !== op) {
        const same = first.name === key.name ? key.name : `${first.name}, the same key as ${key.name}`;
        throw new UsageError(
          `operators ${first.op.name} (${first.op.recipient.spec.raw}) and ${op.name} (${op.recipient.spec.raw}) ` +
            `would be sealed to one key (${same}): whoever holds it opens both shares, so fewer people than the ` +
            "threshold could unseal; nothing was sent",
          { hint: "give each holder a key of their own (a person holds one share)" },
        );
      }
      if (!first) seen.set(key.material, { op, name: key.name });
    }
  }
}

/** A test seal to each recipient sealkeeper will seal to itself: if one fails, it fails before the server call. */
export async function probeRecipients(recipients: LoadedRecipient[]): Promise<void> {
  const { sealShare } = await import("../ciphers/registry.js");
  const probe = randomBytes(33);
  await Promise.all(recipients.map((r) => sealShare(r, probe)));
}

/**
 * One file's content: the server's own sealed message (base64, `server`) armored as it is, or the plaintext (`client`,
 * the hex share or the token) sealed here. The one place both init's normal path and its rescue seal an item.
 */
async function sealItem(recipient: LoadedRecipient, mode: "server" | "client", value: string): Promise<string> {
  const { armorServerSealedShare, sealShare } = await import("../ciphers/registry.js");
  return mode === "server"
    ? armorServerSealedShare(recipient.type, value)
    : sealShare(recipient, Buffer.from(value, "utf8"));
}

/** A root token a quorum generated: decoded here (OTP) or encrypted by the server to a PGP key. */
export interface GeneratedToken {
  client: VaultClient;
  nonce: string;
  mode: "otp" | "pgp";
  /** otp: the decoded token, in memory only. */
  token?: string;
  /** pgp: the server-encrypted token (standard base64 of a binary OpenPGP message). */
  encryptedTokenB64?: string;
}

/**
 * The token's share of the one delivery path: sealed with the same sealItem as init's shares and token, written by
 * the store (atomic, 0600, never overwriting), and on a failed write saved in a rescue bundle (or handed to
 * onRescueText when no bundle can be written). An OTP token that cannot even be sealed is revoked, so that no root
 * token lives unaccounted for. Returns the file written (undefined when nothing was to be written: --print-token).
 * @throws SealkeeperError (exit 2) naming the rescue bundle, or saying the token was revoked.
 */
export async function deliverRootToken(
  generated: GeneratedToken,
  dest: { recipient?: LoadedRecipient; outPath?: string },
  deps: { transcript?: Transcript; rescueDirs?: string[]; onRescueText?: (text: string) => void } = {},
): Promise<string | undefined> {
  const { armorServerSealedShare } = await import("../ciphers/registry.js");
  const { client } = generated;
  let sealed: string | undefined;
  if (generated.mode === "pgp") {
    if (dest.recipient) {
      const { checkServerSealedShare } = await import("../ciphers/registry.js");
      await checkServerSealedShare(dest.recipient, generated.encryptedTokenB64!).catch((err: Error) => {
        throw new SealkeeperError(
          `the new root token: ${err.message}. Nobody can open it, so nobody holds that token; nothing was written`,
          { exitCode: 2, hint: "run sealkeeper root generate again, against a node you trust" },
        );
      });
    }
    sealed = await armorServerSealedShare("pgp", generated.encryptedTokenB64!);
  } else if (dest.recipient) {
    try {
      sealed = await sealItem(dest.recipient, "client", generated.token!);
    } catch (err) {
      client.setToken(generated.token);
      await client.revokeSelf().catch(() => undefined);
      throw new SealkeeperError(
        `the new root token could not be sealed (${describeError(err)}); it was revoked so that no unaccounted root token remains`,
        { exitCode: 2 },
      );
    }
  }
  if (sealed === undefined || !dest.outPath) return undefined;
  const { ShareStore } = await import("../store/share-store.js");
  const content = sealed;
  const outPath = dest.outPath;
  const name = basename(outPath);
  const item: SealedItem = { name, seal: async () => content, label: "root token", plaintext: "" };
  return deliverSealedItems([item], {
    store: new ShareStore(dirname(outPath)),
    node: client.address,
    rescueDirs: deps.rescueDirs,
    finish: async ([written]) => {
      deps.transcript?.append({
        action: "generate-root-token-written",
        node: client.address,
        nonce: generated.nonce,
        detail: `${basename(written!.file.path)} sha256 ${written!.file.sha256}`,
      });
      return written!.file.path;
    },
    onRescue: ({ reason, result }) => {
      if (!result.written) deps.onRescueText?.(result.text);
      return new SealkeeperError(
        `the new root token was generated but ${outPath} could not be written (${reason}); ` +
          (result.written
            ? `the sealed token is in the rescue bundle ${result.path}`
            : "the sealed token was printed above on stderr: copy it now"),
        { exitCode: 2 },
      );
    },
  });
}
