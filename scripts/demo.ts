/**
 * `npm run demo [-- --server openbao]`: the whole story on a real local 3-node cluster (Vault 1.21 by default, or
 * OpenBao 2.6), non-interactively.
 * Builds or reuses the server, starts three raft nodes on loopback, makes demo operators (PGP by gpg, age by
 * age-keygen), initialises with per-operator sealed shares, has each operator check their file offline, unseals all
 * three nodes from the sealed files, applies the reference specs (bootstrap.yaml, then ci-identities.yaml with the
 * AppRole's secret_id sealed to an operator), logs a CI job in by JWT, revokes the root token and prints the final
 * status. Leaves the ceremony directory behind and names it.
 * With `-- --kubernetes`, a real Kubernetes control plane too (etcd + kube-apiserver on loopback, test/harness/kube.ts,
 * started alongside the nodes): the reference spec's Kubernetes auth comes from the cluster itself (`--kubeconfig`,
 * `--create-reviewer`: host, CA, and a reviewer service account, binding and token made by sealkeeper) instead of
 * files; demo values go into secret/dev/my-app before the root token is revoked; after the story, the
 * `bootstrap manifests` output is applied with kubectl, the real External Secrets Operator runs out-of-cluster, and
 * the demo waits for the Kubernetes Secret dev/my-app-secrets and prints it.
 * Servers are stopped on exit, also on Ctrl-C.
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auditConfigStanza } from "../src/bootstrap/kinds/audit.js";
import { loadSpec } from "../src/bootstrap/spec.js";
import { processIO } from "../src/cli/io.js";
import { runCli } from "../src/cli/main.js";
import { VaultHttpError } from "../src/errors.js";
import { startCluster, type TestCluster, waitForHa } from "../test/harness/cluster.js";
import { type EsoController, installEsoCrds, startEso, waitFor } from "../test/harness/eso.js";
import { type JwtIssuer, startJwtIssuer } from "../test/harness/jwt-issuer.js";
import { type KubeCluster, kubeIdentities, startKubeCluster } from "../test/harness/kube.js";
import {
  gpgDecrypt,
  makeAgeOperator,
  makeGnupgHome,
  makePgpOperator,
  stopAllGpgAgents,
} from "../test/harness/operators.js";

const interactive = process.argv.includes("--interactive");
// --server vault (default) or openbao: which real server the three nodes run (the harness reads SEALKEEPER_SERVER)
const serverArg = process.argv.indexOf("--server");
const server = serverArg >= 0 ? process.argv[serverArg + 1] : (process.env.SEALKEEPER_SERVER ?? "vault");
if (server !== "vault" && server !== "openbao") {
  process.stderr.write(`demo: --server must be vault or openbao, got ${server ?? "nothing"}\n`);
  process.exit(1);
}
process.env.SEALKEEPER_SERVER = server;
const io = processIO();
let cluster: TestCluster | undefined;
let ciIssuer: JwtIssuer | undefined;
// --kubernetes: the API server (and, at the end, ESO) as well
const withKube = process.argv.includes("--kubernetes");
let kube: KubeCluster | undefined;
let eso: EsoController | undefined;
/** Clearly demo data: what ESO copies into the Kubernetes Secret. */
const DEMO_VALUES = { db_password: "demo-db-password-not-a-secret", api_key: "demo-api-key-not-a-secret" };

