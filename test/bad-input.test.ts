// The property-based bad-input suite (issue 9): requests generated from the descriptors (every
// method of every service, every field, over Connect JSON and binary, Connect GET, gRPC, gRPC-Web
// and REST) and from the /v2/ route grammar, full of hostile values, headers, deadlines and
// framing. It asserts that no answer is a 5xx except a correct 503/504, that nothing would end the
// server process, that the server still answers after every batch, and that data written before
// the run reads back unchanged after it. Bounded by FUZZ_SECONDS, reproducible from FUZZ_SEED
// (printed at the start and in every failure with the command that replays it). See
// test/support/fuzz/ and test/support/README.md.
import { createClient } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/health/v1/health_pb.js";
import { apiServices } from "../src/api/routes.js";
import { reflectionServices } from "../src/http/reflection.js";
import { readBindings } from "../src/http/rest/bindings.js";
import { databaseKinds } from "./support/database.js";
import { OCI_ROUTE_KINDS, ociCase } from "./support/fuzz/oci.js";
import type { FuzzCase } from "./support/fuzz/oracle.js";
import { restCase, rpcCase } from "./support/fuzz/rpc.js";
import { fuzz, FUZZ_FILE, fuzzSettings, SHRINK_MS, unknownProcessEvents } from "./support/fuzz/run.js";
import { LogSink, ProcessWatch } from "./support/fuzz/watch.js";
import { ANSWER_TIMEOUT_MS } from "./support/fuzz/wire.js";
import { World } from "./support/fuzz/world.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";
import { testUpstream } from "./support/upstream-settings.js";

const settings = fuzzSettings();
const budgetMs = settings.seconds * 1000;
console.log(
  `bad-input fuzz: FUZZ_SEED=${settings.seed}, FUZZ_SECONDS=${settings.seconds} per database — replay: FUZZ_SEED=${settings.seed} FUZZ_SECONDS=${settings.seconds} npx vitest run ${FUZZ_FILE}`,
);

/** Every service the server offers: the API, health and reflection. */
const SERVICES = [...apiServices, Health, ...reflectionServices];

const catalog = {
  cases: fc.oneof({ weight: 3, arbitrary: rpcCase(SERVICES) }, { weight: 1, arbitrary: restCase(apiServices) }) as fc.Arbitrary<FuzzCase>,
  targets: [
    ...SERVICES.flatMap((s) => s.methods.map((m) => `${s.typeName}.${m.name}`)),
    ...readBindings(apiServices).bindings.map((b) => `${b.httpMethod} ${b.template.source}`),
  ],
};
const registry = { cases: ociCase as fc.Arbitrary<FuzzCase>, targets: OCI_ROUTE_KINDS.map((k) => `/v2/ ${k}`) };

describe.each(databaseKinds())("bad input on %s", (kind) => {
  let server: TestServer;
  let world: World;
  let before: Record<string, unknown>;
  const logs = new LogSink();
  const watch = new ProcessWatch();

  beforeAll(async () => {
    server = await startTestServer(kind, {
      log: logs.logger,
      // The playground's REMOTE registry points at a closed port: fail fast, never retry.
      config: {
        upstream: {
          ...testUpstream(),
          timeouts: { connectMs: 1_000, headersMs: 1_000, bodyIdleMs: 1_000 },
          retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
        },
      },
    });
    world = new World(server);
    await world.seedProtected();
    before = await world.snapshotProtected();
    await world.refresh();
    watch.start();
  });
  afterAll(async () => {
    watch.stop();
    await server?.stop();
  });

  // The budget, a shrink, and a batch of requests that each wait out ANSWER_TIMEOUT_MS: a failing run ends well within.
  const timeout = budgetMs + SHRINK_MS + 8 * ANSWER_TIMEOUT_MS + 30_000;
  const run = (name: string, share: number, target: { cases: fc.Arbitrary<FuzzCase>; targets: string[] }) =>
    fuzz({ name, settings, budgetMs: budgetMs * share, arbitrary: target.cases, targets: target.targets, server, world, logs, watch });

  it(
    `catalog API on ${kind}: every method of every service, over Connect, gRPC, gRPC-Web and REST`,
    async () => {
      const stats = await run(`catalog API on ${kind}`, 0.6, catalog);
      expect(stats.requests).toBeGreaterThan(0);
    },
    timeout,
  );

  it(
    `registry API on ${kind}: the /v2/ route grammar`,
    async () => {
      const stats = await run(`registry API on ${kind}`, 0.4, registry);
      expect(stats.requests).toBeGreaterThan(0);
    },
    timeout,
  );

  it(`after the run on ${kind}: every protocol still answers, and the protected data reads back unchanged`, async () => {
    for (const [name, make] of Object.entries(transports)) {
      const health = createClient(Health, make(server.httpUrl));
      expect((await health.check({})).status, name).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
    expect(await world.snapshotProtected()).toEqual(before);
    expect(unknownProcessEvents(watch).map((e) => e.text)).toEqual([]);
    console.log(`bad-input fuzz on ${kind}: the playground was rebuilt ${world.rebuilds} times after fuzzed writes removed part of it`);
  });
});
