/**
 * The identity kind's plan (pure): members and aliases planned as references by name that apply resolves (an entity
 * or auth method created in the same apply has no ID yet), and drift compared by name, not by ID.
 */
import { describe, expect, it } from "vitest";
import { type ObservedState, planBootstrap } from "../../../src/bootstrap/plan.js";
import { parseSpec } from "../../../src/bootstrap/spec.js";

const spec = parseSpec(
  `version: 1
auth: [{ path: oidc, type: jwt }]
identity:
  entities:
    - { name: alice, policies: [own], aliases: [{ mount: oidc, name: alice@example.com }] }
    - { name: bob }
  groups:
    - { name: team, policies: [team-read], member_entities: [alice, bob] }
`,
  "s.yaml",
);

function observed(): ObservedState {
  return {
    mounts: {},
    auth: {
      token: { type: "token", description: "", options: {} },
      oidc: { type: "jwt", description: "", options: {} },
    },
    authConfigs: {},
    roles: {},
    policyNames: [],
    policies: {},
    entities: {
      alice: {
        id: "id-a",
        policies: ["own"],
        metadata: {},
        aliases: [{ mountPath: "auth/oidc/", name: "alice@example.com" }],
      },
      bob: { id: "id-b", policies: [], metadata: {}, aliases: [] },
    },
    groups: {
      team: { id: "g", type: "internal", policies: ["team-read"], memberEntityIds: ["id-b", "id-a"], metadata: {} },
    },
  };
}

describe("identity plan", () => {
  it("on an empty server: entities (phase 2), then the alias and the group with references by name (phase 3)", () => {
    const o = observed();
    o.entities = {};
    o.groups = {};
    const changes = planBootstrap(spec, o).changes.filter((c) => c.kind !== "auth");
    expect(changes.map((c) => [c.phase, c.action, c.id])).toEqual([
      [2, "create", "entity alice"],
      [2, "create", "entity bob"],
      [3, "create", "entity-alias oidc/alice@example.com"],
      [3, "create", "group team"],
    ]);
    expect(changes[2]!.requests[0]).toEqual({
      method: "POST",
      path: "identity/entity-alias",
      body: { name: "alice@example.com" },
      refs: [
        { field: "canonical_id", refs: [{ entity: "alice" }] },
        { field: "mount_accessor", refs: [{ authAccessor: "oidc" }] },
      ],
    });
    expect(changes[3]!.requests[0]).toMatchObject({
      path: "identity/group/name/team",
      body: { type: "internal", policies: ["team-read"] },
      refs: [{ field: "member_entity_ids", refs: [{ entity: "alice" }, { entity: "bob" }], list: true }],
    });
  });

  it("converged (members in another order): no changes", () => {
    expect(planBootstrap(spec, observed()).changes).toEqual([]);
  });

  it("a member removed on the server and an unknown ID added: drift shown by name", () => {
    const o = observed();
    o.groups!.team!.memberEntityIds = ["id-a", "id-stranger"];
    const [c] = planBootstrap(spec, o).changes;
    expect(c).toMatchObject({ id: "group team", action: "update", phase: 3 });
    expect(c!.fields).toEqual([
      { field: "member_entities", before: ["alice", "id-stranger"], after: ["alice", "bob"] },
    ]);
  });

  it("an external group of the same name is a conflict, not an update", () => {
    const o = observed();
    o.groups!.team!.type = "external";
    expect(planBootstrap(spec, o).conflicts).toEqual([
      "group team is an external group on the server; the spec declares an internal one",
    ]);
  });

  it("refuses duplicates, two aliases on one method, and undeclared members at file:line", () => {
    const bad = (identity: string) => () => parseSpec(`version: 1\nidentity:\n${identity}`, "s.yaml");
    expect(bad("  entities: [{ name: a }, { name: a }]\n")).toThrow(
      /^s\.yaml:3: identity\.entities: entity a is defined twice$/,
    );
    expect(bad("  entities:\n    - { name: a, aliases: [{ mount: m, name: x }, { mount: m, name: y }] }\n")).toThrow(
      /entity a has two aliases on auth method m/,
    );
    expect(bad("  groups: [{ name: g, member_entities: [ghost] }]\n")).toThrow(
      /^s\.yaml:3: identity\.groups: group g: member entity ghost is not in identity\.entities$/,
    );
  });
});
