/**
 * sealkeeper as a library. The CLI (src/cli/) is a thin layer over these; everything here takes typed parameters,
 * returns typed results and throws the typed errors of ./errors.js. Heavy dependencies (OpenPGP, age, the AWS SDK)
 * load lazily on first use, so importing this module is cheap.
 */

// AWS KMS auto-unseal
export { renderSealStanza } from "./autounseal/awskms-config.js";
export { buildHelmValues, renderHelmValues } from "./autounseal/helm.js";
export { buildIamPolicy, buildKeyPolicyStatement } from "./autounseal/iam.js";
export { runMigration } from "./autounseal/migrate.js";
export { checkKmsKey, createSealKey } from "./autounseal/validate.js";
// Bootstrap
export { applyPlan } from "./bootstrap/apply.js";
export { lintPolicyFile, lintSpec } from "./bootstrap/lint.js";
export { buildManifests as buildExternalSecretsManifests } from "./bootstrap/manifests.js";
export { observeState } from "./bootstrap/observe.js";
export { planBootstrap, planHasChanges } from "./bootstrap/plan.js";
export { revokeRootToken } from "./bootstrap/revoke-root.js";
export { type BootstrapSpec, loadSpec, parseSpec } from "./bootstrap/spec.js";
export { verifyBootstrap } from "./bootstrap/verify.js";

// Ceremonies
export { runBootstrapCluster } from "./ceremony/bootstrap-cluster.js";
export { readCeremonyFile } from "./ceremony/ceremony-file.js";
export { decodeOtpToken, runGenerateRoot } from "./ceremony/generate-root.js";
export { type InitCeremonyConfig, type InitOutcome, runInitCeremony } from "./ceremony/init.js";
export { runRekey } from "./ceremony/rekey.js";
export { interactiveShareSource, type ShareSource, scriptedShareSource } from "./ceremony/share-source.js";
export { fingerprintShare, Transcript, verifyTranscriptText } from "./ceremony/transcript.js";
export { runUnseal, type UnsealReport } from "./ceremony/unseal.js";
export { type KeyShare, parseKeyShare } from "./ceremony/unseal-key.js";
// Share ciphers (OpenPGP, age) and the share store
export { parseOperatorSpec, parseRecipientSpec } from "./ciphers/recipient-spec.js";
export {
  armorServerSealedShare,
  detectIdentityType,
  detectSealedType,
  loadRecipient,
  openSealedShare,
  sealShare,
} from "./ciphers/registry.js";
export type { LoadedRecipient, OperatorSpec, RecipientSpec, ShareCipher, ShareOpener } from "./ciphers/types.js";
export { ExitCode, SealkeeperError, UsageError, VaultConnectionError, VaultHttpError } from "./errors.js";
export { type Prompter, refusingPrompter, ttyPrompter } from "./prompt/prompter.js";
// Shamir over GF(256), Vault's format
export * from "./shamir/index.js";
export { buildManifest, type Manifest, readManifest, validateManifest } from "./store/manifest.js";
export { writeRescueBundle } from "./store/rescue-bundle.js";
export { ShareStore } from "./store/share-store.js";
// Talking to nodes
export { VaultClient } from "./vault/client.js";
export { type ConnectionSettings, isLoopbackAddress, readEnv, resolveConnection } from "./vault/env.js";
export { type NodeStatus, observeNode, observeNodes } from "./vault/observe.js";
export type { HealthStatus, InitRequest, InitResponse, SealStatus } from "./vault/types.js";
export { VERSION } from "./version.js";
