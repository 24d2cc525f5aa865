// What a call learns from its HTTP request beyond the message, the same on every way in (the
// Connect adapter, REST, the REST blob route): the client's address and its verified TLS client
// certificate as context values (Connect interceptors do not see the socket), and, for REST's
// in-process calls, the request headers the interceptors read (request id, credentials).
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import { clientAddressKey, socketAddress } from "../auth/context.js";
import { REQUEST_ID_HEADER } from "../request-id.js";
import { clientCertificateContext } from "./client-certificate.js";

export function callContext(req: IncomingMessage | Http2ServerRequest, values: ContextValues = createContextValues()): ContextValues {
  values.set(clientAddressKey, socketAddress(req));
  return clientCertificateContext(req, values) ?? values;
}

/** The headers a REST request passes on to the call it makes. */
export function callHeaders(req: { headers: Record<string, string | string[] | undefined> }, requestId: string): Record<string, string> {
  const header: Record<string, string> = { [REQUEST_ID_HEADER]: requestId };
  const authorization = req.headers.authorization;
  if (typeof authorization === "string") header.authorization = authorization;
  return header;
}
