// HTTP details of the registry API: headers every answer carries, request headers read the way
// the spec (and RFC 9110) mean them, bounded body reads, list paging.
import type { IncomingMessage, ServerResponse } from "node:http";
import { constants as http2, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { invalidArgument } from "../domain/errors.js";
import { noneMatch } from "../http/conditional.js";

export type Request = IncomingMessage | Http2ServerRequest;
export type Response = ServerResponse | Http2ServerResponse;
export type Headers = Record<string, string | number>;

export const API_VERSION = { "docker-distribution-api-version": "registry/2.0" };
/** Largest page of tags, repositories or referrers one request returns. */
export const MAX_LIST = 1000;

/**
 * Bytes up to this size go out as a latin1 string (one byte per char, so exactly the same
 * bytes): Node's HTTP/1.1 response then sends head and body in one write, where a Buffer body
 * costs a corked second chunk and a writev. Manifests are this size; 8% of a manifest GET's CPU
 * was that writev.
 */
export const ONE_WRITE_MAX = 64 * 1024;

export function send(res: Response, status: number, headers: Headers, body?: string | Uint8Array): void {
  res.writeHead(status, { ...API_VERSION, ...headers });
  if (body === undefined) res.end();
  else if (typeof body !== "string" && body.byteLength <= ONE_WRITE_MAX && !("stream" in res)) {
    res.end(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1"), "latin1");
  } else res.end(body);
}

/**
 * Ends the request's exchange with this response, whatever is left of the request body: HTTP/1.1
 * says `Connection: close` (Node then closes the socket once the answer is out, without reading
 * the rest); HTTP/2 resets the stream with NO_ERROR once the answer is out (RFC 9113 §8.1), and
 * the connection's other streams go on.
 */
export function closeAfter(req: Request, headers: Headers): void {
  if (!("stream" in req)) {
    headers.connection = "close";
    return;
  }
  const { stream } = req;
  // The stream's writable side finishes once the answer is handed over; the response's own
  // "finish" would wait for the stream to close, which the client's unfinished body prevents.
  stream.once("finish", () => {
    if (!stream.closed && !stream.destroyed) stream.close(http2.NGHTTP2_NO_ERROR);
  });
}

export function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function contentLength(req: Request): number | undefined {
  const value = header(req, "content-length");
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value);
}

/** True when the client already holds `etag` (If-None-Match): the answer is 304 without a body. */
export function notModified(req: Request, etag: string): boolean {
  return !noneMatch(header(req, "if-none-match"), etag);
}

/** Reads a request body of at most `max` bytes; past that `tooLarge()` is thrown. */
export async function readLimited(req: Request, max: number, tooLarge: (size: string) => Error): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > max) throw tooLarge(`${declared} bytes`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw tooLarge(`over ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** `n` of a listing: absent → the cap; a number above the cap → the cap. */
export function pageSize(q: URLSearchParams): number {
  const raw = q.get("n");
  if (raw === null || raw === "") return MAX_LIST;
  if (!/^\d{1,15}$/.test(raw)) throw invalidArgument(`n must be a non-negative integer (got ${JSON.stringify(raw.slice(0, 20))})`);
  return Math.min(Number(raw), MAX_LIST);
}

/** A page of a listing: what to show, and the `Link` header to the next page when there is one. */
export function page<T>(rows: T[], n: number, key: (row: T) => string, nextUrl: (last: string) => string): { items: T[]; link?: string } {
  if (rows.length <= n) return { items: rows };
  const items = rows.slice(0, n);
  return { items, link: `<${nextUrl(key(items[items.length - 1]!))}>; rel="next"` };
}
