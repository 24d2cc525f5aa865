// Start and stop the whole service: database, store, app, the two listeners.
import type { AddressInfo } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { openDatabase, type DatabaseHandle, type Subscription } from "./db/database.js";
import { buildApp, type App } from "./http/app.js";
import { HealthMonitor } from "./http/health.js";
import { InFlight } from "./http/in-flight.js";
import { Listener } from "./http/listener.js";
import { Metrics } from "./http/metrics.js";
import { TlsEndpoint } from "./http/tls.js";
import { reportCredentials } from "./key-rotation.js";
import { resolveSecretKey, Sealer } from "./secrets.js";
import { createStore, type Store } from "./store/index.js";
import { CACHE_CHANNEL, HotCache } from "./store/hot-cache.js";
import { createContentDriver } from "./content/index.js";
import type { ContentDriver } from "./content/driver.js";
import { isCollecting, type GarbageCollector, type GcOptions } from "./store/gc.js";
import { isRetentionRunning, type RetentionRunner } from "./store/retention.js";
import { AddressPolicy, type Listening } from "./upstream/address-policy.js";
import { RegistryUpstreams } from "./upstream/registries.js";
import { bootstrap } from "./auth/bootstrap.js";
import { createAuth, type Auth, type AuthSetup } from "./auth/index.js";
import type { Rule } from "./auth/rules.js";
import { createRegistries } from "./registry/index.js";
import { startEvents, type Events } from "./events/index.js";

export interface PreparedServer {
  /** Takes connections: listens (startServer) or is handed sockets (a cluster worker). */
  listener: Listener;
  /** The requests being served now (what a crash report names). */
  inFlight: InFlight;
  /** With TLS_CERT_FILE: the handshake side; `reload()` re-reads the files (SIGHUP). */
  tls?: TlsEndpoint;
  /** Where the ports are bound, once they are: upstream connections to them are refused. */
  listeningOn(addresses: Listening[]): void;
  store: Store;
  database: DatabaseHandle;
  content: ContentDriver;
  /** Identity and access: the authenticator, the registry's signing keys… (tests rotate keys, forget caches). */
  auth: Auth;
  /** The Connect services and interceptors, for in-process clients (see App.connect). */
  connect: App["connect"];
  /** Graceful stop: refuse new calls, let running ones finish (up to the configured timeout), close the database. */
  close(): Promise<void>;
}

export interface RunningServer extends PreparedServer {
  http: AddressInfo;
  grpc: AddressInfo;
}

export interface StartOptions {
  /** An already open database (tests share one per file); otherwise the configured one is opened and owned. */
  database?: DatabaseHandle;
  extraRoutes?: (router: ConnectRouter) => void;
  /** The access rules of extraRoutes' methods (src/auth/rules.ts): a method without one is refused. */
  extraRules?: readonly [string, Rule][];
  /** Called with the server's metrics before it listens (src/cluster.ts aggregates workers'). */
  onMetrics?: (metrics: Metrics) => void;
  /** Log which stored credentials the keys cannot open (default true; src/cluster.ts: worker 0 only). */
  reportCredentials?: boolean;
  /** Identity settings beyond the configuration (the brute-force timings). */
  auth?: AuthSetup;
  /** The built web UI (default dist/ui/ of the package). */
  uiDir?: string;
}

