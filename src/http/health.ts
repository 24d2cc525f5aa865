// Health for load balancers and orchestrators: the gRPC health protocol (grpc.health.v1.Health
// Check, Watch, List) and plain HTTP probes (GET /healthz, GET /readyz).
//
// Lives in http/ rather than api/: it is part of the transport (like reflection), it watches the
// database handle directly, and the catalog services in api/ must not depend on it.
//
// Readiness is one fact, "the database answers", found by pinging on an interval (with a
// timeout) and on every /readyz probe. Each replica judges itself: nothing here is shared state.
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/health/v1/health_pb.js";

export { ServingStatus };

export interface HealthMonitorOptions {
  intervalMs: number;
  /** A ping that has not answered in this time counts as a failure. */
  timeoutMs: number;
}

/** Tracks whether the database answers; tells subscribers when that changes. */
export class HealthMonitor {
  private reachable = true; // the server starts only after the database opened and migrated
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private check$: Promise<boolean> | undefined;
  // A ping that outlived its timeout is not repeated until it settles: a hung database
  // must not collect one stuck query per interval.
  private ping$: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly ping: () => Promise<void>,
    private readonly options: HealthMonitorOptions,
    private readonly log: Logger,
  ) {}

  /** Pings now and then every interval until stop(). */
  start(): void {
    const tick = async () => {
      await this.check();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.options.intervalMs).unref();
    };
    void tick();
  }

  /** Whether the database answered the last ping; false once the server is stopping. */
  get ready(): boolean {
    return this.reachable && !this.stopped;
  }

  /** Whether the database answered the last ping, stopping or not. */
  get databaseReachable(): boolean {
    return this.reachable;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** Pings the database now (joining a ping already under way) and returns the new readiness. */
  check(): Promise<boolean> {
    this.check$ ??= this.runCheck().finally(() => (this.check$ = undefined));
    return this.check$;
  }

  /** Calls `listener` after every change of readiness; returns the unsubscriber. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Everything reports NOT_SERVING from now on, so balancers drain this replica while it stops. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    this.notify();
  }

  private async runCheck(): Promise<boolean> {
    if (this.stopped) return false;
    this.ping$ ??= this.ping().finally(() => (this.ping$ = undefined));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the database did not answer within ${this.options.timeoutMs} ms`)), this.options.timeoutMs);
    });
    try {
      await Promise.race([this.ping$, timeout]);
      this.update(true);
    } catch (err) {
      this.update(false, err);
    } finally {
      clearTimeout(timer);
    }
    return this.ready;
  }

  private update(reachable: boolean, err?: unknown): void {
    if (this.stopped || reachable === this.reachable) return;
    this.reachable = reachable;
    if (reachable) this.log.info("database reachable again: health SERVING");
    else this.log.warn({ err }, "database unreachable: health NOT_SERVING");
    this.notify();
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}

export interface HealthServices {
  /** Services that need the database (the catalog); "" (the whole server) does too. */
  dependent: string[];
  /** Services that work without it (health, reflection): SERVING until the server stops. */
  independent: string[];
}

/** grpc.health.v1.Health as Connect routes. Unknown service: Check and List say NOT_FOUND, Watch says SERVICE_UNKNOWN. */
export function healthRoutes(monitor: HealthMonitor, services: HealthServices) {
  const dependent = new Set(["", ...services.dependent]);
  const independent = new Set(services.independent);
  const statusOf = (service: string): ServingStatus => {
    if (independent.has(service)) return monitor.isStopped ? ServingStatus.NOT_SERVING : ServingStatus.SERVING;
    if (dependent.has(service)) return monitor.ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
    return ServingStatus.SERVICE_UNKNOWN;
  };

  return (router: ConnectRouter) => {
    router.service(Health, {
      check(req) {
        const status = statusOf(req.service);
        if (status === ServingStatus.SERVICE_UNKNOWN) {
          throw new ConnectError(`unknown service ${JSON.stringify(req.service)}: not served here`, Code.NotFound);
        }
        return { status };
      },
      list() {
        const statuses: Record<string, { status: ServingStatus }> = {};
        for (const service of [...dependent, ...independent]) statuses[service] = { status: statusOf(service) };
        return { statuses };
      },
      watch(req, context) {
        return watch(monitor, () => statusOf(req.service), context);
      },
    });
  };
}

// The current status at once, then each change. The stream ends (UNAVAILABLE) when the server
// stops, after saying NOT_SERVING, so shutdown does not wait for watchers.
async function* watch(monitor: HealthMonitor, current: () => ServingStatus, context: HandlerContext) {
  let changed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    changed = true;
    wake?.();
  };
  const unsubscribe = monitor.subscribe(poke);
  context.signal.addEventListener("abort", poke);
  try {
    let last: ServingStatus | undefined;
    while (!context.signal.aborted) {
      const status = current();
      if (status !== last) {
        last = status;
        yield { status };
      }
      if (monitor.isStopped) throw new ConnectError("the server is shutting down", Code.Unavailable);
      if (!changed) await new Promise<void>((resolve) => (wake = resolve));
      changed = false;
    }
    throw new ConnectError("the client closed the stream", Code.Canceled);
  } finally {
    unsubscribe();
    context.signal.removeEventListener("abort", poke);
  }
}

// What the adapter hands its fallback: HTTP/1.1 or HTTP/2 request and response.
type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Req = Parameters<Fallback>[0];
type Res = Parameters<Fallback>[1];

/**
 * GET /healthz: the process is alive (200). GET /readyz: the database answers (200) or not, or
 * the server is stopping (503). Returns false for other paths, so the caller can go on routing.
 */
export function healthProbes(monitor: HealthMonitor): (req: Req, res: Res) => boolean {
  const send = (req: Req, res: Res, status: number, body: object) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
    if (req.method === "HEAD") res.end();
    else res.end(text);
  };
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/healthz" && path !== "/readyz") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      send(req, res, 405, { code: "method_not_allowed", message: `${path} answers GET and HEAD, not ${req.method}` });
      return true;
    }
    if (path === "/healthz") {
      send(req, res, 200, { status: "alive" });
      return true;
    }
    monitor.check().then(
      (ready) => {
        if (ready) send(req, res, 200, { status: "ready", database: "reachable" });
        else if (monitor.isStopped) send(req, res, 503, { status: "not_ready", reason: "the server is shutting down" });
        else send(req, res, 503, { status: "not_ready", database: "unreachable" });
      },
      () => send(req, res, 503, { status: "not_ready", database: "unknown" }),
    );
    return true;
  };
}
