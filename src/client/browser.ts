// createArtifactClient for browsers (and any runtime with fetch): connect-web transports.
// `artifact-service/client` resolves here under the "browser" and "default" conditions;
// `artifact-service/client/browser` picks it explicitly. The server must allow the page's
// origin (CORS_ALLOWED_ORIGINS) when it is served from another one.
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { artifactClients, checkBaseUrl, clientInterceptors, checkProtocol, type ArtifactClient, type CommonClientOptions } from "./services.js";

export type { ArtifactClient, Protocol } from "./services.js";

export interface ArtifactClientOptions extends CommonClientOptions {
  /** The fetch to use; default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
}

/** Typed clients for every artifact.v1 service at `baseUrl`, over "connect" (default) or "grpc-web". */
export function createArtifactClient(baseUrl: string, options: ArtifactClientOptions = {}): ArtifactClient {
  const url = checkBaseUrl(baseUrl);
  const protocol = checkProtocol(options.protocol ?? "connect");
  const common = { baseUrl: url, interceptors: clientInterceptors(options), defaultTimeoutMs: options.defaultTimeoutMs, fetch: options.fetch };
  if (protocol === "grpc") {
    // gRPC ends every response with HTTP trailers, which fetch cannot read.
    throw new TypeError('createArtifactClient: protocol "grpc" needs HTTP/2 trailers, which browsers do not expose; use "grpc-web" or "connect"');
  }
  const transport =
    protocol === "connect"
      ? createConnectTransport({ ...common, useBinaryFormat: options.useBinaryFormat ?? false, useHttpGet: options.useHttpGet ?? false })
      : createGrpcWebTransport(common);
  return artifactClients(transport);
}