async function step(title: string, argv: string[], okCodes = [0], env: Record<string, string> = {}): Promise<void> {
  const bold = process.env.NO_COLOR ? (s: string) => s : (s: string) => `\x1b[1m${s}\x1b[0m`;
  process.stderr.write(
    `\n${bold(`== ${title}`)}\n$ ${Object.keys(env)
      .map((k) => `${k}=… `)
      .join("")}sealkeeper ${argv.join(" ")}\n`,
  );
  const code = await runCli(argv, { ...io, env: { ...process.env, ...env }, stdinIsTTY: interactive && io.stdinIsTTY });
  if (!okCodes.includes(code)) throw new Error(`${title}: exit ${code}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  process.stderr.write(`building or reusing the local ${server === "vault" ? "Vault" : "OpenBao"} server...\n`);
  execFileSync("bash", [server === "vault" ? "scripts/build-vault.sh" : "scripts/build-openbao.sh"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const work = mkdtempSync(join(tmpdir(), "sealkeeper-demo-"));
  const keys = join(work, "keys");
  mkdirSync(keys);
  // the reference specs as they are, but their file audit device logging into the demo directory (they say /vault/audit,
  // the Helm charts' audit volume); lint notes that this copy's log is under /tmp
  const spec = join(work, "spec", "bootstrap.yaml");
  const ciSpec = join(work, "spec", "ci-identities.yaml");
  cpSync("examples/reference", join(work, "spec"), { recursive: true });
  // GitHub's OIDC provider is not reachable from a loopback demo: a key made here, its JWKS served on 127.0.0.1,
  // stands in for it (same issuer string, so bound_issuer and the role's claims stay as the example has them)
  ciIssuer = await startJwtIssuer("https://token.actions.githubusercontent.com");
  for (const file of [spec, ciSpec]) {
    writeFileSync(
      file,
      readFileSync(file, "utf8")
        .replace("file_path: /vault/audit/audit.log", `file_path: ${join(work, "audit.log")}`)
        .replace("oidc_discovery_url: https://token.actions.githubusercontent.com", `jwks_url: ${ciIssuer.jwksUrl}`),
    );
  }
  // --kubernetes: the reviewer token is made by --create-reviewer, not read from the example's file
  if (withKube) writeFileSync(spec, readFileSync(spec, "utf8").replace(/^ +token_reviewer_jwt_file: .*\n/m, ""));
  // OpenBao refuses audit devices through its API: there the spec's device is declared in every node's configuration
  // (the stanza bootstrap plan prints for it), before the nodes start; Vault's apply enables it through the API
  const extraConfig = server === "openbao" ? loadSpec(spec).audit.map(auditConfigStanza).join("\n") : "";
  process.stderr.write(`demo directory: ${work}\nstarting a 3-node raft cluster on loopback...\n`);
  const clusterReady = startCluster(3, { parentDir: join(work, "cluster"), extraConfig });
  const kubeReady = withKube ? startDemoKube() : undefined;
  const home = makeGnupgHome(work);
  const pgp = ["alice", "bob", "carol"].map((n) => makePgpOperator(home, keys, n));
  const age = ["dave", "erin"].map((n) => makeAgeOperator(keys, n));
  const rootHolder = makePgpOperator(home, keys, "root-holder");
  cluster = await clusterReady;
  const addrs = cluster.nodes.flatMap((n) => ["-a", n.address]);
  const out = join(work, "ceremony");

  await step("status: three blank nodes", ["status", ...addrs], [2]);
  await step("init: 5 operators (3 OpenPGP, 2 age), threshold 3", [
    "init",
    "-a",
    cluster.nodes[0]!.address,
    "-n",
    "5",
    "-t",
    "3",
    ...pgp.flatMap((o) => ["--operator", `${o.name}=pgp:${o.publicKeyPath}`]),
    ...age.flatMap((o) => ["--operator", `${o.name}=age:${o.recipient}`]),
    "--root-token-recipient",
    `pgp:${rootHolder.publicKeyPath}`,
    "-o",
    out,
  ]);
  for (const [name, identity] of [
    ["alice.asc", pgp[0]!.secretKeyPath],
    ["dave.age", age[0]!.identityPath],
  ] as const) {
    await step(`shares check: ${name} opens with its operator's key`, [
      "shares",
      "check",
      "--file",
      join(out, name),
      "--identity",
      identity,
    ]);
  }
  if (interactive) {
    process.stderr.write(`\nshare files are in ${out}; operators' keys in ${keys}\n`);
    await step(
      "unseal: play each operator at the prompts",
      ["unseal", ...addrs, "--transcript", join(out, "transcript.jsonl")],
      [0, 2],
    );
  } else {
    await step("unseal: alice, bob and dave open their files; every node unsealed", [
      "unseal",
      ...addrs,
      "--non-interactive",
      "--share-file",
      join(out, "alice.asc"),
      "--identity",
      pgp[0]!.secretKeyPath,
      "--share-file",
      join(out, "bob.asc"),
      "--identity",
      pgp[1]!.secretKeyPath,
      "--share-file",
      join(out, "dave.age"),
      "--identity",
      age[0]!.identityPath,
      "--transcript",
      join(out, "transcript.jsonl"),
    ]);
  }
  await waitForHa(cluster.nodes);
  await step("transcript verify", ["transcript", "verify", join(out, "transcript.jsonl")]);

  // The root-token holder opens the sealed root token with their own key (real gpg); it goes only into the
  // environment of the next commands, never on screen.
  const rootToken = gpgDecrypt(rootHolder, join(out, "root-token.asc")).trim();
  const active = await activeAddress(cluster);
  // OpenBao's own variable on OpenBao (sealkeeper reads BAO_* before VAULT_*, as the bao CLI does)
  const asRoot: Record<string, string> = { [server === "openbao" ? "BAO_TOKEN" : "VAULT_TOKEN"]: rootToken };
  if (kubeReady) {
    kube = await kubeReady;
    // ESO runs on this machine, not in the cluster: its stores point at the active node's loopback address
    writeFileSync(
      spec,
      readFileSync(spec, "utf8").replace("server: http://vault.vault.svc.cluster.local:8200", `server: ${active}`),
    );
  }
  const fromCluster = kube ? ["--kubeconfig", kube.kubeconfig, "--create-reviewer"] : [];
  await step(
    "bootstrap plan: the reference architecture (file audit device first, kv-v2, Kubernetes auth, least-privilege policies)" +
      (kube ? "; Kubernetes auth from the cluster, its token reviewer to be created there" : ""),
    ["bootstrap", "plan", "-f", spec, "-a", active, ...fromCluster],
    [0],
    asRoot,
  );
  await step(
    "bootstrap apply: the reference architecture",
    ["bootstrap", "apply", "-f", spec, "-a", active, ...fromCluster],
    [0],
    asRoot,
  );
  if (kube) {
    await writeDemoValues(active, rootToken);
    await step(
      "bootstrap plan again: nothing to do, in the cluster (the reviewer token is kept) or on the server",
      ["bootstrap", "plan", "-f", spec, "-a", active, ...fromCluster, "--detailed-exitcode"],
      [0],
      asRoot,
    );
  }
  await step(
    "bootstrap apply: the CI identities (GitHub Actions role for acme/api main, AppRole for the backup host with its " +
      "secret_id sealed to dave's age key), verify, then revoke the root token (proven: lookup-self 403)",
    [
      "bootstrap",
      "apply",
      "-f",
      ciSpec,
      "-a",
      active,
      "--secret-id",
      `approle/backup=age:${age[1]!.recipient}`,
      "--secret-id-out",
      join(work, "secret-ids"),
      "--revoke-root-token",
    ],
    [0],
    asRoot,
  );
  await ciLogins(active, ciIssuer);
  await step("policy lint: the reference specs have no findings", [
    "policy",
    "lint",
    "examples/reference/bootstrap.yaml",
    "examples/reference/ci-identities.yaml",
  ]);
  process.stderr.write(`audit log of everything above (secrets HMACed): ${join(work, "audit.log")}\n`);
  await step("status: one active, two standbys", ["status", ...addrs]);
  if (kube) await esoSync(kube, spec, work);
  process.stderr.write(`\nserver: ${server === "vault" ? "HashiCorp Vault 1.21.0" : "OpenBao 2.6.2"}\n`);
  process.stderr.write(
    `\ndone in ${((Date.now() - started) / 1000).toFixed(1)}s; ceremony files and transcript: ${out}\n`,
  );
}

