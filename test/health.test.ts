// gRPC health and the HTTP probes, seen by independent clients (@grpc/grpc-js, buf curl, fetch)
// against a real server, including real database outages: a PostgreSQL cluster stopped and
// started again, a PGlite handle closed, a PGlite connection held by a long transaction.
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { apiServices } from "../src/api/routes.js";
import { openPglite, openPostgres } from "../src/db/database.js";
import { adminFetch, adminInterceptor } from "./support/credentials.js";
import { databaseKinds, postgresConfig, quietLog } from "./support/database.js";
import { bufCurl, bufCurlStream, eventually, grpcJsClient, target } from "./support/grpc-clients.js";
import { findPostgresBin, startThrowawayPostgres, type ThrowawayPostgres } from "./support/postgres.js";
import { expectCode } from "./support/clients.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

const HealthClient = grpcJsClient("grpc-health-check/proto", "health/v1/health.proto", "grpc.health.v1.Health");
const HEALTH = "grpc.health.v1.Health";
const CATALOG = apiServices.map((s) => s.typeName);
const SELF = [HEALTH, "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];
// Short enough that an outage shows within a second; the timeout well below the test limits.
const FAST = { healthCheckIntervalMs: 100, healthCheckTimeoutMs: 500 };

type Status = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";

interface HealthStub extends grpc.Client {
  Check(req: { service: string }, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: { status: Status }) => void): void;
  List(req: object, callback: (err: grpc.ServiceError | null, res: { statuses: Record<string, { status: Status }> }) => void): void;
  Watch(req: { service: string }): grpc.ClientReadableStream<{ status: Status }>;
}

function healthClient(server: TestServer): HealthStub {
  return new HealthClient(target(server.grpcUrl), grpc.credentials.createInsecure()) as unknown as HealthStub;
}

function check(client: HealthStub, service: string): Promise<Status> {
  return new Promise((resolve, reject) => client.Check({ service }, { deadline: Date.now() + 5_000 }, (err, res) => (err ? reject(err) : resolve(res.status))));
}

function checkError(client: HealthStub, service: string): Promise<grpc.ServiceError> {
  return check(client, service).then(
    (status) => {
      throw new Error(`expected an error, got ${status}`);
    },
    (err: grpc.ServiceError) => err,
  );
}

/** A running Watch: every status it received, and how it ended. */
function watch(client: HealthStub, service: string) {
  const statuses: Status[] = [];
  const call = client.Watch({ service });
  call.on("data", (res: { status: Status }) => statuses.push(res.status));
  const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
    call.on("error", (err: grpc.ServiceError) => resolve(err));
    call.on("end", () => resolve(undefined));
  });
  return { statuses, ended, cancel: () => call.cancel() };
}

async function probe(server: TestServer, path: string, init?: RequestInit) {
  const res = await adminFetch(server.httpUrl + path, init);
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), body: text ? (JSON.parse(text) as Record<string, string>) : undefined };
}

/** buf curl Check with the schema taken from the server by reflection. */
async function curlCheck(server: TestServer, service: string) {
  const result = await bufCurl(["--data", JSON.stringify({ service }), `${server.grpcUrl}/grpc.health.v1.Health/Check`]);
  return { ...result, json: result.code === 0 ? (JSON.parse(result.stdout) as { status?: string }) : undefined };
}

