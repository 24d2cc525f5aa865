// The one place a request's client certificate is read (mutual TLS, TLS_CLIENT_CA_FILE): the
// access layer asks here, for /v2/ with the Node request, for Connect calls through the context
// value src/http/connect-adapter.ts and the REST transcoder set (clientCertificateKey).
import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { TLSSocket } from "node:tls";
import { createContextValues, type ContextValues } from "@connectrpc/connect";
import { clientCertificateKey, type ClientCertificate } from "../client-certificate.js";

type NodeRequest = IncomingMessage | Http2ServerRequest;

/** Per connection (an HTTP/1.1 socket or an HTTP/2 session): read once, asked per request. */
const seen = new WeakMap<object, ClientCertificate | null>();

/**
 * The verified client certificate of the connection `req` came on, or undefined: cleartext, no
 * certificate, or one the CA did not verify (such connections are closed in optional mode anyway).
 */
export function clientCertificate(req: NodeRequest): ClientCertificate | undefined {
  // On HTTP/2 req.socket is a proxy of the session's socket; the session is the stable key. A
  // request whose connection is already gone (a response that closed it) has neither.
  const connection: object | null | undefined = "stream" in req ? (req.stream?.session ?? req.socket) : req.socket;
  if (!connection || !req.socket) return undefined;
  let known = seen.get(connection);
  if (known === undefined) {
    known = read(req.socket as TLSSocket);
    seen.set(connection, known);
  }
  return known ?? undefined;
}

/** Context values carrying the certificate into a Connect call, or undefined when there is none. */
export function clientCertificateContext(req: NodeRequest, values?: ContextValues): ContextValues | undefined {
  const certificate = clientCertificate(req);
  if (!certificate) return values;
  return (values ?? createContextValues()).set(clientCertificateKey, certificate);
}

function read(socket: TLSSocket): ClientCertificate | null {
  if (!socket.encrypted || !socket.authorized) return null;
  const peer = socket.getPeerCertificate();
  if (!peer || !peer.subject) return null;
  return {
    subject: distinguishedName(peer.subject),
    commonName: typeof peer.subject.CN === "string" ? peer.subject.CN : undefined,
    issuer: distinguishedName(peer.issuer),
    serialNumber: peer.serialNumber,
    fingerprint256: peer.fingerprint256,
    notAfter: new Date(peer.valid_to),
  };
}

function distinguishedName(name: Record<string, string | string[] | undefined>): string {
  return Object.entries(name)
    .flatMap(([type, value]) => (Array.isArray(value) ? value : value === undefined ? [] : [value]).map((v) => `${type}=${v}`))
    .join(", ");
}
