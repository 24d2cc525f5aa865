// Prometheus metrics on GET /metrics (prom-client, text format). One registry per server, so
// several servers in one process (tests) keep their counts apart; process metrics included.
//
// What is counted where: RPC calls (every protocol, and REST calls that reach a method) in the
// call interceptor, through the CallObserver; every HTTP request (RPC, REST, /v2/, probes; REST
// refusals before any call such as 404/405/413/415 included) at the app's front door; database
// readiness and ping latency from the health monitor's pings; garbage collection through the
// observer the collector tells of every run.
import type http from "node:http";
import type http2 from "node:http2";
import type { Logger } from "pino";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CallObserver } from "../api/interceptors/call.js";
import type { GcObserver } from "../store/gc.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

const PREFIX = "artifact_";
// Catalog calls take about a millisecond; uploads and garbage collection can take minutes.
const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the app sets while it routes a request; recorded when the response closes. */
export interface RequestLabels {
  /** rpc, rest, registry, probe, metrics, preflight or unmatched. */
  kind: string;
  /** rpc: the protocol (connect, grpc, grpc_web); registry: the /v2/ route (manifest, blob, …); else "". */
  route: string;
  /** Call once routing chose the labels: counts the request as in flight until it closes. */
  dispatched(): void;
}

export interface DatabaseState {
  driver: "pglite" | "postgres";
  /** Configured connection pool size (PGlite has exactly one connection). */
  poolMax: number;
  /** Whether the last health ping succeeded. */
  ready(): boolean;
}

