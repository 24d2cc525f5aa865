import { defineConfig } from "vitest/config";

/**
 * `npm run test:fast` (TEST_TIER=fast): the service's logic in seconds — the unit suites, the
 * registry core's conformance suite, and the catalog behaviour suites called in-process (Connect's
 * router transport) on PGlite. `npm test` runs every file on every protocol and both databases.
 */
const fast = [
  "test/config.test.ts",
  "test/tag-pattern.test.ts",
  "test/address-policy.test.ts",
  "test/path-template.test.ts",
  "test/rest-transcoder.test.ts",
  "test/secrets.test.ts",
  "test/oci-upstream-names.test.ts",
  "test/digest-verifier.test.ts",
  "test/content.test.ts",
  "test/registry.test.ts",
  "test/api.test.ts",
  "test/pagination.test.ts",
];

export default defineConfig({
  test: {
    include: process.env.TEST_TIER === "fast" ? fast : ["test/**/*.test.ts"],
    // Real servers, real databases, real peers: generous limits, no retries that hide flakes.
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    // Each file starts its own PGlite (~400 MB) or PostgreSQL database; two at a time fits two cores.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
