import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real servers, real databases, real peers: generous limits, no retries that hide flakes.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Each file starts its own PGlite (~400 MB) or PostgreSQL database; two at a time fits two cores.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