export async function startServer(config: Config, log: Logger, options: StartOptions = {}): Promise<RunningServer> {
  const server = await prepareServer(config, log, options);
  try {
    const http = await server.listener.listen(config.http.host, config.http.port);
    const samePort = config.grpc.host === config.http.host && config.grpc.port === config.http.port && config.http.port !== 0;
    const grpc = samePort ? http : await server.listener.listen(config.grpc.host, config.grpc.port);
    server.listeningOn([
      { address: http.address, port: http.port },
      { address: grpc.address, port: grpc.port },
    ]);
    log.info(
      { http: `${http.address}:${http.port}`, grpc: `${grpc.address}:${grpc.port}`, tls: config.tls !== undefined },
      `listening (gRPC, gRPC-Web, Connect and HTTP on both${config.tls ? ", TLS only" : ""})`,
    );
    return { ...server, http, grpc };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/**
 * The whole server without its own ports: a worker of src/cluster.ts is handed the connections
 * its primary accepted, and feeds them to `listener.accept`.
 */
export async function prepareServer(config: Config, log: Logger, options: StartOptions = {}): Promise<PreparedServer> {
  const database = options.database ?? (await openDatabase(config.database, log));
  const ownsDatabase = options.database === undefined;
  const metrics = config.metricsEnabled ? new Metrics() : undefined;
  if (metrics) options.onMetrics?.(metrics);
  const ping = () => database.ping();
  const health = new HealthMonitor(metrics?.timedPing(ping) ?? ping, { intervalMs: config.healthCheckIntervalMs, timeoutMs: config.healthCheckTimeoutMs }, log);
  metrics?.watchDatabase({
    driver: database.kind,
    poolMax: config.database.kind === "postgres" ? config.database.poolMax : 1,
    ready: () => health.ready,
  });
  let cacheListening: Subscription | undefined;
  let events: Events | undefined;
  try {
    const content = await createContentDriver(config);
    const cache = new HotCache(config.readCacheMaxBytes);
    const store = await createStore(database.db, content, {
      cache,
      exclusively: (id, task) => database.exclusively(id, task),
      pullTimeFlushMs: config.retention.pullTimeFlushMs,
      log,
    });
    // The read cache serves only while this process hears every change's notice (hot-cache.ts).
    cacheListening =
      cache.maxBytes > 0
        ? await database.listen(
            CACHE_CHANNEL,
            (payload) => cache.notice(payload),
            (listening) => cache.setListening(listening),
          )
        : undefined;
    const collector = store.gc;
    collector.observe({
      ran: (options, outcome) => {
        if ("report" in outcome) log.info({ gc: outcome.report }, options.dryRun ? "garbage collection (dry run)" : "garbage collection");
      },
    });
    if (metrics) collector.observe(metrics.gcObserver);
    const gcSettings = {
      graceMs: config.gc.graceMs,
      uploadTtlMs: config.registry.uploadTtlMs,
      auditRetentionDays: config.audit.retentionDays,
      eventRetentionDays: config.events.retentionDays,
    };
    const sealer = new Sealer({
      sealing: resolveSecretKey({ secretKey: config.secretKey, embedded: database.kind === "pglite", dataDir: config.dataDir }),
      previous: config.previousSecretKeys,
    });
    if (!sealer.canSeal) log.warn("SECRET_KEY is not set: registries cannot store upstream credentials");
    await bootstrap(store, { dataDir: config.dataDir, adminToken: config.auth.adminToken, adminPassword: config.auth.adminPassword }, log);
    if (config.auth.anonymousAdmin) {
      log.warn(
        "AUTH_ANONYMOUS_ADMIN is on: every caller, signed in or not, is an administrator. For development only: never let anyone else reach this service",
      );
    }
    const auth = await createAuth(store, sealer, config.auth, log, options.auth);
    if (options.reportCredentials ?? true) {
      // A check for the operator: it must not stop the service from starting.
      await reportCredentials(store.credentials, sealer, log).catch((err: unknown) => log.warn({ err }, "could not check the stored credentials"));
    }
    // Filled in once the ports are bound (here or by the cluster's primary): an upstream can never be the service itself.
    const listening: Listening[] = [];
    // Webhooks: delivered from the outbox in the background, by every process.
    events = await startEvents({
      database,
      store,
      sealer,
      events: config.events,
      webhooks: config.webhooks,
      allowedNetworks: config.upstream.allowedNetworks,
      ownListeners: () => listening,
      log,
    });
    const policy = new AddressPolicy({ allowed: config.upstream.allowedNetworks, ownListeners: () => listening });
    const upstreams = new RegistryUpstreams(
      sealer,
      { timeouts: config.upstream.timeouts, retry: config.upstream.retry, maxManifestBytes: config.registry.manifestMaxBytes },
      policy,
    );
    const shutdown = new AbortController();
    const inFlight = new InFlight();
    // The image core; /v2/'s catalog and mounts get one over a store that knows the caller (src/auth/registry-access.ts).
    const registriesOver = (over: Store) =>
      createRegistries({
        store: over,
        content,
        log,
        upstreams,
        blobMaxBytes: config.registry.blobMaxBytes,
        blobRedirect: config.content.kind === "s3" && config.content.redirect,
      });
    const registries = registriesOver(store);
    const app = buildApp(
      {
        store,
        sealer,
        gc: gcSettings,
        upstreams,
        registries,
        sync: config.sync,
        authenticator: auth.authenticator,
        identityChanged: () => auth.authenticator.forget(),
        events,
      },
      {
        log,
        health,
        extraRoutes: options.extraRoutes,
        extraRules: options.extraRules,
        shutdownSignal: shutdown.signal,
        registry: {
          limits: {
            manifestMaxBytes: config.registry.manifestMaxBytes,
            blobMaxBytes: config.registry.blobMaxBytes,
            uploadIdleTimeoutMs: config.registry.uploadIdleTimeoutMs,
          },
          over: registriesOver,
        },
        maxRequestBytes: config.limits.maxRequestBytes,
        cors: config.cors,
        metrics,
        inFlight,
        // PGlite lives in this process: a slow ping there means busy, not gone.
        databaseDown: database.kind === "postgres" ? () => !health.databaseReachable : undefined,
        auth,
        uiDir: options.uiDir,
      },
    );
    const { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs } = config.limits;
    const tls = config.tls ? new TlsEndpoint(config.tls, { handshakeTimeoutMs: headersTimeoutMs, log }) : undefined;
    tls?.watch();
    const listener = new Listener(app.handler, { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs, tls });

    health.start();
    const background = config.gc.intervalMs > 0 ? backgroundGc(collector, gcSettings, config.gc.intervalMs, log) : undefined;
    store.pullTimes.start();
    store.retention.observe({
      ran: (outcome, seconds) => {
        if ("stats" in outcome) log.info({ retention: outcome.stats, seconds: Math.round(seconds * 10) / 10 }, "scheduled retention run");
      },
    });
    const scheduledRetention = config.retention.intervalMs > 0 ? backgroundRetention(store.retention, config.retention.intervalMs, log) : undefined;

    let closing: Promise<void> | undefined;
    const running = events;
    return {
      listener,
      inFlight,
      tls,
      listeningOn(addresses) {
        listening.splice(0, listening.length, ...addresses);
      },
      store,
      database,
      content,
      auth,
      connect: app.connect,
      close() {
        closing ??= (async () => {
          log.info("shutting down: refusing new calls, letting running ones finish");
          // NOT_SERVING first: health watchers hear it and their streams end instead of holding up the drain.
          health.stop();
          // Live WatchEvents streams end now, like health watchers, instead of holding up the drain.
          running.endStreams();
          await background?.stop();
          await scheduledRetention?.stop();
          await listener.close(config.shutdownTimeoutMs);
          tls?.close();
          shutdown.abort();
          await upstreams.close();
          await running.close();
          auth.close();
          await cacheListening?.close();
          // The last interval's pulls, before the database goes.
          await store.pullTimes.stop();
          if (ownsDatabase) await database.close();
          log.info("stopped");
        })();
        return closing;
      },
    };
  } catch (err) {
    health.stop();
    await events?.close().catch(() => undefined);
    await cacheListening?.close().catch(() => undefined);
    if (ownsDatabase) await database.close();
    throw err;
  }
}

/**
 * Collects garbage every `intervalMs` (first run one interval after start). Several replicas may
 * run it at once: every deletion re-checks under locks, so a second collector finds nothing.
 */
function backgroundGc(collector: GarbageCollector, settings: Omit<GcOptions, "dryRun">, intervalMs: number, log: Logger) {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = collector
      .run({ ...settings, dryRun: false })
      .catch((err: unknown) => {
        // Another replica is collecting: its run is this one's.
        if (isCollecting(err)) log.debug("background garbage collection skipped: another one is running");
        else log.error({ err }, "background garbage collection failed");
      })
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * Runs every retention policy every `intervalMs` (first run one interval after start). One
 * replica runs at a time (the run lock); the others skip that turn.
 */
function backgroundRetention(runner: RetentionRunner, intervalMs: number, log: Logger) {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = runner
      .runAll({ dryRun: false })
      .catch((err: unknown) => {
        if (isRetentionRunning(err)) log.debug("scheduled retention run skipped: another one is running");
        else log.error({ err }, "scheduled retention run failed");
      })
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
