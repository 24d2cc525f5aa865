// The requests a process is serving right now, for the one report that needs them: a bug that
// escapes every handler (an unhandled rejection, an uncaught exception) is logged with the
// requests in flight, since nothing else ties the failure to a request. Cheap enough for every
// request: a Set entry and one "close" listener.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { isRequestId, REQUEST_ID_HEADER } from "../request-id.js";

export interface RequestInFlight {
  method: string;
  /** Without the query string (it may carry anything), at most 200 characters. */
  path: string;
  /** The client's x-request-id when it sent a sane one. */
  requestId?: string;
  contentType?: string;
  remoteAddress?: string;
  /** How long it has been running. */
  ms: number;
}

interface Entry {
  req: IncomingMessage | Http2ServerRequest;
  started: number;
}

export class InFlight {
  private readonly entries = new Set<Entry>();

  track(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
    const entry = { req, started: performance.now() };
    this.entries.add(entry);
    res.once("close", () => this.entries.delete(entry));
  }

  get size(): number {
    return this.entries.size;
  }

  /** The oldest `limit` requests first. */
  list(limit = 20): RequestInFlight[] {
    const now = performance.now();
    const out: RequestInFlight[] = [];
    for (const { req, started } of this.entries) {
      if (out.length >= limit) break;
      const id = req.headers[REQUEST_ID_HEADER];
      out.push({
        method: req.method ?? "",
        path: (req.url ?? "").split("?", 1)[0]!.slice(0, 200),
        ...(isRequestId(id) ? { requestId: id } : {}),
        ...(req.headers["content-type"] ? { contentType: String(req.headers["content-type"]).slice(0, 100) } : {}),
        ...(req.socket?.remoteAddress ? { remoteAddress: req.socket.remoteAddress } : {}),
        ms: Math.round(now - started),
      });
    }
    return out;
  }
}
