// The application as one Node request handler; building it does not listen (tests and the
// benchmark mount it on their own ports). Connect serves gRPC, gRPC-Web and Connect for every
// service; what no RPC path matches falls through to the plain-HTTP routes.
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { callInterceptor } from "../api/interceptors/call.js";
import { textInterceptor } from "../api/interceptors/text.js";
import { authInterceptor } from "../api/interceptors/auth.js";
import type { Auth } from "../auth/index.js";
import type { Rule } from "../auth/rules.js";
import { withRegistryAccess } from "../auth/registry-access.js";
import { TOKEN_PATH } from "../auth/token-endpoint.js";
import { apiRoutes, apiServices, type ApiDeps } from "../api/routes.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { ImageService } from "../../gen/artifact/v1/image_pb.js";
import { connectHandler } from "./connect-adapter.js";
import { healthProbes, healthRoutes, type HealthMonitor } from "./health.js";
import { loadDescriptorSet, ReflectionIndex, reflectionRoutes, reflectionServices } from "./reflection.js";
import type { RequestHandler } from "./listener.js";
import { createRestHandler } from "./rest/transcoder.js";
import { createRestBlobHandler } from "./rest-blob.js";
import { ociHandler, type OciLimits } from "../oci/handler.js";
import type { Registries } from "../registry/index.js";
import type { Store } from "../store/index.js";
import { parseOciPath } from "../oci/routes.js";
import { deadlineInterceptor } from "../api/interceptors/deadline.js";
import { databaseGateInterceptor } from "../api/interceptors/database-gate.js";
import { corsHandler, type CorsOptions } from "./cors.js";
import type { Metrics, RequestLabels } from "./metrics.js";
import type { InFlight } from "./in-flight.js";
import { uiHandler } from "./ui.js";
import { uiDir } from "../paths.js";

export interface AppOptions {
  log: Logger;
  /** Database readiness, for gRPC health and /readyz. */
  health: HealthMonitor;
  /** Extra routes, e.g. the benchmark's no-database ceiling service. */
  extraRoutes?: (router: ConnectRouter) => void;
  /** The access rules of extraRoutes' methods. */
  extraRules?: readonly [string, Rule][];
  /** Aborted when the server stops: running handlers see it in their context signal. */
  shutdownSignal?: AbortSignal;
  /** Limits of the registry API on /v2/, and the image core over another store (one that knows the caller). */
  registry: { limits: OciLimits; over: (store: Store) => Registries };
  /** Largest RPC or REST request body (MAX_REQUEST_BYTES; the registry API has its own limits). */
  maxRequestBytes: number;
  /** Off when no origin is allowed. Covers everything but /v2/. */
  cors?: CorsOptions;
  /** Counts calls and requests, and serves GET /metrics. */
  metrics?: Metrics;
  /** Every request is registered here while it runs. */
  inFlight?: InFlight;
  /** True while the database is known not to answer: calls that need it fail at once. */
  databaseDown?: () => boolean;
  /** Identity and access: the API's interceptor, the /v2/ middleware, the token endpoint. */
  auth: Auth;
  /** The built web UI (default dist/ui/ of the package). */
  uiDir?: string;
}

export interface App {
  handler: RequestHandler;
  /**
   * The Connect services and the interceptors every call goes through, as the HTTP handler serves
   * them: what an in-process client needs (`createRouterTransport(routes, { router: { interceptors } })`).
   */
  connect: { routes: (router: ConnectRouter) => void; interceptors: Interceptor[] };
}

