// The service always runs as a small primary process that supervises WORKERS server processes
// (default 1). The primary owns the two listening ports: it accepts each connection and hands it
// to a worker that is ready, in turn, and answers itself (503, or a clean close for HTTP/2) when
// none is, so no connection waits on a worker that is not there. A worker that dies is replaced
// at once (later ones back off), so a bug that ends a worker costs the clients of that moment
// their connections, not the service. Each worker is a whole server with its own database pool,
// exactly like replicas behind a load balancer: nothing is shared in memory. The primary adds
// up their metrics for GET /metrics. Primary and worker are the two halves of one IPC protocol
// (the ToPrimary/ToWorker messages), kept in one file so it reads in one place.
//
// Only worker 0 runs the background garbage collection (any replica could: every deletion is
// re-checked under locks, so this only saves the others the work), and only worker 0 logs which
// stored credentials the keys cannot open.
import cluster, { type Worker } from "node:cluster";
import net, { type AddressInfo } from "node:net";
import type { Logger } from "pino";
import { AggregatorRegistry, type Registry } from "prom-client";
import type { Config } from "./config.js";
import { onEscapedErrors } from "./crash.js";
import { preloadPgliteAssets } from "./db/pglite-assets.js";
import type { Metrics } from "./http/metrics.js";
import { prepareServer, type PreparedServer, type StartOptions } from "./server.js";
import type { Listening } from "./upstream/address-policy.js";

/** The worker number (0 … WORKERS-1) the primary hands each worker it forks, or SPARE. */
const SLOT_VARIABLE = "ARTIFACT_WORKER_SLOT";
/**
 * A worker forked ahead of need: its modules loaded, it waits to replace one that dies, which then
 * costs only the database start instead of a whole process start.
 */
const SPARE = "spare";

type ToPrimary =
  | { type: "artifact:ready" }
  | { type: "artifact:parked" }
  | { type: "artifact:metrics-request"; id: number }
  | { type: "artifact:metrics-json"; id: number; metrics: MetricsJson }
  | { type: "artifact:dying" };
type ToWorker =
  | { type: "artifact:stop" }
  | { type: "artifact:promote"; slot: number }
  | { type: "artifact:connection" }
  | { type: "artifact:tls-reload" }
  | { type: "artifact:listening"; addresses: Listening[] }
  | { type: "artifact:metrics"; id: number; text?: string; error?: string }
  | { type: "artifact:metrics-collect"; id: number };

type MetricsJson = Awaited<ReturnType<Registry["getMetricsAsJSON"]>>;
/** A worker that has not sent its metrics in this time is left out of the sum. */
const METRICS_WAIT_MS = 5_000;

/** Restarts of one slot within this window count as a crash loop and back off. */
const CRASH_WINDOW_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** 0 ms for the first crash in a while, then 500 ms, 1 s, 2 s … up to 30 s while it keeps crashing. */
function restartDelay(recentCrashes: number): number {
  return recentCrashes <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 250 * 2 ** (recentCrashes - 1));
}

export const isClusterWorker = () => cluster.isWorker;

export interface PrimaryHooks {
  /** Once every worker is ready and the ports listen, with their addresses. */
  onReady?(addresses: { http: string; grpc: string }): void;
}

interface Slot {
  worker?: Worker;
  ready: boolean;
  /** Connections being passed to the worker, not yet in its hands. */
  handing: Set<net.Socket>;
  /** When this slot's workers died unexpectedly, within CRASH_WINDOW_MS. */
  crashes: number[];
}

