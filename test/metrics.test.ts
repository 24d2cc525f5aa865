// GET /metrics against a real server on every database kind: scraped and parsed after real
// calls over every protocol, REST (refusals before any call included) and /v2/, with exact
// counts (differences between two scrapes, so the tests do not depend on each other).
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { startServer } from "../src/server.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds, holdRegistriesTable, postgresConfig, quietLog } from "./support/database.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format, as much of it as prom-client writes. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1");
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}

class Scrape {
  constructor(readonly samples: Sample[]) {}
  /** The sample with exactly these labels; 0 when absent (a counter not yet incremented). */
  value(name: string, labels: Record<string, string> = {}): number {
    const want = Object.entries(labels);
    const found = this.samples.find((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v));
    return found?.value ?? 0;
  }
}

async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(`${url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return new Scrape(parse(await res.text()));
}

/** Retries `check` until it passes: a response's metrics are recorded when it closes, a moment after the client has it. */
async function eventually(check: () => Promise<void>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const GET_REGISTRY = "/artifact.v1.RegistryService/GetRegistry";
const CREATE_REGISTRY = "/artifact.v1.RegistryService/CreateRegistry";
const LIST_REGISTRIES = "/artifact.v1.RegistryService/ListRegistries";
const MISSING = "00000000-0000-4000-8000-000000000000";

describe.each(databaseKinds())("metrics on %s", (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(kind, {
      config: {
        healthCheckIntervalMs: 100,
        healthCheckTimeoutMs: 300,
        gc: { intervalMs: 0, graceMs: 0 },
        limits: { maxRequestBytes: 1024, headersTimeoutMs: 30_000, requestTimeoutMs: 0, idleTimeoutMs: 60_000 },
        // The pool size the metric reports comes from the configuration.
        ...(kind === "postgres" ? { database: postgresConfig("postgres://configured-by-test", 10) } : {}),
      },
    });
  });
  afterAll(() => server?.stop());

  const client = (name: string) => createClient(RegistryService, transports[name]!(server.httpUrl));

  it("counts RPC calls by procedure and code, their durations, and the HTTP requests by protocol", async () => {
    const before = await scrape(server.httpUrl);
    const connect = client("connect+json over HTTP/1.1");
    for (let i = 0; i < 2; i++) await connect.createRegistry({ registry: { name: unique("m"), kind: RegistryKind.HOSTED } });
    await expectCode(client("grpc over HTTP/2 (h2c)").getRegistry({ id: MISSING }), Code.NotFound);
    await client("grpc-web over HTTP/1.1").listRegistries({});
    // REST calls reach the methods through the same interceptor.
    expect((await adminFetch(`${server.httpUrl}/v1/registries`)).status).toBe(200);

    await eventually(async () => {
      const after = await scrape(server.httpUrl);
      const delta = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
      expect(delta("artifact_rpc_calls_total", { procedure: CREATE_REGISTRY, code: "ok" })).toBe(2);
      expect(delta("artifact_rpc_calls_total", { procedure: GET_REGISTRY, code: "not_found" })).toBe(1);
      expect(delta("artifact_rpc_calls_total", { procedure: GET_REGISTRY, code: "ok" })).toBe(0);
      expect(delta("artifact_rpc_calls_total", { procedure: LIST_REGISTRIES, code: "ok" })).toBe(2);
      expect(delta("artifact_rpc_call_duration_seconds_count", { procedure: CREATE_REGISTRY })).toBe(2);
      expect(delta("artifact_rpc_call_duration_seconds_count", { procedure: GET_REGISTRY })).toBe(1);
      expect(delta("artifact_rpc_call_duration_seconds_sum", { procedure: CREATE_REGISTRY })).toBeGreaterThan(0);
      // Every call landed in the +Inf bucket; the cumulative buckets never decrease.
      expect(delta("artifact_rpc_call_duration_seconds_bucket", { procedure: CREATE_REGISTRY, le: "+Inf" })).toBe(2);
      expect(after.value("artifact_rpc_calls_in_flight", { procedure: CREATE_REGISTRY })).toBe(0);

      const http = (labels: Record<string, string>) => delta("artifact_http_requests_total", labels);
      expect(http({ kind: "rpc", route: "connect", method: "POST", status: "200" })).toBe(2);
      expect(http({ kind: "rpc", route: "grpc", method: "POST", status: "200" })).toBe(1);
      expect(http({ kind: "rpc", route: "grpc_web", method: "POST", status: "200" })).toBe(1);
      expect(http({ kind: "rest", route: "", method: "GET", status: "200" })).toBe(1);
      expect(delta("artifact_http_request_duration_seconds_count", { kind: "rpc", route: "connect", method: "POST" })).toBe(2);
    });
  });

  it("counts REST refusals before any call (404, 405, 413, 415), unmatched paths and probes", async () => {
    const before = await scrape(server.httpUrl);
    const send = (method: string, path: string, body?: string, type = "application/json") =>
      adminFetch(server.httpUrl + path, { method, body, headers: body === undefined ? {} : { "content-type": type } }).then(
        async (r) => (await r.text(), r.status),
      );
    expect(await send("GET", "/v1/nothing-here")).toBe(404);
    expect(await send("PATCH", "/v1/registries")).toBe(405);
    expect(await send("POST", "/v1/registries", JSON.stringify({ name: "x".repeat(2000) }))).toBe(413);
    expect(await send("POST", "/v1/registries", "name=x", "text/plain")).toBe(415);
    expect(await send("POST", "/v1/registries", "name=x", "text/plain")).toBe(415);
    expect(await send("GET", "/no/such/path")).toBe(404);
    expect(await send("GET", "/healthz")).toBe(200);

    await eventually(async () => {
      const after = await scrape(server.httpUrl);
      const http = (labels: Record<string, string>) =>
        after.value("artifact_http_requests_total", labels) - before.value("artifact_http_requests_total", labels);
      expect(http({ kind: "rest", route: "", method: "GET", status: "404" })).toBe(1);
      expect(http({ kind: "rest", route: "", method: "PATCH", status: "405" })).toBe(1);
      expect(http({ kind: "rest", route: "", method: "POST", status: "413" })).toBe(1);
      expect(http({ kind: "rest", route: "", method: "POST", status: "415" })).toBe(2);
      expect(http({ kind: "unmatched", route: "", method: "GET", status: "404" })).toBe(1);
      expect(http({ kind: "probe", route: "", method: "GET", status: "200" })).toBe(1);
      // None of them reached a method.
      expect(after.value("artifact_rpc_calls_total", { procedure: CREATE_REGISTRY, code: "ok" })).toBe(
        before.value("artifact_rpc_calls_total", { procedure: CREATE_REGISTRY, code: "ok" }),
      );
    });
  });

  it("counts /v2/ requests by route, and garbage collection runs, deletions and bytes", async () => {
    const registry = await client("connect+json over HTTP/1.1").createRegistry({ registry: { name: unique("hosted"), kind: RegistryKind.HOSTED } });
    const blob = Buffer.alloc(3000, 1);
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}`;
    const before = await scrape(server.httpUrl);
    expect((await adminFetch(`${server.httpUrl}/v2/`)).status).toBe(200);
    const pushed = await adminFetch(`${server.httpUrl}/v2/${registry.name}/team/app/blobs/uploads/?digest=${digest}`, { method: "POST", body: blob });
    expect(pushed.status).toBe(201);
    expect((await adminFetch(`${server.httpUrl}/v2/${registry.name}/team/app/manifests/missing`)).status).toBe(404);

    // Nothing refers to the blob and the grace period is 0: a real run deletes it, a dry run does not count deletions.
    const gc = createClient(GarbageCollectionService, transports["connect+proto over HTTP/2"]!(server.httpUrl));
    const dry = await gc.runGarbageCollection({ dryRun: true });
    expect(dry.blobsDeleted).toBe(1n);
    const real = await gc.runGarbageCollection({ dryRun: false });
    expect(real.blobsDeleted).toBe(1n);
    expect(real.bytesFreed).toBe(3000n);

    await eventually(async () => {
      const after = await scrape(server.httpUrl);
      const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
      expect(delta("artifact_http_requests_total", { kind: "registry", route: "base", method: "GET", status: "200" })).toBe(1);
      expect(delta("artifact_http_requests_total", { kind: "registry", route: "uploads", method: "POST", status: "201" })).toBe(1);
      expect(delta("artifact_http_requests_total", { kind: "registry", route: "manifest", method: "GET", status: "404" })).toBe(1);
      expect(delta("artifact_gc_runs_total", { result: "ok", dry_run: "true" })).toBe(1);
      expect(delta("artifact_gc_runs_total", { result: "ok", dry_run: "false" })).toBe(1);
      expect(delta("artifact_gc_deleted_total", { what: "blob" })).toBe(1);
      expect(delta("artifact_gc_deleted_total", { what: "manifest" })).toBe(0);
      expect(delta("artifact_gc_freed_bytes_total")).toBe(3000);
      expect(delta("artifact_gc_run_duration_seconds_count")).toBe(2);
    });
  });

  it("shows calls in flight while they wait on the database", async () => {
    const { id } = await client("connect+json over HTTP/1.1").createRegistry({ registry: { name: unique("held"), kind: RegistryKind.HOSTED } });
    const held = await holdRegistriesTable(server.database.db);
    const running = [client("grpc over HTTP/2 (h2c)").getRegistry({ id }), client("connect+json over HTTP/1.1").getRegistry({ id })];
    try {
      await eventually(async () => {
        const now = await scrape(server.httpUrl);
        expect(now.value("artifact_rpc_calls_in_flight", { procedure: GET_REGISTRY })).toBe(2);
        expect(now.value("artifact_http_requests_in_flight", { kind: "rpc", route: "grpc" })).toBe(1);
        expect(now.value("artifact_http_requests_in_flight", { kind: "rpc", route: "connect" })).toBe(1);
      });
    } finally {
      await held.release();
    }
    await Promise.all(running);
    await eventually(async () => {
      const now = await scrape(server.httpUrl);
      expect(now.value("artifact_rpc_calls_in_flight", { procedure: GET_REGISTRY })).toBe(0);
      expect(now.value("artifact_http_requests_in_flight", { kind: "rpc", route: "grpc" })).toBe(0);
    });
  });

  it("reports the database pool size, up/down from the health pings, and their latency", async () => {
    const now = await scrape(server.httpUrl);
    expect(now.value("artifact_database_pool_max_connections", { driver: kind })).toBe(kind === "postgres" ? 10 : 1);
    expect(now.value("artifact_database_up", { driver: kind })).toBe(1);
    expect(now.value("artifact_database_ping_duration_seconds_count")).toBeGreaterThan(0);
    if (kind !== "pglite") return;
    // PGlite has one connection: a long transaction makes the ping time out, so the database counts as down.
    let release!: () => void;
    const holder = server.database.db.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      await eventually(async () => expect((await scrape(server.httpUrl)).value("artifact_database_up", { driver: kind })).toBe(0));
    } finally {
      release();
      await holder;
    }
    await eventually(async () => expect((await scrape(server.httpUrl)).value("artifact_database_up", { driver: kind })).toBe(1));
  });

  it("includes the process metrics and answers only GET and HEAD", async () => {
    const now = await scrape(server.httpUrl);
    expect(now.value("process_cpu_user_seconds_total")).toBeGreaterThan(0);
    expect(now.value("nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(now.samples.some((s) => s.name === "nodejs_eventloop_lag_seconds")).toBe(true);
    const head = await adminFetch(`${server.httpUrl}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    const post = await adminFetch(`${server.httpUrl}/metrics`, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    // The second listener serves them too.
    expect((await adminFetch(`${server.grpcUrl}/metrics`)).status).toBe(200);
  });

  it("METRICS_ENABLED=false: no /metrics", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-nometrics-"));
    const other = await startServer(testConfig(dir, { metricsEnabled: false }), quietLog, { database: server.database });
    try {
      const res = await fetch(`http://127.0.0.1:${other.http.port}/metrics`);
      expect(res.status).toBe(404);
    } finally {
      await other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