export class Metrics {
  readonly registry = new Registry();
  private render = () => this.registry.metrics();
  private readonly calls: Counter<"procedure" | "code">;
  private readonly callSeconds: Histogram<"procedure">;
  private readonly callsInFlight: Gauge<"procedure">;
  private readonly requests: Counter<"kind" | "route" | "method" | "status">;
  private readonly requestSeconds: Histogram<"kind" | "route" | "method">;
  private readonly requestsInFlight: Gauge<"kind" | "route">;
  private readonly pingSeconds: Histogram;
  private readonly gcRuns: Counter<"result" | "dry_run">;
  private readonly gcDeleted: Counter<"what">;
  private readonly gcFreedBytes: Counter;
  private readonly gcSeconds: Histogram;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.calls = new Counter({
      name: `${PREFIX}rpc_calls_total`,
      help: "RPC calls that ended, by procedure and code (ok, not_found, …); REST calls that reached a method included.",
      labelNames: ["procedure", "code"],
      registers,
    });
    this.callSeconds = new Histogram({
      name: `${PREFIX}rpc_call_duration_seconds`,
      help: "Duration of RPC calls, by procedure (streams: until the stream ends).",
      labelNames: ["procedure"],
      buckets: SECONDS,
      registers,
    });
    this.callsInFlight = new Gauge({
      name: `${PREFIX}rpc_calls_in_flight`,
      help: "RPC calls running now, by procedure.",
      labelNames: ["procedure"],
      registers,
    });
    this.requests = new Counter({
      name: `${PREFIX}http_requests_total`,
      help: "HTTP requests answered, by kind (rpc, rest, registry, probe, metrics, preflight, unmatched), route, method and status.",
      labelNames: ["kind", "route", "method", "status"],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: "Duration of HTTP requests from arrival until the response closed.",
      labelNames: ["kind", "route", "method"],
      buckets: SECONDS,
      registers,
    });
    this.requestsInFlight = new Gauge({
      name: `${PREFIX}http_requests_in_flight`,
      help: "HTTP requests being served now, by kind and route.",
      labelNames: ["kind", "route"],
      registers,
    });
    this.pingSeconds = new Histogram({
      name: `${PREFIX}database_ping_duration_seconds`,
      help: "Duration of the health monitor's database pings (failed ones included).",
      buckets: SECONDS,
      registers,
    });
    this.gcRuns = new Counter({
      name: `${PREFIX}gc_runs_total`,
      help: "Garbage collection runs, by result (ok, error) and whether they were dry runs.",
      labelNames: ["result", "dry_run"],
      registers,
    });
    this.gcDeleted = new Counter({
      name: `${PREFIX}gc_deleted_total`,
      help: "What garbage collection deleted: manifest, blob, upload (expired sessions), orphan (bytes without a row). Dry runs not counted.",
      labelNames: ["what"],
      registers,
    });
    this.gcFreedBytes = new Counter({
      name: `${PREFIX}gc_freed_bytes_total`,
      help: "Bytes of blob content garbage collection freed. Dry runs not counted.",
      registers,
    });
    this.gcSeconds = new Histogram({
      name: `${PREFIX}gc_run_duration_seconds`,
      help: "Duration of garbage collection runs.",
      buckets: SECONDS,
      registers,
    });
  }

  /** For callInterceptor: counts calls, their codes and durations, and the ones running. */
  readonly callObserver: CallObserver = {
    started: (procedure) => this.callsInFlight.inc({ procedure }),
    ended: (procedure, code, seconds) => {
      this.callsInFlight.dec({ procedure });
      this.calls.inc({ procedure, code });
      this.callSeconds.observe({ procedure }, seconds);
    },
  };

  /** Starts timing one HTTP request; the app fills in the labels while it routes it. */
  request(req: Request, res: Response): RequestLabels {
    const started = performance.now();
    const method = req.method ?? "";
    let inFlight: { kind: string; route: string } | undefined;
    const labels: RequestLabels = {
      kind: "unmatched",
      route: "",
      dispatched: () => {
        inFlight = { kind: labels.kind, route: labels.route };
        this.requestsInFlight.inc(inFlight);
      },
    };
    res.once("close", () => {
      if (inFlight) this.requestsInFlight.dec(inFlight);
      const { kind, route } = labels;
      this.requests.inc({ kind, route, method, status: String(res.statusCode) });
      this.requestSeconds.observe({ kind, route, method }, (performance.now() - started) / 1000);
    });
    return labels;
  }

  /** The database's state: pool size, and up/down as the health monitor last saw it. */
  watchDatabase(state: DatabaseState): void {
    new Gauge({
      name: `${PREFIX}database_up`,
      help: "1 when the last database health ping succeeded, else 0.",
      labelNames: ["driver"],
      // Over cluster workers: 0 when any of them cannot reach the database.
      aggregator: "min",
      registers: [this.registry],
      collect() {
        this.set({ driver: state.driver }, state.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: `${PREFIX}database_pool_max_connections`,
      help: "Configured maximum of database connections in this replica's pool (PGlite: 1).",
      labelNames: ["driver"],
      registers: [this.registry],
    }).set({ driver: state.driver }, state.poolMax);
  }

  /** `ping`, timed. */
  timedPing(ping: () => Promise<void>): () => Promise<void> {
    return async () => {
      const end = this.pingSeconds.startTimer();
      try {
        await ping();
      } finally {
        end();
      }
    };
  }

  /** For the garbage collector: counts runs, what they deleted and how long they took. */
  readonly gcObserver: GcObserver = {
    ran: (options, outcome, seconds) => {
      this.gcRuns.inc({ result: "report" in outcome ? "ok" : "error", dry_run: String(options.dryRun) });
      this.gcSeconds.observe(seconds);
      if (!("report" in outcome) || outcome.report.dryRun) return;
      const { report } = outcome;
      this.gcDeleted.inc({ what: "manifest" }, report.manifestsDeleted);
      this.gcDeleted.inc({ what: "blob" }, report.blobsDeleted);
      this.gcDeleted.inc({ what: "upload" }, report.uploadsExpired);
      this.gcDeleted.inc({ what: "orphan" }, report.orphansRemoved);
      this.gcFreedBytes.inc(report.bytesFreed);
    },
  };

  /** GET /metrics answers with what `render` returns instead (the sum over cluster workers). */
  renderWith(render: () => Promise<string>): void {
    this.render = render;
  }

  /** GET (or HEAD) /metrics; returns false for other paths. */
  serve(req: Request, res: Response, log?: Logger): boolean {
    if ((req.url ?? "").split("?", 1)[0] !== "/metrics") return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json" });
      res.end(JSON.stringify({ code: "method_not_allowed", message: `/metrics answers GET and HEAD, not ${req.method}` }));
      return true;
    }
    this.render().then(
      (text) => {
        res.writeHead(200, { "content-type": this.registry.contentType, "cache-control": "no-store", "content-length": Buffer.byteLength(text) });
        if (req.method === "HEAD") res.end();
        else res.end(text);
      },
      (err: unknown) => {
        log?.error({ err }, "collecting metrics failed");
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ code: "internal", message: "collecting metrics failed" }));
      },
    );
    return true;
  }
}