describe.each(databaseKinds())("health on %s, database up", (kind) => {
  let server: TestServer;
  let client: HealthStub;
  beforeAll(async () => {
    server = await startTestServer(kind);
    client = healthClient(server);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it("Check says SERVING for the server and for every served service (grpc-js)", async () => {
    for (const service of ["", ...CATALOG, ...SELF]) expect([service, await check(client, service)]).toEqual([service, "SERVING"]);
  });

  it("Check of an unknown service is NOT_FOUND and names it", async () => {
    const err = await checkError(client, "artifact.v1.NoSuchService");
    expect(err.code).toBe(grpc.status.NOT_FOUND);
    expect(err.details).toContain("artifact.v1.NoSuchService");
  });

  it("List reports every service", async () => {
    const res = await new Promise<{ statuses: Record<string, { status: Status }> }>((resolve, reject) =>
      client.List({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(Object.keys(res.statuses).sort()).toEqual(["", ...CATALOG, ...SELF].sort());
    expect(new Set(Object.values(res.statuses).map((s) => s.status))).toEqual(new Set(["SERVING"]));
  });

  it("Watch sends the current status at once; an unknown service gets SERVICE_UNKNOWN, not an error", async () => {
    const known = watch(client, "");
    const unknown = watch(client, "nope.Service");
    await eventually(() => known.statuses.length > 0 && unknown.statuses.length > 0, "first Watch messages");
    expect(known.statuses).toEqual(["SERVING"]);
    expect(unknown.statuses).toEqual(["SERVICE_UNKNOWN"]);
    known.cancel();
    unknown.cancel();
    expect((await known.ended)?.code).toBe(grpc.status.CANCELLED);
  });

  it("buf curl Check works on the gRPC port with no proto files (the seed's grpcurl example)", async () => {
    const all = await curlCheck(server, "");
    expect(all.code, all.stderr).toBe(0);
    expect(all.json).toEqual({ status: "SERVING" });
    const one = await curlCheck(server, "artifact.v1.TagService");
    expect(one.json).toEqual({ status: "SERVING" });
    // The exact seed form: no request body at all.
    const bare = await bufCurl([`${server.grpcUrl}/grpc.health.v1.Health/Check`]);
    expect(JSON.parse(bare.stdout)).toEqual({ status: "SERVING" });
  });

  it("buf curl Check of an unknown service fails with not_found", async () => {
    const res = await curlCheck(server, "nope.Service");
    expect(res.code).not.toBe(0);
    expect(res.stdout + res.stderr).toMatch(/not_found/);
  });

  it("GET /healthz and /readyz answer 200 with JSON; the HTTP port and the gRPC port both serve them", async () => {
    for (const base of [server.httpUrl, server.grpcUrl]) {
      const live = await fetch(`${base}/healthz`);
      expect(live.status).toBe(200);
      expect(live.headers.get("content-type")).toBe("application/json");
      expect(await live.json()).toEqual({ status: "alive" });
    }
    expect(await probe(server, "/readyz")).toEqual({ status: 200, type: "application/json", body: { status: "ready", database: "reachable" } });
    const head = await adminFetch(`${server.httpUrl}/readyz`, { method: "HEAD" });
    expect(head.status).toBe(200);
  });

  it("other methods on the probes are 405 with Allow", async () => {
    const res = await adminFetch(`${server.httpUrl}/readyz`, { method: "POST" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("GET, HEAD");
    expect(((await res.json()) as { code: string }).code).toBe("method_not_allowed");
  });
});

describe.skipIf(!findPostgresBin() && !process.env.TEST_DATABASE_URL)("health while PostgreSQL goes away and comes back", () => {
  let pg: ThrowawayPostgres;
  let server: TestServer;
  let client: HealthStub;
  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    const database = await openPostgres(postgresConfig(pg.url, 4), quietLog);
    server = await startTestServer("postgres", { database, config: FAST });
    client = healthClient(server);
  });
  afterAll(async () => {
    client?.close();
    await server?.stop();
    pg?.destroy();
  });

  it("goes NOT_SERVING (Check, Watch, buf curl, /readyz) while the database is down and SERVING when it is back", async () => {
    const watchAll = watch(client, "");
    const watchCatalog = watch(client, "artifact.v1.RegistryService");
    const curlWatch = bufCurlStream([`${server.grpcUrl}/grpc.health.v1.Health/Watch`]);
    await eventually(() => watchAll.statuses.length > 0 && watchCatalog.statuses.length > 0 && curlWatch.output().includes("SERVING"), "first Watch messages");
    expect(watchAll.statuses).toEqual(["SERVING"]);

    pg.stop();
    await eventually(async () => (await check(client, "")) === "NOT_SERVING", "Check to say NOT_SERVING");
    expect(await check(client, "artifact.v1.RegistryService")).toBe("NOT_SERVING");
    // Health and reflection do not need the database.
    expect(await check(client, HEALTH)).toBe("SERVING");
    await eventually(() => watchAll.statuses.includes("NOT_SERVING") && watchCatalog.statuses.includes("NOT_SERVING"), "Watch to stream NOT_SERVING");
    await eventually(() => curlWatch.output().includes("NOT_SERVING"), "buf curl Watch to print NOT_SERVING");
    expect((await curlCheck(server, "")).json).toEqual({ status: "NOT_SERVING" });
    expect(await probe(server, "/readyz")).toEqual({ status: 503, type: "application/json", body: { status: "not_ready", database: "unreachable" } });
    // Liveness is about the process, not the database: restarting it would not help.
    expect((await probe(server, "/healthz")).status).toBe(200);

    pg.start();
    await eventually(async () => (await check(client, "")) === "SERVING", "Check to say SERVING again");
    await eventually(() => watchAll.statuses.at(-1) === "SERVING" && watchCatalog.statuses.at(-1) === "SERVING", "Watch to stream SERVING");
    await eventually(() => /SERVING[\s\S]*NOT_SERVING[\s\S]*"SERVING"/.test(curlWatch.output()), "buf curl Watch to print SERVING again");
    expect(watchAll.statuses.slice(0, 3)).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    expect((await probe(server, "/readyz")).status).toBe(200);
    // And the catalog really works again through the same pool.
    const registries = createClient(RegistryService, createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [adminInterceptor] }));
    expect((await registries.createRegistry({ registry: { name: "after-outage", kind: RegistryKind.HOSTED } })).name).toBe("after-outage");

    watchAll.cancel();
    watchCatalog.cancel();
    curlWatch.child.kill();
    await curlWatch.exited;
  });
});

describe.skipIf(!findPostgresBin())("calls while PostgreSQL hangs (no answer, connections open)", () => {
  let pg: ThrowawayPostgres;
  let server: TestServer;
  beforeAll(async () => {
    pg = await startThrowawayPostgres();
    const database = await openPostgres({ ...postgresConfig(pg.url, 4), connectTimeoutMs: 500 }, quietLog);
    server = await startTestServer("postgres", { database, config: FAST });
  });
  afterAll(async () => {
    pg?.thaw();
    await server?.stop();
    pg?.destroy();
  });

  it("fail at once with UNAVAILABLE on every protocol, REST and /v2/ once health has noticed, and work again after", async () => {
    const registries = (name: string) => createClient(RegistryService, transports[name]!(server.httpUrl));
    const { id } = await registries("connect+json over HTTP/1.1").createRegistry({ registry: { name: "hung-db", kind: RegistryKind.HOSTED } });
    pg.freeze();
    const client = healthClient(server);
    try {
      await eventually(async () => (await check(client, "")) === "NOT_SERVING", "Check to say NOT_SERVING while PostgreSQL hangs");
      // Each call is bounded by a guard far above what "at once" means: hanging until PostgreSQL answers would fail it.
      const guard = { signal: AbortSignal.timeout(5_000) };
      for (const name of Object.keys(transports)) {
        await expectCode(registries(name).getRegistry({ id }, guard), Code.Unavailable, /database is not available/);
      }
      const rest = await adminFetch(`${server.httpUrl}/v1/registries/${id}`, guard);
      expect(rest.status).toBe(503);
      const v2 = await adminFetch(`${server.httpUrl}/v2/hung-db/team/app/tags/list`, guard);
      expect(v2.status).toBe(503);
      expect(((await v2.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("UNAVAILABLE");
      // What does not need the database still answers.
      expect((await adminFetch(`${server.httpUrl}/v2/`, guard)).status).toBe(200);
      expect(await check(client, HEALTH)).toBe("SERVING");
    } finally {
      pg.thaw();
    }
    await eventually(async () => (await check(client, "")) === "SERVING", "Check to say SERVING once PostgreSQL answers");
    expect((await registries("grpc over HTTP/2 (h2c)").getRegistry({ id })).name).toBe("hung-db");
    client.close();
  });

  it("a connection that cannot be made fails after DB_CONNECT_TIMEOUT_MS, not postgres.js's 30 s", async () => {
    pg.freeze();
    try {
      const opening = openPostgres({ ...postgresConfig(pg.url, 1), connectTimeoutMs: 500 }, quietLog);
      const outcome = await Promise.race([
        opening.then(
          async (db) => {
            await db.close();
            return "opened";
          },
          (err: unknown) => String((err as { code?: string }).code ?? (err as Error).message),
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve("still waiting after 10 s"), 10_000)),
      ]);
      expect(outcome).toBe("CONNECT_TIMEOUT");
    } finally {
      pg.thaw();
    }
  });
});

describe("health on PGlite when the database is closed or busy", () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });

  it("a closed PGlite handle turns everything NOT_SERVING for good (a closed PGlite cannot reopen)", async () => {
    const database = await openPglite("memory://", quietLog);
    const server = await startTestServer("pglite", { database, config: FAST });
    servers.push(server);
    const client = healthClient(server);
    const watcher = watch(client, "");
    await eventually(() => watcher.statuses.length > 0, "first Watch message");

    await database.close();
    await eventually(async () => (await check(client, "")) === "NOT_SERVING", "Check to say NOT_SERVING");
    await eventually(() => watcher.statuses.includes("NOT_SERVING"), "Watch to stream NOT_SERVING");
    expect((await curlCheck(server, "artifact.v1.TagService")).json).toEqual({ status: "NOT_SERVING" });
    expect((await probe(server, "/readyz")).status).toBe(503);
    // Several intervals later it is still down: nothing pretends to recover.
    await new Promise((resolve) => setTimeout(resolve, 5 * FAST.healthCheckIntervalMs));
    expect(await check(client, "")).toBe("NOT_SERVING");
    expect(watcher.statuses).toEqual(["SERVING", "NOT_SERVING"]);
    watcher.cancel();
    client.close();
  });

  it("a database that does not answer within the timeout is NOT_SERVING, and SERVING once it answers", async () => {
    const database = await openPglite("memory://", quietLog);
    const server = await startTestServer("pglite", { database, config: FAST });
    servers.push(server);
    const client = healthClient(server);
    // PGlite has one connection: an open transaction makes every other query, the ping too, wait.
    let release!: () => void;
    const held = database.db.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      await eventually(async () => (await check(client, "")) === "NOT_SERVING", "Check to say NOT_SERVING while the ping hangs");
      expect((await probe(server, "/readyz")).status).toBe(503);
    } finally {
      release();
      await held;
    }
    await eventually(async () => (await check(client, "")) === "SERVING", "Check to say SERVING again");
    expect((await probe(server, "/readyz")).status).toBe(200);
    client.close();
  });

  it("on shutdown a Watch hears NOT_SERVING and its stream ends instead of holding up the stop", async () => {
    const server = await startTestServer("pglite", { config: { ...FAST, shutdownTimeoutMs: 30_000 } });
    const client = healthClient(server);
    const watcher = watch(client, "");
    await eventually(() => watcher.statuses.length > 0, "first Watch message");
    await server.stop();
    const end = await watcher.ended;
    expect(watcher.statuses).toEqual(["SERVING", "NOT_SERVING"]);
    // Ended by the health service itself, not cut by the listener when the drain limit ran out.
    expect([end?.code, end?.details]).toEqual([grpc.status.UNAVAILABLE, "the server is shutting down"]);
    client.close();
  });
});
