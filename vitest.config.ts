import { defineConfig } from "vitest/config";

// Two projects: fast unit tests, and integration tests that drive real servers (Vault/OpenBao, the KMS emulator,
// GnuPG, age). Each integration file starts its own servers once (beforeAll) and tears them down (afterAll).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          // unit first, then integration: projects with different worker limits need their own group
          sequence: { groupOrder: 0 },
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          sequence: { groupOrder: 1 },
          globalSetup: ["test/harness/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // two cores here: two files at a time, each with its own servers
          maxWorkers: 2,
        },
      },
    ],
  },
});