/**
 * A GitHub Actions job of acme/api on main logs in with its OIDC token and gets exactly the role's policy; the same
 * repository's feature branch is refused (the client's VaultHttpError carries the server's answer).
 */
async function ciLogins(address: string, issuer: JwtIssuer): Promise<void> {
  process.stderr.write("\n== jwt login: a GitHub Actions job of acme/api, on main and on a feature branch\n");
  const client = cluster!.nodes.find((n) => n.address === address)!.client();
  const login = (ref: string) =>
    client.write<{ auth: { token_policies: string[] } }>("auth/jwt-github/login", {
      role: "deploy-api",
      jwt: issuer.sign({ aud: "https://github.com/acme", repository: "acme/api", ref }),
    });
  try {
    const ok = await login("refs/heads/main");
    process.stderr.write(`refs/heads/main: logged in, policies [${ok.auth.token_policies.join(", ")}]\n`);
    const refused = await login("refs/heads/feature").then(
      () => {
        throw new Error("jwt login from refs/heads/feature was accepted: the role's bound_claims are not applied");
      },
      (err: unknown) => err,
    );
    if (!(refused instanceof VaultHttpError)) throw refused;
    process.stderr.write(`refs/heads/feature: refused (HTTP ${refused.status}: ${refused.errors.join("; ")})\n`);
  } finally {
    await client.close();
  }
}

