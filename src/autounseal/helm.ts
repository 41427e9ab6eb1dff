/**
 * Helm values for the vault-helm and openbao-helm charts (openbao-helm is a fork and keeps the same keys): HA with
 * integrated storage (raft, retry_join to every replica), the awskms seal, service registration in Kubernetes and
 * the service account annotation that IRSA reads. Pure: returns the values object and its YAML text.
 */
import { stringify } from "yaml";
import { UsageError } from "../errors.js";
import { type AwsKmsSealOptions, renderSealStanza } from "./awskms-config.js";

export interface HelmOptions {
  /** Number of server pods (raft voters); odd numbers keep quorum math simple. Default 3. */
  replicas?: number;
  /** Helm release name: pods are <release>-0..N-1 behind the headless service <release>-internal. */
  release?: string;
  /** Kubernetes secret (tls.crt, tls.key, ca.crt) mounted for the listener; without it TLS is off (a warning). */
  tlsSecret?: string;
}

/** Where each chart mounts things inside the pod. */
const CHART_PATHS = {
  vault: { data: "/vault/data", userconfig: "/vault/userconfig" },
  openbao: { data: "/openbao/data", userconfig: "/openbao/userconfig" },
} as const;

const K8S_NAME = /^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$/;

/** What vault-helm and openbao-helm call the release's objects (their "fullname" helper, without overrides). */
export function chartFullname(release: string, chart: "vault" | "openbao"): string {
  const name = release.includes(chart) ? release : `${release}-${chart}`;
  return name.slice(0, 63).replace(/-+$/, "");
}

/** The values object (for tests and for merging) and its YAML text. Throws UsageError on a bad option. */
export function buildHelmValues(seal: AwsKmsSealOptions, opts: HelmOptions = {}): Record<string, unknown> {
  const replicas = opts.replicas ?? 3;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 9) {
    throw new UsageError(`replicas must be a whole number from 1 to 9, got ${replicas}`);
  }
  const release = opts.release ?? seal.target;
  if (!K8S_NAME.test(release)) throw new UsageError(`release name ${JSON.stringify(release)} is not a DNS label`);
  if (opts.tlsSecret !== undefined && !K8S_NAME.test(opts.tlsSecret)) {
    throw new UsageError(`TLS secret name ${JSON.stringify(opts.tlsSecret)} is not a Kubernetes name`);
  }
  const paths = CHART_PATHS[seal.target];
  const tls = opts.tlsSecret !== undefined;
  const scheme = tls ? "https" : "http";
  const certDir = tls ? `${paths.userconfig}/${opts.tlsSecret}` : "";

  // The charts name their StatefulSet and headless service after the "fullname" (both charts' _helpers.tpl):
  // the release name when it contains the chart name, else "<release>-<chart>", cut to 63 characters.
  const fullname = chartFullname(release, seal.target);
  const retryJoins = Array.from({ length: replicas }, (_, i) => {
    const lines = [`  retry_join {`, `    leader_api_addr = "${scheme}://${fullname}-${i}.${fullname}-internal:8200"`];
    if (tls) lines.push(`    leader_ca_cert_file = "${certDir}/ca.crt"`);
    lines.push(`  }`);
    return lines.join("\n");
  }).join("\n");

  const listener = tls
    ? [
        `listener "tcp" {`,
        `  address         = "[::]:8200"`,
        `  cluster_address = "[::]:8201"`,
        `  tls_cert_file   = "${certDir}/tls.crt"`,
        `  tls_key_file    = "${certDir}/tls.key"`,
        `}`,
      ]
    : [
        `# TLS is off: pass --helm-tls-secret NAME (a secret with tls.crt, tls.key, ca.crt) for production`,
        `listener "tcp" {`,
        `  address         = "[::]:8200"`,
        `  cluster_address = "[::]:8201"`,
        `  tls_disable     = 1`,
        `}`,
      ];

  // In the pod the role comes from IRSA's injected AWS_ROLE_ARN, not from the stanza.
  const stanza = renderSealStanza({ ...seal, roleArnInStanza: false });
  const config = [
    `ui = true`,
    ...listener,
    ``,
    `storage "raft" {`,
    `  path = "${paths.data}"`,
    retryJoins,
    `}`,
    ``,
    stanza.trimEnd(),
    ``,
    `service_registration "kubernetes" {}`,
    ``,
  ].join("\n");

  const server: Record<string, unknown> = {
    ha: {
      enabled: true,
      replicas,
      raft: { enabled: true, setNodeId: true, config },
    },
  };
  if (seal.roleArn) {
    server.serviceAccount = { create: true, annotations: { "eks.amazonaws.com/role-arn": seal.roleArn } };
  }
  if (tls) {
    server.volumes = [{ name: "tls", secret: { secretName: opts.tlsSecret } }];
    server.volumeMounts = [{ name: "tls", mountPath: certDir, readOnly: true }];
    server.extraEnvironmentVars = {
      [seal.target === "openbao" ? "BAO_CACERT" : "VAULT_CACERT"]: `${certDir}/ca.crt`,
    };
  }
  return { global: { tlsDisable: !tls }, server };
}

/** The Helm values as YAML, with a header comment. Throws UsageError on a bad option. */
export function renderHelmValues(seal: AwsKmsSealOptions, opts: HelmOptions = {}): string {
  const values = buildHelmValues(seal, opts);
  const chart = seal.target === "openbao" ? "openbao/openbao" : "hashicorp/vault";
  const header = [
    `# Helm values for ${chart}: HA raft, awskms auto-unseal. Generated by sealkeeper.`,
    `# helm install ${opts.release ?? seal.target} ${chart} -f values-awskms.yaml`,
  ];
  return `${header.join("\n")}\n${stringify(values, { lineWidth: 0 })}`;
}
