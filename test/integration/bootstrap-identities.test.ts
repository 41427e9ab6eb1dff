/**
 * CI and machine identities against a real server (dev mode): a jwt auth method for CI, configured from a JWKS this
 * test serves on loopback with a key it made, and an approle method; planned, applied, re-planned to no changes,
 * drift restored, verified. End to end: a JWT with the right repository, ref, audience and issuer logs in with
 * exactly the role's policies; each wrong claim is refused. AppRole logs in with a secret_id that apply delivered
 * sealed to an age recipient and that appears nowhere in clear.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VaultHttpError } from "../../src/errors.js";
import type { VaultClient } from "../../src/vault/client.js";
import { type DevServer, startDevServer } from "../harness/cluster.js";
import { type JwtIssuer, startJwtIssuer } from "../harness/jwt-issuer.js";
import { ageDecrypt, makeAgeOperator } from "../harness/operators.js";
import { runSealkeeper } from "../harness/run-cli.js";

let server: DevServer;
let root: VaultClient;
let issuer: JwtIssuer;
let dir: string;
let specFile: string;
let env: Record<string, string>;

const AUDIENCE = "https://github.com/acme";
const cli = (args: string[]) => runSealkeeper(args, { env });

function spec(): string {
  return `version: 1
mounts:
  - path: secret
    type: kv
    options: { version: 2 }
auth:
  - path: jwt-ci
    type: jwt
    description: GitHub Actions OIDC tokens
    config:
      jwks_url: ${issuer.jwksUrl}
      bound_issuer: ${issuer.issuer}
      jwt_supported_algs: [RS256]
    roles:
      - name: deploy
        bound_audiences: [${AUDIENCE}]
        bound_claims: { repository: acme/api, ref: refs/heads/main }
        user_claim: repository
        token_policies: [ci-deploy]
        token_no_default_policy: true
        token_ttl: 10m
        token_max_ttl: 30m
  - path: approle
    type: approle
    roles:
      - name: backup
        token_policies: [backup-read]
        secret_id_ttl: 24h
        secret_id_num_uses: 5
        secret_id_bound_cidrs: [127.0.0.1/32]
        token_bound_cidrs: [127.0.0.1/32]
        token_ttl: 1h
        token_max_ttl: 4h
policies:
  - name: ci-deploy
    rules: [{ path: secret/data/ci/api, capabilities: [read] }]
  - name: backup-read
    rules: [{ path: secret/data/backup/db, capabilities: [read] }]
`;
}

beforeAll(async () => {
  [server, issuer] = await Promise.all([startDevServer(), startJwtIssuer()]);
  root = server.client();
  dir = mkdtempSync(join(tmpdir(), "sealkeeper-identities-"));
  specFile = join(dir, "bootstrap.yaml");
  writeFileSync(specFile, spec());
  env = { VAULT_ADDR: server.address, VAULT_TOKEN: server.rootToken };
  await root.write("secret/data/ci/api", { data: { deploy_key: "ci-secret" } });
  await root.write("secret/data/backup/db", { data: { password: "backup-secret" } });
});

afterAll(async () => {
  await root?.close();
  await issuer?.close();
  await server?.stop();
});

describe("jwt and approle: plan, apply, drift, verify", () => {
  it("plans the methods, their config and roles, applies them, then plans no changes", async () => {
    const plan = await cli(["bootstrap", "plan", "-f", specFile, "--format", "json", "--detailed-exitcode"]);
    expect(plan.code, plan.stderr).toBe(2);
    const ids = (JSON.parse(plan.stdout) as { changes: { id: string; action: string }[] }).changes.map(
      (c) => `${c.action} ${c.id}`,
    );
    expect(ids).toEqual([
      "create auth jwt-ci/",
      "create auth approle/",
      "create policy ci-deploy",
      "create policy backup-read",
      "create config auth/jwt-ci/config",
      "create role jwt-ci/deploy",
      "create role approle/backup",
    ]);
    const r = await cli(["bootstrap", "apply", "-f", specFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Apply complete: 7 step(s), 7 write request(s).");
    const again = await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"]);
    expect(again.stdout).toBe("No changes: the server matches the spec.\n");
    expect(again.code).toBe(0);
  });

  it("reads back in the server's terms", async () => {
    const role = await root.read<{ data: Record<string, unknown> }>("auth/jwt-ci/role/deploy");
    expect(role?.data).toMatchObject({
      role_type: "jwt",
      bound_audiences: [AUDIENCE],
      bound_claims: { repository: "acme/api", ref: "refs/heads/main" },
      user_claim: "repository",
      token_policies: ["ci-deploy"],
      token_ttl: 600,
    });
    const app = await root.read<{ data: Record<string, unknown> }>("auth/approle/role/backup");
    expect(app?.data).toMatchObject({ secret_id_ttl: 86400, secret_id_num_uses: 5, token_policies: ["backup-read"] });
  });

  it("shows drift field by field and apply restores it", async () => {
    await root.write("auth/jwt-ci/role/deploy", {
      role_type: "jwt",
      user_claim: "repository",
      bound_audiences: [AUDIENCE],
      bound_claims: { repository: "acme/*" },
      bound_claims_type: "glob",
    });
    await root.write("auth/approle/role/backup", { secret_id_num_uses: 0 });
    const r = await cli(["bootstrap", "plan", "-f", specFile, "--format", "json", "--detailed-exitcode"]);
    expect(r.code).toBe(2);
    const plan = JSON.parse(r.stdout) as { changes: { id: string; fields: { field: string }[] }[] };
    expect(plan.changes.map((c) => [c.id, c.fields.map((f) => f.field)])).toEqual([
      ["role jwt-ci/deploy", ["bound_claims", "bound_claims_type"]],
      ["role approle/backup", ["secret_id_num_uses"]],
    ]);
    expect((await cli(["bootstrap", "apply", "-f", specFile])).code).toBe(0);
    expect((await cli(["bootstrap", "plan", "-f", specFile, "--detailed-exitcode"])).code).toBe(0);
  });

  it("verify proves each new identity holds exactly its policies", async () => {
    const r = await cli(["bootstrap", "verify", "-f", specFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/jwt-ci\/deploy\s+secret\/data\/ci\/api\s+own\s+read\s+read\s+ok/);
    expect(r.stdout).toMatch(/jwt-ci\/deploy\s+secret\/data\/backup\/db\s+neighbour\s+deny\s+deny\s+ok/);
    expect(r.stdout).toMatch(/approle\/backup\s+secret\/data\/backup\/db\s+own\s+read\s+read\s+ok/);
    expect(r.stdout).toMatch(/approle\/backup\s+secret\/data\/ci\/api\s+neighbour\s+deny\s+deny\s+ok/);
  });
});

describe("jwt login end to end (GitHub Actions-style claims, a JWKS on loopback)", () => {
  const good = () => ({
    aud: AUDIENCE,
    sub: "repo:acme/api:ref:refs/heads/main",
    repository: "acme/api",
    ref: "refs/heads/main",
  });
  const login = (jwt: string) =>
    root.write<{ auth: { client_token: string; token_policies: string[]; policies: string[] } }>("auth/jwt-ci/login", {
      role: "deploy",
      jwt,
    });
  const refused = async (jwt: string): Promise<string> => {
    const err = await login(jwt).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VaultHttpError);
    // both servers answer a token that fails validation with 400 (bad request), as their jwt plugin does
    expect((err as VaultHttpError).status).toBe(400);
    return (err as VaultHttpError).errors.join("; ");
  };

  it("the right claims log in with exactly the role's policies, and read only the role's secret", async () => {
    const res = await login(issuer.sign(good()));
    expect(res.auth.token_policies).toEqual(["ci-deploy"]);
    expect(res.auth.policies).toEqual(["ci-deploy"]);
    const ci = server.client(res.auth.client_token);
    try {
      const own = await ci.read<{ data: { data: Record<string, string> } }>("secret/data/ci/api");
      expect(own?.data.data.deploy_key).toBe("ci-secret");
      const other = await ci.read("secret/data/backup/db").catch((e: unknown) => e);
      expect((other as VaultHttpError).status).toBe(403);
    } finally {
      await ci.close();
    }
    expect(issuer.jwksFetches()).toBeGreaterThan(0);
  });

  it("refuses a wrong repository, a wrong ref, a wrong audience, a wrong issuer and a forged signature", async () => {
    expect(await refused(issuer.sign({ ...good(), repository: "acme/other" }))).toMatch(/claim "repository"/);
    expect(await refused(issuer.sign({ ...good(), ref: "refs/heads/feature" }))).toMatch(/claim "ref"/);
    expect(await refused(issuer.sign({ ...good(), aud: "https://github.com/evil" }))).toMatch(/aud/);
    expect(await refused(issuer.sign({ ...good(), iss: "https://evil.example" }))).toMatch(/iss/);
    expect(await refused(issuer.sign(good(), { forged: true }))).toMatch(/signature|verify|key/i);
  });
});

describe("approle: secret_id delivered sealed, never in clear", () => {
  it("apply --secret-id seals a new secret_id to an age recipient; it logs in with the role's policies", async () => {
    const op = makeAgeOperator(join(dir), "backup-host");
    const out = join(dir, "secret-ids");
    const r = await cli([
      "bootstrap",
      "apply",
      "-f",
      specFile,
      "--secret-id",
      `approle/backup=age:${op.recipient}`,
      "--secret-id-out",
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out)).toEqual(["approle-backup.secret-id.age"]);
    expect(r.stdout).toMatch(
      /secret_id for approle\/backup sealed to .*approle-backup\.secret-id\.age \(accessor \S+\)/,
    );
    const secretId = ageDecrypt(op, join(out, "approle-backup.secret-id.age")).trim();
    expect(secretId).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.stdout + r.stderr).not.toContain(secretId);
    expect(readFileSync(join(out, "approle-backup.secret-id.age"), "utf8")).not.toContain(secretId);
    const roleId = (await root.read<{ data: { role_id: string } }>("auth/approle/role/backup/role-id"))!.data.role_id;
    const res = await root.write<{ auth: { policies: string[]; client_token: string } }>("auth/approle/login", {
      role_id: roleId,
      secret_id: secretId,
    });
    expect(res.auth.policies.sort()).toEqual(["backup-read", "default"]);
    await root.write("auth/token/revoke", { token: res.auth.client_token });
  });

  it("a rerun mints nothing; --rotate-secret-id mints one and destroys the previous (issue 35)", async () => {
    const op = makeAgeOperator(join(dir), "backup-host-2");
    const out = join(dir, "secret-ids");
    const args = ["bootstrap", "apply", "-f", specFile, "--secret-id", `approle/backup=age:${op.recipient}`];
    const before = await root.list("auth/approle/role/backup/secret-id");
    expect(before.length).toBeGreaterThan(0);
    // the same directory, then a new one: both green, nothing minted, the old files untouched
    for (const target of [out, join(dir, "secret-ids-new")]) {
      const r = await cli([...args, "--secret-id-out", target, "--format", "json"]);
      expect(r.code, r.stderr).toBe(0);
      const doc = JSON.parse(r.stdout);
      expect(doc.secretIds).toEqual([expect.objectContaining({ role: "approle/backup", status: "exists" })]);
      expect(await root.list("auth/approle/role/backup/secret-id")).toEqual(before);
    }
    expect(readdirSync(out)).toEqual(["approle-backup.secret-id.age"]);
    const rotated = await cli([...args, "--secret-id-out", out, "--rotate-secret-id"]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/approle-backup\.secret-id\.2\.age \(accessor \S+\)/);
    expect(rotated.stdout).toMatch(/previous secret_id\(s\) of approle\/backup were destroyed/);
    const after = await root.list("auth/approle/role/backup/secret-id");
    expect(after).toHaveLength(1);
    expect(before).not.toContain(after[0]);
    expect(readdirSync(out).sort()).toEqual(["approle-backup.secret-id.2.age", "approle-backup.secret-id.age"]);
    // the new one logs in; the first file's secret_id no longer does
    const roleId = (await root.read<{ data: { role_id: string } }>("auth/approle/role/backup/role-id"))!.data.role_id;
    const fresh = ageDecrypt(op, join(out, "approle-backup.secret-id.2.age")).trim();
    const res = await root.write<{ auth: { client_token: string } }>("auth/approle/login", {
      role_id: roleId,
      secret_id: fresh,
    });
    await root.write("auth/token/revoke", { token: res.auth.client_token });
  });

  it("refuses an unknown role or a bad recipient before creating any secret_id", async () => {
    const before = await root.list("auth/approle/role/backup/secret-id");
    const unknown = await cli(["bootstrap", "apply", "-f", specFile, "--secret-id", "approle/nope=age:age1x"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("the spec declares no approle role approle/nope");
    const bad = await cli(["bootstrap", "apply", "-f", specFile, "--secret-id", "approle/backup=age:not-a-key"]);
    expect(bad.code).toBe(1);
    expect(await root.list("auth/approle/role/backup/secret-id")).toEqual(before);
  });
});

describe("identity entities and groups: plan, apply, drift, verify, and a real login that inherits the group's policies", () => {
  // the same spec, plus a team: an entity for the acme/api pipeline (its alias on jwt-ci is the login's user_claim
  // value, the repository), another member, and an internal group whose policy every member's token inherits
  const teamSpec = () => `${spec()}  - name: ci-extra
    rules: [{ path: secret/data/ci/extra, capabilities: [read] }]
  - name: ops-own
    rules: [{ path: secret/data/ops/own, capabilities: [read] }]
identity:
  entities:
    - name: acme-api-pipeline
      metadata: { repository: acme/api }
      aliases: [{ mount: jwt-ci, name: acme/api }]
    - name: ops-person
      policies: [ops-own]
  groups:
    - name: deployers
      policies: [ci-extra]
      member_entities: [acme-api-pipeline, ops-person]
`;
  let teamFile: string;
  beforeAll(async () => {
    teamFile = join(dir, "team.yaml");
    writeFileSync(teamFile, teamSpec());
    await root.write("secret/data/ci/extra", { data: { token: "extra-secret" } });
  });

  it("plans the entities, the alias (after its auth method) and the group, applies them, then plans no changes", async () => {
    const plan = await cli(["bootstrap", "plan", "-f", teamFile, "--format", "json", "--detailed-exitcode"]);
    expect(plan.code, plan.stderr).toBe(2);
    const ids = (JSON.parse(plan.stdout) as { changes: { id: string; action: string }[] }).changes.map(
      (c) => `${c.action} ${c.id}`,
    );
    expect(ids).toEqual([
      "create policy ci-extra",
      "create policy ops-own",
      "create entity acme-api-pipeline",
      "create entity ops-person",
      "create entity-alias jwt-ci/acme/api",
      "create group deployers",
    ]);
    const r = await cli(["bootstrap", "apply", "-f", teamFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("Apply complete: 6 step(s), 6 write request(s).");
    const again = await cli(["bootstrap", "plan", "-f", teamFile, "--detailed-exitcode"]);
    expect(again.stdout).toBe("No changes: the server matches the spec.\n");
    expect(again.code).toBe(0);
  });

  it("reads back in the server's terms: members by ID, the alias on the jwt method's accessor", async () => {
    const pipeline = (await root.read<{ data: Record<string, unknown> }>("identity/entity/name/acme-api-pipeline"))!
      .data;
    const person = (await root.read<{ data: Record<string, unknown> }>("identity/entity/name/ops-person"))!.data;
    const group = (await root.read<{ data: Record<string, unknown> }>("identity/group/name/deployers"))!.data;
    expect(group).toMatchObject({ type: "internal", policies: ["ci-extra"] });
    expect([...(group.member_entity_ids as string[])].sort()).toEqual([pipeline.id, person.id].sort());
    const auth = await root.read<
      Record<string, { accessor: string }> & { data?: Record<string, { accessor: string }> }
    >("sys/auth");
    const accessor = (auth?.data ?? auth)!["jwt-ci/"]!.accessor;
    expect(pipeline.aliases).toEqual([expect.objectContaining({ name: "acme/api", mount_accessor: accessor })]);
    expect(pipeline.metadata).toEqual({ repository: "acme/api" });
    expect(person.policies).toEqual(["ops-own"]);
  });

  it("a pipeline login is the entity: its token inherits the group's policy and reads the group's secret", async () => {
    const res = await root.write<{
      auth: { client_token: string; token_policies: string[]; identity_policies?: string[]; entity_id: string };
    }>("auth/jwt-ci/login", {
      role: "deploy",
      jwt: issuer.sign({
        aud: AUDIENCE,
        sub: "repo:acme/api:ref:refs/heads/main",
        repository: "acme/api",
        ref: "refs/heads/main",
      }),
    });
    const pipeline = (await root.read<{ data: { id: string } }>("identity/entity/name/acme-api-pipeline"))!.data;
    expect(res.auth.entity_id).toBe(pipeline.id);
    expect(res.auth.token_policies).toEqual(["ci-deploy"]);
    expect(res.auth.identity_policies).toEqual(["ci-extra"]);
    const ci = server.client(res.auth.client_token);
    try {
      const extra = await ci.read<{ data: { data: Record<string, string> } }>("secret/data/ci/extra");
      expect(extra?.data.data.token).toBe("extra-secret");
      const denied = await ci.read("secret/data/ops/own").catch((e: unknown) => e);
      expect((denied as VaultHttpError).status).toBe(403);
    } finally {
      await ci.close();
      await root.write("auth/token/revoke", { token: res.auth.client_token });
    }
  });

  it("shows membership and policy drift by name and apply restores it", async () => {
    await root.write("identity/group/name/deployers", { policies: ["ci-extra", "ops-own"], member_entity_ids: [] });
    await root.write("identity/entity/name/ops-person", { policies: [] });
    const r = await cli(["bootstrap", "plan", "-f", teamFile, "--format", "json", "--detailed-exitcode"]);
    expect(r.code).toBe(2);
    const plan = JSON.parse(r.stdout) as {
      changes: { id: string; fields: { field: string; before?: unknown; after?: unknown }[] }[];
    };
    expect(plan.changes.map((c) => [c.id, c.fields.map((f) => f.field)])).toEqual([
      ["entity ops-person", ["policies"]],
      ["group deployers", ["policies", "member_entities"]],
    ]);
    expect(plan.changes[1]!.fields[1]).toMatchObject({ before: [], after: ["acme-api-pipeline", "ops-person"] });
    expect((await cli(["bootstrap", "apply", "-f", teamFile])).code).toBe(0);
    expect((await cli(["bootstrap", "plan", "-f", teamFile, "--detailed-exitcode"])).code).toBe(0);
  });

  it("verify proves each entity's effective policies (its own and its groups')", async () => {
    const r = await cli(["bootstrap", "verify", "-f", teamFile]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/identity\/entity\/acme-api-pipeline\s+secret\/data\/ci\/extra\s+own\s+read\s+read\s+ok/);
    expect(r.stdout).toMatch(
      /identity\/entity\/acme-api-pipeline\s+secret\/data\/ops\/own\s+neighbour\s+deny\s+deny\s+ok/,
    );
    expect(r.stdout).toMatch(/identity\/entity\/ops-person\s+secret\/data\/ops\/own\s+own\s+read\s+read\s+ok/);
    expect(r.stdout).toMatch(/identity\/entity\/ops-person\s+secret\/data\/ci\/extra\s+own\s+read\s+read\s+ok/);
  });

  it("refuses a group member the spec does not declare, and an alias on an auth method nobody has", async () => {
    const bad = join(dir, "team-bad.yaml");
    writeFileSync(
      bad,
      teamSpec().replace("member_entities: [acme-api-pipeline, ops-person]", "member_entities: [nobody]"),
    );
    const r = await cli(["bootstrap", "plan", "-f", bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /team-bad\.yaml:\d+: identity\.groups: group deployers: member entity nobody is not in identity\.entities/,
    );
    writeFileSync(bad, teamSpec().replace("mount: jwt-ci, name: acme/api", "mount: oidc-nowhere, name: acme/api"));
    const c = await cli(["bootstrap", "plan", "-f", bad]);
    expect(c.stdout + c.stderr).toMatch(
      /alias acme\/api names auth method oidc-nowhere\/, which neither the server nor the spec has/,
    );
  });
});
