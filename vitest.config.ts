import { spawnSync } from "node:child_process";
import { defineConfig } from "vitest/config";

/**
 * V8's write protection of JIT code pages by memory protection keys (on where the CPU has PKU, as
 * this kind of machine does) races PGlite's WebAssembly code being freed across a test process's
 * many instances, and aborts the process now and then ("Check failed: jit_page.has_value()", once
 * in five full runs here; nodejs/node#64500). Test forks, which open and close a database per
 * suite, run without it, on a Node that knows the flag. The service opens one instance for its
 * life and keeps the protection.
 */
const NO_PKU = "--no-memory-protection-keys";
const execArgv = spawnSync(process.execPath, [NO_PKU, "-e", ""]).status === 0 ? [NO_PKU] : [];

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
    execArgv,
    // Each file starts its own PGlite (~400 MB) or PostgreSQL database; two at a time fits two cores.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