/** etcd + kube-apiserver on loopback, ESO's CRDs, and the namespaces and service accounts of the reference spec. */
async function startDemoKube(): Promise<KubeCluster> {
  const k = await startKubeCluster();
  await installEsoCrds(k);
  // no reviewer here: --create-reviewer makes it
  await k.kubectlOk(["apply", "-f", "-"], {
    stdin: kubeIdentities(
      [
        ["dev", "my-app"],
        ["production", "my-app"],
        ["external-secrets", "external-secrets"],
      ],
      { reviewer: false },
    ),
  });
  return k;
}

/** Demo values at secret/dev/my-app, written as root before the root token is revoked. */
async function writeDemoValues(address: string, rootToken: string): Promise<void> {
  process.stderr.write(
    `\n== kv: demo values into secret/dev/my-app (as root, before the root token goes): keys ${Object.keys(DEMO_VALUES).join(", ")}\n`,
  );
  const client = cluster!.nodes.find((n) => n.address === address)!.client(rootToken);
  try {
    await client.write("secret/data/dev/my-app", { data: DEMO_VALUES });
  } finally {
    await client.close();
  }
}

/**
 * The GitOps end: `bootstrap manifests` applied with kubectl, ESO out-of-cluster, and the Secret it makes from the
 * server's KV values, waited on (generous deadline) and printed.
 */
async function esoSync(k: KubeCluster, spec: string, work: string): Promise<void> {
  const { runSealkeeper } = await import("../test/harness/run-cli.js");
  process.stderr.write(
    `\n== External Secrets: the manifests into the cluster\n$ sealkeeper bootstrap manifests -f ${spec} | kubectl apply -f -\n`,
  );
  const manifests = await runSealkeeper(["bootstrap", "manifests", "-f", spec]);
  if (manifests.code !== 0) throw new Error(`bootstrap manifests: exit ${manifests.code}: ${manifests.stderr}`);
  process.stderr.write(await k.kubectlOk(["apply", "-f", "-"], { stdin: manifests.stdout }));
  process.stderr.write("\n== External Secrets Operator v0.16.2, out-of-cluster\n");
  eso = await startEso(k, work);
  process.stderr.write(`controllers up in ${(eso.readyMs / 1000).toFixed(1)} s (log: ${eso.log})\n`);
  const t0 = Date.now();
  const secret = await waitFor("the Secret dev/my-app-secrets", 180_000, async () => {
    const r = await k.kubectl(["get", "secret", "my-app-secrets", "-n", "dev", "-o", "json"]);
    return r.code === 0 ? (JSON.parse(r.stdout) as { data?: Record<string, string> }) : undefined;
  });
  process.stderr.write(
    `\n== kubectl get secret my-app-secrets -n dev: synced by ESO in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
  );
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    process.stderr.write(`  ${key}: ${Buffer.from(value, "base64").toString("utf8")}  (demo data)\n`);
  }
}

/** The address of the node health says is active. */
async function activeAddress(c: TestCluster): Promise<string> {
  for (const node of c.nodes) {
    const client = node.client();
    try {
      if ((await client.health()).status === 200) return node.address;
    } finally {
      await client.close();
    }
  }
  throw new Error("no active node");
}

async function shutdown(code: number): Promise<never> {
  await eso?.stop().catch(() => undefined);
  await kube?.stop().catch(() => undefined);
  await cluster?.stop().catch(() => undefined);
  await ciIssuer?.close().catch(() => undefined);
  // the operators' gpg-agent (gpg started it for the demo's GNUPGHOME) goes too: on success, failure and Ctrl-C
  stopAllGpgAgents();
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(130));
process.on("SIGTERM", () => void shutdown(143));
main().then(
  () => shutdown(0),
  (err) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return shutdown(1);
  },
);
