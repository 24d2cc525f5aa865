// WORKERS=N: N server processes share the two ports (node:cluster; the primary accepts each
// connection and hands it to the workers in turn). Each worker is a whole server with its own
// database pool, exactly like N replicas behind a load balancer: nothing is shared in memory.
// The primary serves nothing itself; it starts the workers, replaces one that dies, stops them
// all on SIGTERM/SIGINT, and adds up their metrics for GET /metrics.
//
// Only worker 0 runs the background garbage collection (any replica could: every deletion is
// re-checked under locks, so this only saves the others the work), and only worker 0 logs which
// stored credentials the keys cannot open.
import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import { AggregatorRegistry } from "prom-client";
import type { Config } from "./config.js";
import type { Metrics } from "./http/metrics.js";
import { startServer, type RunningServer, type StartOptions } from "./server.js";

/** The worker number (0 … WORKERS-1) the primary hands each worker it forks. */
const SLOT_VARIABLE = "ARTIFACT_WORKER_SLOT";

type ToPrimary = { type: "artifact:ready"; http: string; grpc: string } | { type: "artifact:metrics-request"; id: number };
type ToWorker = { type: "artifact:stop" } | { type: "artifact:metrics"; id: number; text?: string; error?: string };

/** A crashed worker is replaced after this; a worker that never got ready stops everything instead. */
const RESTART_DELAY_MS = 1_000;

export const isClusterWorker = () => cluster.isWorker;

export interface PrimaryHooks {
  /** Once every worker listens, with the addresses they share. */
  onReady?(addresses: { http: string; grpc: string }): void;
}

/** Starts the workers; `stop()` does what SIGTERM does. The process exits when they have all stopped. */
export function runPrimary(config: Config, log: Logger, hooks: PrimaryHooks = {}): { stop(): void } {
  const count = config.workers;
  const aggregator = new AggregatorRegistry();
  const workers = new Map<number, Worker>();
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;
  let failed = false;

  const fork = (slot: number) => {
    const worker = cluster.fork({ [SLOT_VARIABLE]: String(slot) });
    workers.set(slot, worker);
    let wasReady = false;
    worker.on("message", (message: ToPrimary) => {
      if (message?.type === "artifact:ready") {
        wasReady = true;
        ready.add(slot);
        if (!announced && ready.size === count) {
          announced = true;
          log.info({ workers: count, http: message.http, grpc: message.grpc }, `listening with ${count} workers (gRPC, gRPC-Web, Connect and HTTP on both)`);
          hooks.onReady?.({ http: message.http, grpc: message.grpc });
        }
      } else if (message?.type === "artifact:metrics-request") {
        const answer = (reply: ToWorker) => worker.isConnected() && worker.send(reply);
        aggregator.clusterMetrics().then(
          (text) => answer({ type: "artifact:metrics", id: message.id, text }),
          (err: unknown) => answer({ type: "artifact:metrics", id: message.id, error: err instanceof Error ? err.message : String(err) }),
        );
      }
    });
    worker.on("exit", (code, signal) => {
      workers.delete(slot);
      ready.delete(slot);
      if (stopping) {
        if (code !== 0) failed = true;
        if (workers.size === 0) finish();
        return;
      }
      if (!wasReady) {
        // Same as a single process whose start fails (bad database URL, port taken): stop.
        log.error({ worker: slot, code, signal }, "a worker failed to start: stopping");
        failed = true;
        stopAll();
        return;
      }
      log.error({ worker: slot, code, signal }, `worker exited unexpectedly: starting another in ${RESTART_DELAY_MS} ms`);
      setTimeout(() => stopping || fork(slot), RESTART_DELAY_MS);
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
    if (workers.size === 0) return finish();
    for (const worker of workers.values()) if (worker.isConnected()) worker.send({ type: "artifact:stop" } satisfies ToWorker);
    // Each worker drains for up to SHUTDOWN_TIMEOUT_MS; past that and a margin, end them.
    forceTimer = setTimeout(() => {
      log.warn("workers did not stop in time: killing them");
      for (const worker of workers.values()) worker.process.kill("SIGKILL");
    }, config.shutdownTimeoutMs + 10_000);
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      for (const worker of workers.values()) worker.process.kill("SIGKILL");
      process.exit(1);
    }
    log.info({ signal }, "signal received: stopping the workers");
    stopAll();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);

  log.info({ workers: count }, `starting ${count} workers`);
  for (let slot = 0; slot < count; slot++) fork(slot);
  return { stop: stopAll };
}

/**
 * A worker: the whole server, stopped by its primary (a terminal's Ctrl-C reaches every process
 * of the group; the primary alone decides), by SIGTERM sent to it alone, or when the primary is gone.
 */
export async function runWorker(config: Config, baseLog: Logger, options: StartOptions = {}): Promise<void> {
  const slot = Number(process.env[SLOT_VARIABLE] ?? "0");
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

  let server: RunningServer | undefined;
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
  process.on("message", (message: ToWorker) => {
    if (message?.type === "artifact:stop") stop();
    if (message?.type === "artifact:metrics") {
      const waiting = pending.get(message.id);
      pending.delete(message.id);
      if (message.text !== undefined) waiting?.resolve(message.text);
      else waiting?.reject(new Error(message.error ?? "no metrics"));
    }
  });
  process.on("disconnect", stop);
  process.on("SIGTERM", stop);
  process.on("SIGINT", () => {});

  server = await startServer({ ...config, gc: { ...config.gc, intervalMs: slot === 0 ? config.gc.intervalMs : 0 } }, log, {
    reportCredentials: slot === 0,
    ...options,
    onMetrics: (metrics: Metrics) => {
      // prom-client answers the primary's AggregatorRegistry with these registries; it starts
      // listening for the primary's requests when a worker constructs one.
      AggregatorRegistry.setRegistries([metrics.registry]);
      new AggregatorRegistry();
      metrics.renderWith(renderMetrics);
    },
  });
  if (stopping) return;
  process.send!({
    type: "artifact:ready",
    http: `${server.http.address}:${server.http.port}`,
    grpc: `${server.grpc.address}:${server.grpc.port}`,
  } satisfies ToPrimary);
}
