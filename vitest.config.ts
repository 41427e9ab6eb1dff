import { defineConfig } from "vitest/config";

// Projects: fast unit tests, then the integration tests that drive real servers (the KMS emulator, GnuPG, age and
// Vault or OpenBao), once per server: `integration-vault` and `integration-openbao` run the same files, each with
// SEALKEEPER_SERVER set, so every test and every failure is named with its server. SEALKEEPER_SERVERS=vault (or
// =openbao) narrows the matrix for a quick local run; CI runs both. Each integration file starts its own servers
// once (beforeAll) and tears them down (afterAll).
const SERVERS = ["vault", "openbao"] as const;
const wanted = (process.env.SEALKEEPER_SERVERS ?? SERVERS.join(","))
  .split(",")
  .map((s) => s.trim())
  .filter((s) => s !== "");
for (const s of wanted) {
  if (!(SERVERS as readonly string[]).includes(s))
    throw new Error(`SEALKEEPER_SERVERS: unknown server "${s}" (expected a comma-separated list of vault, openbao)`);
}

/**
 * Files that do not pass against OpenBao 2.6.2 yet, each for a measured reason (docs/servers.md, "Not yet on
 * OpenBao"): they still run against Vault. Remove a file from here when it passes on OpenBao; the list only shrinks.
 */
const OPENBAO_PENDING: string[] = [];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // unit first, then integration: projects with different worker limits need their own group
          sequence: { groupOrder: 0 },
          globalSetup: ["test/harness/tmp-setup.ts"],
          testTimeout: 30_000,
        },
      },
      ...SERVERS.filter((s) => wanted.includes(s)).map((server) => ({
        test: {
          name: `integration-${server}`,
          include: ["test/integration/**/*.test.ts"],
          exclude: server === "openbao" ? OPENBAO_PENDING : [],
          env: { SEALKEEPER_SERVER: server },
          // both servers in one group: two files at a time in all (two cores), each with its own servers
          sequence: { groupOrder: 1 },
          globalSetup: ["test/harness/tmp-setup.ts", "test/harness/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          maxWorkers: 2,
        },
      })),
    ],
  },
});