/** Starts the workers, then the ports; `stop()` does what SIGTERM does. The process exits when all have stopped. */
export function runPrimary(config: Config, log: Logger, hooks: PrimaryHooks = {}): { stop(): void } {
  const count = config.workers;
  // GET /metrics on any worker: every serving worker's registry, summed here. (prom-client's own
  // cluster aggregation asks every forked process, a starting worker or the spare too, and fails
  // when one cannot answer yet.)
  const collecting = new Map<number, (metrics: MetricsJson) => void>();
  let collectId = 0;
  const collectMetrics = async (): Promise<string> => {
    const parts = await Promise.all(
      ready().map(
        ({ worker }) =>
          new Promise<MetricsJson | undefined>((resolve) => {
            const id = ++collectId;
            const timer = setTimeout(() => collecting.delete(id) && resolve(undefined), METRICS_WAIT_MS);
            collecting.set(id, (metrics) => {
              clearTimeout(timer);
              collecting.delete(id);
              resolve(metrics);
            });
            worker.send({ type: "artifact:metrics-collect", id } satisfies ToWorker);
          }),
      ),
    );
    return AggregatorRegistry.aggregate(parts.filter((p): p is MetricsJson => p !== undefined)).metrics();
  };
  const slots: Slot[] = Array.from({ length: count }, () => ({ ready: false, handing: new Set<net.Socket>(), crashes: [] }));
  const servers: net.Server[] = [];
  let listening = false;
  /** Where the ports are bound; every worker learns it (its upstream clients must never dial it). */
  let bound: Listening[] | undefined;
  let stopping = false;
  let failed = false;
  let turn = 0;
  let spare: { worker: Worker; parked: boolean } | undefined;

  onEscapedErrors(log, { inFlight: () => [], fatal: () => undefined });

  const ready = () => slots.filter((s): s is Slot & { worker: Worker } => s.ready && s.worker !== undefined && s.worker.isConnected());

  const dispatch = (socket: net.Socket) => {
    socket.on("error", () => socket.destroy());
    const serving = ready();
    if (serving.length === 0 || stopping)
      return refuse(socket, stopping ? "the server is shutting down" : "no worker is ready; retry", config.tls !== undefined);
    const slot = serving[turn++ % serving.length]!;
    // Node passes one handle at a time per worker and queues the rest; a worker that dies would
    // strand the queued ones (their clients would wait for ever), so each stays ours until sent.
    slot.handing.add(socket);
    slot.worker.send({ type: "artifact:connection" } satisfies ToWorker, socket, { keepOpen: true }, () => {
      slot.handing.delete(socket);
      // Sent, the worker has its own descriptor (closing ours does not end the connection); not
      // sent, the client sees a closed connection and retries.
      socket.destroy();
    });
  };

  const listen = async () => {
    const bind = (host: string, port: number) =>
      new Promise<AddressInfo>((resolve, reject) => {
        // Paused: the worker reads the first byte, not us.
        const server = net.createServer({ pauseOnConnect: true, noDelay: true }, dispatch);
        servers.push(server);
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as AddressInfo);
        });
      });
    const http = await bind(config.http.host, config.http.port);
    const samePort = config.grpc.host === config.http.host && config.grpc.port === config.http.port && config.http.port !== 0;
    const grpc = samePort ? http : await bind(config.grpc.host, config.grpc.port);
    bound = [
      { address: http.address, port: http.port },
      { address: grpc.address, port: grpc.port },
    ];
    for (const { worker } of ready()) worker.send({ type: "artifact:listening", addresses: bound } satisfies ToWorker);
    const addresses = { http: `${http.address}:${http.port}`, grpc: `${grpc.address}:${grpc.port}` };
    log.info({ workers: count, ...addresses }, `listening with ${count} worker${count > 1 ? "s" : ""} (gRPC, gRPC-Web, Connect and HTTP on both)`);
    hooks.onReady?.(addresses);
    forkSpare();
  };

  /** Starts a spare once everything is up (never while a worker starts: they would share the CPU). */
  const forkSpare = () => {
    if (stopping || spare || !listening || !slots.every((s) => s.ready)) return;
    const worker = cluster.fork({ [SLOT_VARIABLE]: SPARE });
    const entry = { worker, parked: false };
    spare = entry;
    worker.on("message", (message: ToPrimary) => {
      if (message?.type !== "artifact:parked") return;
      entry.parked = true;
      log.info({ pid: worker.process.pid }, "a spare worker is ready to take over from one that fails");
    });
    worker.once("exit", () => {
      if (spare !== entry) return;
      spare = undefined;
      if (!stopping) log.warn("the spare worker exited: another starts once every worker is ready");
    });
  };

  /** A replacement for slot `index`: the parked spare when there is one, else a new process. */
  const replace = (index: number) => {
    if (stopping) return;
    const taken = spare?.parked ? spare : undefined;
    if (!taken) return fork(index);
    spare = undefined;
    taken.worker.removeAllListeners("message");
    taken.worker.removeAllListeners("exit");
    adopt(index, taken.worker);
    taken.worker.send({ type: "artifact:promote", slot: index } satisfies ToWorker);
    log.info({ worker: index, pid: taken.worker.process.pid }, "the spare worker takes over");
  };

  const fork = (index: number) => adopt(index, cluster.fork({ [SLOT_VARIABLE]: String(index) }));

  const adopt = (index: number, worker: Worker) => {
    const slot = slots[index]!;
    slot.worker = worker;
    slot.ready = false;
    worker.on("message", (message: ToPrimary) => {
      if (message?.type === "artifact:ready") {
        // A stop sent while it was still loading its modules may have found no listener yet.
        if (stopping) return void worker.send({ type: "artifact:stop" } satisfies ToWorker);
        slot.ready = true;
        forkSpare();
        if (bound) worker.send({ type: "artifact:listening", addresses: bound } satisfies ToWorker);
        if (!listening && slots.every((s) => s.ready)) {
          listening = true;
          listen().catch((err: unknown) => {
            log.error({ err }, "cannot listen: stopping");
            failed = true;
            stopAll();
          });
        }
      } else if (message?.type === "artifact:dying") {
        // It is going: route no more connections to it; its exit starts the replacement.
        slot.ready = false;
      } else if (message?.type === "artifact:metrics-json") {
        collecting.get(message.id)?.(message.metrics);
      } else if (message?.type === "artifact:metrics-request") {
        const answer = (reply: ToWorker) => worker.isConnected() && worker.send(reply);
        collectMetrics().then(
          (text) => answer({ type: "artifact:metrics", id: message.id, text }),
          (err: unknown) => answer({ type: "artifact:metrics", id: message.id, error: err instanceof Error ? err.message : String(err) }),
        );
      }
    });
    worker.on("exit", (code, signal) => {
      if (slot.worker === worker) {
        slot.worker = undefined;
        slot.ready = false;
      }
      for (const socket of slot.handing) socket.destroy();
      slot.handing.clear();
      if (stopping) {
        if (code !== 0) failed = true;
        if (slots.every((s) => !s.worker)) finish();
        return;
      }
      if (!listening) {
        // The service never started (bad database URL, a migration that fails): as a single
        // process whose start fails, stop.
        log.error({ worker: index, code, signal }, "a worker failed to start: stopping");
        failed = true;
        stopAll();
        return;
      }
      const now = Date.now();
      slot.crashes = [...slot.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
      const delay = restartDelay(slot.crashes.length);
      log.error({ worker: index, code, signal, restartInMs: delay }, `worker exited unexpectedly: starting another${delay ? ` in ${delay} ms` : ""}`);
      setTimeout(() => replace(index), delay);
    });
  };

  let forceTimer: NodeJS.Timeout | undefined;
  const finish = () => {
    clearTimeout(forceTimer);
    log.info("stopped");
    process.exit(failed ? 1 : 0);
  };
  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    for (const server of servers) server.close();
    spare?.worker.process.kill("SIGTERM");
    const running = slots.flatMap((s) => (s.worker ? [s.worker] : []));
    if (running.length === 0) return finish();
    for (const worker of running) if (worker.isConnected()) worker.send({ type: "artifact:stop" } satisfies ToWorker);
    // Each worker drains for up to SHUTDOWN_TIMEOUT_MS; past that and a margin, end them.
    forceTimer = setTimeout(() => {
      log.warn("workers did not stop in time: killing them");
      for (const worker of running) worker.process.kill("SIGKILL");
    }, config.shutdownTimeoutMs + 5_000);
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      for (const slot of slots) slot.worker?.process.kill("SIGKILL");
      process.exit(1);
    }
    log.info({ signal }, "signal received: stopping the workers");
    stopAll();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  if (config.tls) {
    // The primary holds no certificate: every worker re-reads the files itself.
    process.on("SIGHUP", () => {
      log.info("SIGHUP: the workers re-read the TLS files");
      for (const { worker } of ready()) worker.send({ type: "artifact:tls-reload" } satisfies ToWorker);
    });
  }

  log.info({ workers: count }, `starting ${count} worker${count > 1 ? "s" : ""}`);
  for (let index = 0; index < count; index++) fork(index);
  return { stop: stopAll };
}

