// createArtifactClient for Node: connect-node transports, so all three protocols work (gRPC
// needs HTTP/2, which only Node's http2 gives us). `artifact-service/client` resolves here
// under the "node" condition; `artifact-service/client/node` picks it explicitly.
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Transport } from "@connectrpc/connect";
import { artifactClients, checkBaseUrl, clientInterceptors, checkProtocol, type ArtifactClient, type CommonClientOptions } from "./services.js";

export type { ArtifactClient, Protocol } from "./services.js";

export interface ArtifactClientOptions extends CommonClientOptions {
  /**
   * HTTP version for "connect" and "grpc-web"; default "1.1" (passes any proxy). "grpc" always
   * uses HTTP/2 (cleartext with prior knowledge for http:// URLs, what the server's ports speak).
   */
  httpVersion?: "1.1" | "2";
}

/** Typed clients for every artifact.v1 service at `baseUrl` (e.g. http://localhost:8080). */
export function createArtifactClient(baseUrl: string, options: ArtifactClientOptions = {}): ArtifactClient {
  const url = checkBaseUrl(baseUrl);
  const protocol = checkProtocol(options.protocol ?? "connect");
  const common = { baseUrl: url, interceptors: clientInterceptors(options), defaultTimeoutMs: options.defaultTimeoutMs };
  let transport: Transport;
  switch (protocol) {
    case "connect":
      transport = createConnectTransport({
        ...common,
        httpVersion: options.httpVersion ?? "1.1",
        useBinaryFormat: options.useBinaryFormat ?? false,
        useHttpGet: options.useHttpGet ?? false,
      });
      break;
    case "grpc":
      transport = createGrpcTransport(common);
      break;
    case "grpc-web":
      transport = createGrpcWebTransport({ ...common, httpVersion: options.httpVersion ?? "1.1" });
      break;
  }
  return artifactClients(transport);
}
