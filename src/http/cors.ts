// CORS, so browser frontends on another origin can call Connect, gRPC-Web and REST paths.
// Nothing is allowed until CORS_ALLOWED_ORIGINS names origins. A refused origin gets no
// Access-Control-* header at all: the browser then blocks the response, which is the point.
//
// The header lists come from connect-es's `cors` constants (what its protocols send and what
// browsers must be allowed to read), plus our own: x-request-id both ways, Authorization (a page
// sends its API token as a Bearer header) and WWW-Authenticate (so it can tell "sign in" from
// "forbidden"), and the methods the REST paths use. Preflights are answered here, before routing, because the REST handler
// answers OPTIONS with 405 and Connect does not know OPTIONS at all.
import type http from "node:http";
import type http2 from "node:http2";
import { cors as connectCors } from "@connectrpc/connect";
import { REQUEST_ID_HEADER } from "../request-id.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

export interface CorsOptions {
  /** Exact origins (scheme://host[:port]) or ["*"] for any. Empty: CORS is off. */
  allowedOrigins: readonly string[];
  maxAgeSeconds: number;
}

const allowedMethods = [...new Set([...connectCors.allowedMethods, "GET", "POST", "PUT", "DELETE"])];
const allowedHeaders = [...connectCors.allowedHeaders, REQUEST_ID_HEADER, "authorization"];
const exposedHeaders = [...connectCors.exposedHeaders, REQUEST_ID_HEADER, "www-authenticate"];

/**
 * Returns a function to call first for every request it should cover: it answers preflights
 * (returns true: nothing else to do) and adds the CORS response headers to actual requests
 * from allowed origins (returns false: route the request as usual).
 */
export function corsHandler(options: CorsOptions): (req: Request, res: Response) => boolean {
  const any = options.allowedOrigins.includes("*");
  const origins = new Set(options.allowedOrigins);
  if (!any && origins.size === 0) return () => false;
  const allowMethods = allowedMethods.join(", ");
  const allowHeaders = allowedHeaders.join(", ");
  const exposeHeaders = exposedHeaders.join(", ");
  const maxAge = String(options.maxAgeSeconds);

  return (req, res) => {
    const origin = req.headers.origin;
    const preflight = req.method === "OPTIONS" && req.headers["access-control-request-method"] !== undefined;
    // The answer depends on Origin (and for preflights on what they ask): caches must key on it.
    if (!any) res.setHeader("vary", preflight ? "Origin, Access-Control-Request-Method, Access-Control-Request-Headers" : "Origin");
    const allowed = origin !== undefined && (any || origins.has(origin));
    if (preflight) {
      const headers: Record<string, string> = { "content-length": "0" };
      if (allowed) {
        // "*" is sent as is: a Bearer header the page sets is not a browser credential (cookies,
        // TLS client certificates), so the origin need not be echoed.
        headers["access-control-allow-origin"] = any ? "*" : origin;
        headers["access-control-allow-methods"] = allowMethods;
        headers["access-control-allow-headers"] = allowHeaders;
        headers["access-control-max-age"] = maxAge;
      }
      res.writeHead(204, headers);
      res.end();
      return true;
    }
    if (allowed) {
      res.setHeader("access-control-allow-origin", any ? "*" : origin);
      res.setHeader("access-control-expose-headers", exposeHeaders);
    }
    return false;
  };
}