const REFUSAL = JSON.stringify({ code: "unavailable", message: "" });

/**
 * Answers a connection no worker can take: HTTP/1.x gets a 503 it can retry, an HTTP/2 client
 * (which would not read an HTTP/1.1 answer) a closed connection, which gRPC clients retry too.
 * Over TLS every client gets the closed connection: the primary holds no certificate, and a
 * cleartext answer to a ClientHello would only read as a protocol error.
 */
function refuse(socket: net.Socket, why: string, tls: boolean): void {
  socket.setTimeout(1_000, () => socket.destroy());
  if (tls) {
    // Read what the client sent, so the close is a FIN rather than a reset.
    socket.resume();
    socket.end();
    return;
  }
  socket.once("data", (chunk: Buffer) => {
    if (chunk.subarray(0, 3).toString("latin1") === "PRI") return socket.destroy();
    const body = REFUSAL.replace('"message":""', `"message":${JSON.stringify(why)}`);
    socket.end(
      `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
  socket.resume();
}

/**
 * A worker: the whole server, fed the connections its primary accepts, stopped by its primary
 * (a terminal's Ctrl-C reaches every process of the group; the primary alone decides), by
 * SIGTERM sent to it alone, or when the primary is gone.
 */
export async function runWorker(config: Config, baseLog: Logger, options: StartOptions = {}): Promise<void> {
  const slot = process.env[SLOT_VARIABLE] === SPARE ? await parked(config) : Number(process.env[SLOT_VARIABLE] ?? "0");
  const log = baseLog.child({ worker: slot, pid: process.pid });
  const pending = new Map<number, { resolve(text: string): void; reject(err: Error): void }>();
  let nextId = 0;
  const renderMetrics = () =>
    new Promise<string>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      process.send!({ type: "artifact:metrics-request", id } satisfies ToPrimary);
      setTimeout(() => pending.delete(id) && reject(new Error("the primary process did not answer with the metrics")), 10_000).unref();
    });

  let server: PreparedServer | undefined;
  /** This worker's metrics, which the primary collects for GET /metrics. */
  let registry: Registry | undefined;
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    (server?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "error while shutting down");
        process.exit(1);
      },
    );
  };
  onEscapedErrors(log, {
    inFlight: () => server?.inFlight.list() ?? [],
    fatal: () => {
      // Stop taking connections; the primary starts a replacement when this process is gone.
      // Nothing to drain: the state of this process is not to be trusted any more.
      stopping = true;
      if (process.connected) process.send!({ type: "artifact:dying" } satisfies ToPrimary, () => process.exit(70));
      setTimeout(() => process.exit(70), 500).unref();
    },
  });
  process.on("message", (message: ToWorker, handle?: net.Socket) => {
    if (message?.type === "artifact:connection" && handle) {
      if (server && !stopping) server.listener.accept(handle);
      else handle.destroy();
    } else if (message?.type === "artifact:listening") {
      server?.listeningOn(message.addresses);
    } else if (message?.type === "artifact:stop") {
      stop();
    } else if (message?.type === "artifact:tls-reload") {
      server?.tls?.reload("SIGHUP");
    } else if (message?.type === "artifact:metrics-collect") {
      void registry?.getMetricsAsJSON().then((metrics) => process.send!({ type: "artifact:metrics-json", id: message.id, metrics } satisfies ToPrimary));
    } else if (message?.type === "artifact:metrics") {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.text !== undefined) waiting?.resolve(message.text);
      else waiting?.reject(new Error(message.error ?? "no metrics"));
    }
  });
  process.on("disconnect", stop);
  process.on("SIGTERM", stop);
  process.on("SIGINT", () => {});
  // A SIGHUP for the whole process group (or this worker alone) re-reads the TLS files too.
  if (config.tls) process.on("SIGHUP", () => server?.tls?.reload("SIGHUP"));

  server = await prepareServer({ ...config, gc: { ...config.gc, intervalMs: slot === 0 ? config.gc.intervalMs : 0 } }, log, {
    reportCredentials: slot === 0,
    ...options,
    onMetrics: (metrics: Metrics) => {
      registry = metrics.registry;
      metrics.renderWith(renderMetrics);
    },
  });
  if (stopping) return;
  log.info("worker ready");
  process.send!({ type: "artifact:ready" } satisfies ToPrimary);
}

/**
 * A spare worker waits here, its modules loaded (and on the embedded database PGlite's compiled
 * WebAssembly), until the primary promotes it to a slot (then it starts like any worker) or stops it.
 */
async function parked(config: Config): Promise<number> {
  // Best effort: without them, the promoted worker loads its own.
  if (config.database.kind === "pglite") await preloadPgliteAssets().catch(() => undefined);
  return new Promise((resolve) => {
    const leave = () => process.exit(0);
    const ignore = () => {};
    // Promoted, it reads the TLS files as it starts; until then a SIGHUP must not end it.
    if (config.tls) process.on("SIGHUP", ignore);
    const onMessage = (message: ToWorker) => {
      if (message?.type === "artifact:stop") leave();
      if (message?.type !== "artifact:promote") return;
      process.off("message", onMessage).off("disconnect", leave).off("SIGTERM", leave).off("SIGINT", ignore).off("SIGHUP", ignore);
      resolve(message.slot);
    };
    process.on("message", onMessage).on("disconnect", leave).on("SIGTERM", leave).on("SIGINT", ignore);
    process.send!({ type: "artifact:parked" } satisfies ToPrimary);
  });
}
