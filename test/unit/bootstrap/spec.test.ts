import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseTtlSeconds } from "../../../src/bootstrap/duration.js";
import { loadSpec, parseSpec, SpecError } from "../../../src/bootstrap/spec.js";

const K8S = `version: 1
mounts:
  - path: secret
    type: kv
    options: { version: 2 }
auth:
  - path: kubernetes
    type: kubernetes
`;

function specError(text: string, opts = {}): string {
  try {
    parseSpec(text, "spec.yaml", opts);
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as Error).message;
  }
  throw new Error("no error");
}

describe("spec schema", () => {
  it("names an audit device without its file_path or address, and one declared twice", () => {
    expect(specError("version: 1\naudit:\n  - path: file\n    type: file\n    options: { mode: '0600' }\n")).toBe(
      "spec.yaml:5: audit[0].options: a file audit device needs options.file_path",
    );
    expect(specError("version: 1\naudit:\n  - { path: s, type: socket }\n")).toBe(
      "spec.yaml:3: audit[0].options: a socket audit device needs options.address",
    );
    expect(
      specError(
        "version: 1\naudit:\n  - { path: f, type: file, options: { file_path: /a } }\n  - { path: f, type: file, options: { file_path: /b } }\n",
      ),
    ).toBe("spec.yaml:4: audit[1].path: audit device f is declared twice");
    expect(specError("version: 1\naudit:\n  - { path: f, type: syslog }\n")).toBe(
      'spec.yaml:3: audit[0].type: must be one of "file", "socket"',
    );
  });
  it("names file, line and key for an unknown key", () => {
    expect(specError(`${K8S}    colour: blue\n`)).toBe("spec.yaml:9: auth[0].colour: unknown key");
  });
  it("names a wrong type", () => {
    expect(specError("version: 1\nmounts:\n  - path: secret\n    type: [kv]\n")).toBe(
      "spec.yaml:4: mounts[0].type: expected string",
    );
  });
  it("names a missing required key at its parent's line", () => {
    expect(specError("version: 1\nmounts:\n  - path: secret\n")).toBe(
      "spec.yaml:3: mounts[0].type: required key is missing",
    );
  });
  it("rejects an unparseable TTL, naming it", () => {
    const text = `${K8S}    roles:\n      - name: r\n        bound_service_account_names: [a]\n        bound_service_account_namespaces: [b]\n        token_max_ttl: 2 weeks\n`;
    expect(specError(text)).toBe(
      'spec.yaml:13: auth[0].roles[0].token_max_ttl: cannot parse duration "2 weeks" (use seconds or e.g. 30m, 1h, 1h30m, 7d)',
    );
  });
  it("rejects broken YAML with its line", () => {
    expect(specError("version: 1\nmounts: [\n  - x\n")).toMatch(/^spec\.yaml:\d+: not valid YAML/);
  });
  it("rejects an inline reviewer JWT (secrets come from a file or env)", () => {
    expect(specError(`${K8S}    config:\n      kubernetes_host: https://k\n      token_reviewer_jwt: eyJ\n`)).toBe(
      "spec.yaml:11: auth[0].config.token_reviewer_jwt: unknown key",
    );
  });
  it("reads the reviewer JWT from env, and names a missing variable", () => {
    const text = `${K8S}    config:\n      kubernetes_host: https://k\n      token_reviewer_jwt_env: REVIEWER\n`;
    expect(specError(text, { env: {} })).toBe(
      "spec.yaml:11: auth[0].config.token_reviewer_jwt_env: REVIEWER is not set",
    );
    expect(parseSpec(text, "spec.yaml", { env: { REVIEWER: "jwt" } }).auth[0]!.config!.token_reviewer_jwt).toBe("jwt");
  });
  it("names an unreadable CA file", () => {
    const dir = mkdtempSync(join(tmpdir(), "spec-"));
    writeFileSync(
      join(dir, "s.yaml"),
      `${K8S}    config:\n      kubernetes_host: https://k\n      kubernetes_ca_cert_file: nope.pem\n`,
    );
    expect(() => loadSpec(join(dir, "s.yaml"))).toThrow(
      /s\.yaml:11: auth\[0\]\.config\.kubernetes_ca_cert_file: cannot read CA certificate file nope\.pem: ENOENT/,
    );
  });
  it("rejects duplicate policies, including app-generated names", () => {
    const text = `${K8S}policies:\n  - name: a-dev-read\n    rules: [{ path: secret/data/x, capabilities: [read] }]\napps:\n  - name: a\n    environments: [{ name: dev }]\n`;
    expect(specError(text)).toMatch(/policy a-dev-read is defined twice/);
  });
  it("rejects an app on a mount that is not kv v2", () => {
    expect(specError(`${K8S}apps:\n  - name: a\n    mount: kv\n    environments: [{ name: dev }]\n`)).toBe(
      "spec.yaml:11: apps[0].mount: kv is not a kv v2 mount declared under mounts",
    );
  });
  it("refuses to manage the token auth method and the root policy", () => {
    expect(specError("version: 1\nauth:\n  - path: token\n    type: token\n")).toMatch(/token auth method is built in/);
    expect(specError("version: 1\npolicies:\n  - name: root\n    hcl: x\n")).toMatch(/root policy cannot be managed/);
  });
  it("expands an app into one read-only policy and one role per environment", () => {
    const s = parseSpec(
      `${K8S}apps:\n  - name: web\n    secrets: [web, shared/db]\n    environments:\n      - name: dev\n      - name: prod\n        namespace: production\n        service_account: web-sa\n`,
      "spec.yaml",
    );
    expect(s.policies.map((p) => [p.name, p.text])).toEqual([
      [
        "web-dev-read",
        'path "secret/data/dev/web" {\n  capabilities = ["read"]\n}\n\npath "secret/data/dev/shared/db" {\n  capabilities = ["read"]\n}\n',
      ],
      [
        "web-prod-read",
        'path "secret/data/prod/web" {\n  capabilities = ["read"]\n}\n\npath "secret/data/prod/shared/db" {\n  capabilities = ["read"]\n}\n',
      ],
    ]);
    const prod = s.roles.find((r) => r.name === "web-prod")!;
    expect(prod).toMatchObject({
      authPath: "kubernetes",
      bound_service_account_names: ["web-sa"],
      bound_service_account_namespaces: ["production"],
      token_policies: ["web-prod-read"],
      token_ttl: 3600,
      token_max_ttl: 14400,
    });
  });
  it("loads the reference spec", () => {
    const s = loadSpec("examples/reference/bootstrap.yaml");
    expect(s.roles.map((r) => r.name)).toEqual(["eso-role", "my-app-dev", "my-app-production"]);
    expect(s.auth[0]!.config!.token_reviewer_jwt).toMatch(/^eyJ/);
    expect(s.eso!.clusterStores[0]!.serviceAccount).toEqual({
      name: "external-secrets",
      namespace: "external-secrets",
    });
  });
});

describe("parseTtlSeconds", () => {
  it.each([
    [90, 90],
    ["90", 90],
    ["90s", 90],
    ["1h30m", 5400],
    ["7d", 604800],
    ["1.5h", 5400],
  ])("%s -> %s", (input, out) => expect(parseTtlSeconds(input)).toBe(out));
  it.each(["", "1y", "h", "1h 30m", "-5", "5x"])("rejects %j", (input) =>
    expect(parseTtlSeconds(input)).toBeUndefined(),
  );
});