export function buildApp(deps: ApiDeps, options: AppOptions): App {
  const { metrics } = options;
  const { maxRequestBytes } = options;
  const independent = [Health, ...reflectionServices].map((s) => s.typeName);
  const dependent = apiServices.map((s) => s.typeName);
  const databaseDown = options.databaseDown ?? (() => false);
  const interceptors: Interceptor[] = [
    callInterceptor(options.log, metrics?.callObserver),
    deadlineInterceptor(),
    databaseGateInterceptor(databaseDown, new Set(dependent)),
    // Before access: the access rules look resources up by the request's ids and names, and text
    // the database cannot store (a NUL) must be refused before it reaches any query.
    textInterceptor(),
    authInterceptor({
      authenticator: options.auth.authenticator,
      rules: options.extraRules ? new Map([...options.auth.rules, ...options.extraRules]) : options.auth.rules,
      locate: options.auth.locate,
      access: deps.store.access,
      audit: deps.store.audit,
      log: options.log,
    }),
  ];
  const reflection = new ReflectionIndex(loadDescriptorSet(), [...dependent, ...independent]);
  const probes = healthProbes(options.health);
  const routes = (router: ConnectRouter) => {
    apiRoutes(deps)(router);
    healthRoutes(options.health, { dependent, independent })(router);
    reflectionRoutes(reflection)(router);
    options.extraRoutes?.(router);
  };
  const rest = createRestHandler({
    services: apiServices,
    routes,
    interceptors,
    maxBodyBytes: maxRequestBytes,
    shutdownSignal: options.shutdownSignal,
    log: options.log,
  });
  // What the fallback learns about a request, for the metrics (routing below is synchronous).
  const labelsOf = new WeakMap<object, RequestLabels>();
  const label = (req: object, kind: string) => {
    const labels = labelsOf.get(req);
    if (labels) {
      labels.kind = kind;
      labels.route = "";
    }
  };
  // Blobs are served as raw bytes, not as the transcoder's NDJSON of chunks.
  const restBlob = createRestBlobHandler({ routes, interceptors, shutdownSignal: options.shutdownSignal, log: options.log });
  const handler = connectHandler({
    routes,
    uncompressedProcedures: new Set([`/${ImageService.typeName}/${ImageService.method.getBlob.name}`]),
    interceptors,
    readMaxBytes: maxRequestBytes,
    // A misspelt field is a mistake to report, not to ignore silently.
    jsonOptions: { ignoreUnknownFields: false },
    shutdownSignal: options.shutdownSignal,
    onHandlerFailure: (procedure, reason) => options.log.error({ procedure, err: reason }, "handler failed"),
    fallback: (req, res) => {
      label(req, "probe");
      if (probes(req, res)) return;
      label(req, "metrics");
      if (metrics?.serve(req, res, options.log)) return;
      label(req, "rest");
      restBlob(req, res, () =>
        rest(req, res, () => {
          label(req, "ui");
          if (ui(req, res)) return;
          label(req, "unmatched");
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${(req.url ?? "").split("?")[0]}` }));
        }),
      );
    },
  });
  const access = options.auth.registry;
  const registryDeps = withRegistryAccess(
    { registries: deps.registries, log: options.log, limits: options.registry.limits, databaseDown, pulls: deps.events.pulls },
    access,
  );
  const registry = ociHandler(registryDeps);
  // The catalog and mounts answer what the caller may see: their handler gets an image core over
  // a store that knows it.
  const registryFor = (req: Parameters<typeof registry>[0], res: Parameters<typeof registry>[1]) => {
    if (!access.needsOwnStore(req)) return registry(req, res);
    access.storeFor(req, deps.store).then(
      (store) => (store ? ociHandler({ ...registryDeps, registries: options.registry.over(store) }) : registry)(req, res),
      () => registry(req, res),
    );
  };
  const ui = uiHandler(options.uiDir ?? uiDir);
  const cors = corsHandler(options.cors ?? { allowedOrigins: [], maxAgeSeconds: 0 });
  return {
    connect: { routes, interceptors },
    handler: (req, res) => {
      const url = req.url ?? "";
      options.inFlight?.track(req, res);
      const labels = metrics?.request(req, res);
      // The registry API has its own paths and error format, and no CORS (container tools are
      // not browsers); everything else is Connect, REST, probes and metrics.
      if (url === "/v2" || url.startsWith("/v2/") || url.startsWith("/v2?")) {
        if (labels) {
          labels.kind = "registry";
          labels.route = registryRoute(url);
        }
        access.begin(req, res);
        registryFor(req, res);
      } else if (url === TOKEN_PATH || url.startsWith(`${TOKEN_PATH}?`)) {
        if (labels) {
          labels.kind = "auth";
          labels.route = "token";
        }
        options.auth.tokenEndpoint(req, res);
      } else if (cors(req, res)) {
        if (labels) labels.kind = "preflight";
      } else {
        if (labels) {
          labels.kind = "rpc";
          labels.route = rpcProtocol(req.headers["content-type"]);
          labelsOf.set(req, labels);
        }
        handler(req, res);
      }
      labels?.dispatched();
    },
  };
}

/** The /v2/ route's kind (manifest, blob, uploads, …), a bounded label; "invalid" when the path is not one. */
function registryRoute(url: string): string {
  const path = url.split("?", 1)[0]!;
  try {
    return parseOciPath(path.length <= 4 ? "" : path.slice(4))?.kind ?? "unknown";
  } catch {
    return "invalid";
  }
}

function rpcProtocol(contentType: string | undefined): string {
  if (contentType?.startsWith("application/grpc-web")) return "grpc_web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}
