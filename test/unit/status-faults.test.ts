/**
 * `status` during faults and a seal migration (issue 27), against scripted nodes (the real answers are proven in
 * test/integration/migrate-faults.test.ts and autounseal-migrate.test.ts): an OpenBao standby whose seal-status
 * answers the stale-config 500 is up and unsealed mid-migration, not unreachable; the migration shows in the table;
 * health 474 and 530 are named.
 */
import { describe, expect, it } from "vitest";
import { renderStatusTable } from "../../src/cli/commands/status.js";
import { paint } from "../../src/cli/output.js";
import { VaultHttpError } from "../../src/errors.js";
import type { VaultClient } from "../../src/vault/client.js";
import { observeNode } from "../../src/vault/observe.js";
import type { SealStatus } from "../../src/vault/types.js";

const STALE = 'barrier seal type of "shamir" does not match loaded type of "awskms"';
const base: SealStatus = {
  type: "shamir",
  initialized: true,
  sealed: false,
  t: 3,
  n: 5,
  progress: 0,
  nonce: "",
  version: "2.6.2",
  migration: false,
  recovery_seal: false,
};

function fake(opts: { seal?: SealStatus | "stale"; health?: number; standby?: boolean }): VaultClient {
  return {
    address: "http://n",
    async sealStatus() {
      if (opts.seal === "stale") throw new VaultHttpError("http://n", "GET", "/v1/sys/seal-status", 500, [STALE]);
      return opts.seal ?? base;
    },
    async health() {
      if (opts.seal === "stale") throw new VaultHttpError("http://n", "GET", "/v1/sys/health", 500, [STALE]);
      return { status: opts.health ?? 429, body: {} };
    },
    async leader() {
      if (!opts.standby) throw new VaultHttpError("http://n", "GET", "/v1/sys/leader", 503, ["Vault is sealed"]);
      return { haEnabled: true, isSelf: false, leaderAddress: "http://a" };
    },
  } as unknown as VaultClient;
}

describe("status during faults and migration", () => {
  it("an OpenBao standby answering the stale-config 500 is up and unsealed mid-migration", async () => {
    const n = await observeNode(fake({ seal: "stale", standby: true }));
    expect(n).toMatchObject({ reachable: true, sealed: false, migration: true, haRole: "standby", sealType: "awskms" });
    expect(n.note).toMatch(/^unsealed with migrate=true, waiting for the new active node to migrate the seal/);
    const table = renderStatusTable([n], paint(false));
    expect(table).toMatch(/^ADDRESS\s+STATE\s+PROGRESS\s+QUORUM\s+SEAL\s+MIGRATION\s+HA\s+VERSION\s+CLUSTER\s+NOTE$/m);
    expect(table).toMatch(/http:\/\/n\s+unsealed\s+-\s+-\s+awskms\s+waiting-for-active\s+standby/);
    // without an unsealed standby behind it, the 500 is what it is
    expect(await observeNode(fake({ seal: "stale", standby: false }))).toMatchObject({ reachable: false });
  });
  it("a node sealed in migration mode shows that it needs the old shares", async () => {
    const n = await observeNode(
      fake({ seal: { ...base, type: "awskms", sealed: true, migration: true }, health: 503 }),
    );
    expect(renderStatusTable([n], paint(false))).toMatch(/http:\/\/n\s+sealed\s+0\/3\s+3 of 5\s+awskms\s+needs-shares/);
  });
  it("seal-status answers, health 500 (OpenBao right after a migrate unseal): up, the health answer in the note", async () => {
    const c = {
      ...fake({ seal: { ...base, type: "awskms", migration: true } }),
      health: async () => {
        throw new VaultHttpError("http://n", "GET", "/v1/sys/health", 500, []);
      },
    } as unknown as VaultClient;
    const n = await observeNode(c);
    expect(n).toMatchObject({ reachable: true, sealed: false, migration: true, note: "sys/health answers 500" });
    expect(renderStatusTable([n], paint(false))).toMatch(/unsealed\s+-\s+3 of 5\s+awskms\s+waiting-for-active\s+-/);
  });
  it("health 474 and 530 are named", async () => {
    const unhealthy = await observeNode(fake({ health: 474 }));
    expect(unhealthy.haRole).toBe("standby-unhealthy");
    expect(unhealthy.note).toMatch(/lost contact with its active node \(health 474\)/);
    expect(renderStatusTable([unhealthy], paint(false))).not.toContain("http-474");
    expect((await observeNode(fake({ health: 530 }))).haRole).toBe("removed");
  });
});
