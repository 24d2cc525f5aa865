// A real listening server on loopback ports for a test file: every protocol on both ports.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRouterTransport, type Interceptor, type Transport } from "@connectrpc/connect";
import type { Logger } from "pino";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { loadConfig, type Config } from "../../src/config.js";
import { startServer, type RunningServer, type StartOptions } from "../../src/server.js";
import { fastTier, openTestDatabase, quietLog, type DatabaseKind } from "./database.js";
import { ADMIN_TOKEN, adminInterceptor } from "./credentials.js";
import { removeWhenProcessEnds } from "./reaper.js";
import { testUpstream } from "./upstream-settings.js";

const defaults = loadConfig({});

export interface TestServer extends RunningServer {
  kind: DatabaseKind;
  httpUrl: string;
  grpcUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

export function testConfig(dataDir: string, overrides: Partial<Config> = {}): Config {
  return {
    http: { host: "127.0.0.1", port: 0 },
    grpc: { host: "127.0.0.1", port: 0 },
    dataDir,
    database: { kind: "pglite", dataDir: "memory://" },
    logLevel: "silent",
    logFormat: "json",
    secretKey: Buffer.alloc(32, 7),
    previousSecretKeys: [],
    shutdownTimeoutMs: 5_000,
    healthCheckIntervalMs: 5_000,
    healthCheckTimeoutMs: 2_000,
    registry: { manifestMaxBytes: 4 * 1024 * 1024, blobMaxBytes: 1024 * 1024 * 1024, uploadTtlMs: 3_600_000, uploadIdleTimeoutMs: 60_000 },
    gc: { intervalMs: 0, graceMs: 3_600_000 },
    // No scheduled runs in tests (they call RunRetention); pulls written often enough to wait for.
    retention: { intervalMs: 0, pullTimeFlushMs: 500 },
    limits: { maxRequestBytes: 4 * 1024 * 1024, headersTimeoutMs: 30_000, requestTimeoutMs: 0, idleTimeoutMs: 60_000 },
    cors: { allowedOrigins: [], maxAgeSeconds: 7200 },
    metricsEnabled: true,
    workers: 1,
    readCacheMaxBytes: 64 * 1024 * 1024,
    sync: { concurrency: 4, pageSize: 1000 },
    // Every upstream of the tests (docker-registry, tiny servers) listens on loopback.
    upstream: testUpstream(),
    // Auth on, as in production: the bootstrap admin's token is ADMIN_TOKEN.
    auth: { anonymousAdmin: false, service: "artifact-service", tokenTtlSeconds: 300, adminToken: ADMIN_TOKEN },
    audit: { retentionDays: 90 },
    events: { pullSampleRate: 0, retentionDays: 7 },
    // Retries come quickly in tests; everything else as in production.
    webhooks: { ...defaults.webhooks, retry: { attempts: 12, baseDelayMs: 50, maxDelayMs: 500 } },
    content: { kind: "filesystem" },
    ...overrides,
  };
}

/** `log` replaces the silent logger (a test that asserts what is logged passes its own). */
export async function startTestServer(kind: DatabaseKind, options: { config?: Partial<Config>; log?: Logger } & StartOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "artifact-test-"));
  // stop() removes it; this covers a worker killed before stop() runs.
  removeWhenProcessEnds(dataDir);
  const database = options.database ?? (await openTestDatabase(kind));
  const server = await startServer(testConfig(dataDir, options.config), options.log ?? quietLog, { ...options, database });
  return {
    ...server,
    kind,
    dataDir,
    httpUrl: `http://127.0.0.1:${server.http.port}`,
    grpcUrl: `http://127.0.0.1:${server.grpc.port}`,
    async stop() {
      await server.close();
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * An in-process client: Connect's router transport over the server's own services and interceptors
 * (the same ones its HTTP handler serves), with messages serialized as on the wire but no HTTP.
 */
export function inProcessTransport(server: RunningServer): Transport {
  return createRouterTransport(server.connect.routes, {
    router: { interceptors: server.connect.interceptors },
    transport: { interceptors: [adminInterceptor] },
  });
}

/** The URL a transport of `transports` talks to: gRPC clients the gRPC port, the others the HTTP one (both serve everything). */
export function baseUrlFor(transportName: string, server: TestServer): string {
  return transportName.startsWith("grpc over") ? server.grpcUrl : server.httpUrl;
}

/**
 * The transports a behaviour suite runs over: every wire protocol, or in the fast tier
 * (`npm run test:fast`) the in-process one alone.
 */
export function callTransports(): Record<string, (server: TestServer) => Transport> {
  if (fastTier) return { "in-process (router transport)": inProcessTransport };
  return Object.fromEntries(Object.entries(transports).map(([name, make]) => [name, (server: TestServer) => make(baseUrlFor(name, server))]));
}

/** The one transport of a suite that tests behaviour rather than protocols (in-process in the fast tier). */
export function callTransport(server: TestServer): Transport {
  return fastTier ? inProcessTransport(server) : transports["connect+proto over HTTP/2"]!(server.httpUrl);
}

/** Every way a client can talk to the service, with these interceptors (a credential, or none). */
export function transportsWith(interceptors: Interceptor[]): Record<string, (baseUrl: string) => Transport> {
  return {
    "connect+json over HTTP/1.1": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false, interceptors }),
    "connect+proto over HTTP/2": (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors }),
    "grpc over HTTP/2 (h2c)": (baseUrl) => createGrpcTransport({ baseUrl, interceptors }),
    "grpc-web over HTTP/1.1": (baseUrl) => createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors }),
  };
}

/** Every way a client can talk to the service, as the admin; each suite runs over all of them. */
export const transports = transportsWith([adminInterceptor]);
