// The application as one Node request handler; building it does not listen (tests and the
// benchmark mount it on their own ports). Connect serves gRPC, gRPC-Web and Connect for every
// service; what no RPC path matches falls through to the plain-HTTP routes.
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { callInterceptor } from "../api/interceptors.js";
import { apiRoutes, apiServices, type ApiDeps } from "../api/routes.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { connectHandler } from "./connect-adapter.js";
import { healthProbes, healthRoutes, type HealthMonitor } from "./health.js";
import { loadDescriptorSet, ReflectionIndex, reflectionRoutes, reflectionServices } from "./reflection.js";
import type { RequestHandler } from "./listener.js";
import { createRestHandler } from "./rest.js";
import { createRestBlobHandler } from "./rest-blob.js";
import type { ContentDriver } from "../content/driver.js";
import { ociHandler, type OciLimits } from "../oci/handler.js";

export interface AppOptions {
  log: Logger;
  /** Database readiness, for gRPC health and /readyz. */
  health: HealthMonitor;
  /** Extra routes, e.g. the benchmark's no-database ceiling service. */
  extraRoutes?: (router: ConnectRouter) => void;
  /** Aborted when the server stops: running handlers see it in their context signal. */
  shutdownSignal?: AbortSignal;
  /** Blob storage and limits for the registry API on /v2/. */
  registry: { content: ContentDriver; limits: OciLimits };
}

export interface App {
  handler: RequestHandler;
}

export function buildApp(deps: ApiDeps, options: AppOptions): App {
  const interceptors: Interceptor[] = [callInterceptor(options.log)];
  const independent = [Health, ...reflectionServices].map((s) => s.typeName);
  const dependent = apiServices.map((s) => s.typeName);
  const reflection = new ReflectionIndex(loadDescriptorSet(), [...dependent, ...independent]);
  const probes = healthProbes(options.health);
  const routes = (router: ConnectRouter) => {
    apiRoutes(deps)(router);
    healthRoutes(options.health, { dependent, independent })(router);
    reflectionRoutes(reflection)(router);
    options.extraRoutes?.(router);
  };
  const rest = createRestHandler({ services: apiServices, routes, interceptors, shutdownSignal: options.shutdownSignal, log: options.log });
  // Blobs are served as raw bytes, not as the transcoder's NDJSON of chunks.
  const restBlob = createRestBlobHandler({ routes, interceptors, shutdownSignal: options.shutdownSignal, log: options.log });
  const handler = connectHandler({
    routes,
    interceptors,
    // A misspelt field is a mistake to report, not to ignore silently.
    jsonOptions: { ignoreUnknownFields: false },
    shutdownSignal: options.shutdownSignal,
    onHandlerFailure: (procedure, reason) => options.log.error({ procedure, err: reason }, "handler failed"),
    fallback: (req, res) => {
      if (probes(req, res)) return;
      restBlob(req, res, () =>
        rest(req, res, () => {
          res.writeHead(404, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: "not_found", message: `no route for ${req.method} ${(req.url ?? "").split("?")[0]}` }));
        }),
      );
    },
  });
  const registry = ociHandler({ store: deps.store, content: options.registry.content, log: options.log, limits: options.registry.limits });
  return {
    handler: (req, res) => {
      const url = req.url ?? "";
      // The registry API has its own paths and error format; everything else is Connect, REST and probes.
      if (url === "/v2" || url.startsWith("/v2/") || url.startsWith("/v2?")) registry(req, res);
      else handler(req, res);
    },
  };
}
