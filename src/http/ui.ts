// The web UI (ui/, built by `npm run build` into dist/ui/) on the service's own ports: same origin
// as the API, so no CORS. Reached only for what nothing else answered (the registry API, the
// token endpoint, Connect, REST, probes and metrics come first), and it never answers under their
// prefixes: a GET there keeps today's JSON 404. Hashed assets are cached for a year; index.html,
// which names them, is revalidated on every load. Unknown GETs that accept HTML get index.html
// (the app's deep links: a reload keeps the place).
import { readFileSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { extname, join } from "node:path";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/**
 * What the app needs and nothing more: its own scripts, styles and API (same origin), images from
 * itself or inline (data:). No inline script or style, no frames, no plugins, no other origin.
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const SECURITY_HEADERS = {
  "content-security-policy": UI_CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
};

const TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

/** Paths the UI never answers: every other surface of the service, present or future. */
const RESERVED = ["/v1/", "/v2", "/auth/", "/healthz", "/readyz", "/metrics", "/assets/"];

/** A Connect/gRPC path (`/artifact.v1.TagService/ListTags`): its first segment has a dot. */
const RPC_PATH = /^\/[^/]*\.[^/]*\//;

/** An asset file name as Vite writes it under assets/: no directory, no dot-dot. */
const ASSET = /^\/assets\/[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.[a-z0-9]+$/;

export interface UiHandler {
  /** True when it answered (a UI path); false leaves the request to the caller's 404. */
  (req: Request, res: Response): boolean;
}

export function uiHandler(dir: string): UiHandler {
  // index.html is small and changes only with a build: read once, re-read when its file changes.
  let index: { mtimeMs: number; body: Buffer } | undefined;
  const readIndex = (): Buffer | undefined => {
    const file = join(dir, "index.html");
    const stats = statSync(file, { throwIfNoEntry: false });
    if (!stats) return undefined;
    if (index?.mtimeMs !== stats.mtimeMs) index = { mtimeMs: stats.mtimeMs, body: readFileSync(file) };
    return index.body;
  };

  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "/").split("?", 1)[0]!;
    if (path.startsWith("/assets/")) return serveAsset(dir, path, req, res);
    if (RESERVED.some((prefix) => path === prefix || path.startsWith(prefix)) || RPC_PATH.test(path)) return false;
    if (!acceptsHtml(req.headers.accept)) return false;
    const body = readIndex();
    if (!body) {
      const message =
        "<!doctype html><meta charset=utf-8><title>Web UI not built</title>" +
        "<h1>The web UI is not built</h1><p>Run <code>npm run build</code> (or <code>npm start</code>, which builds it) and reload this page. The API, <code>/v2/</code> and the probes work without it.</p>";
      res.writeHead(404, { ...SECURITY_HEADERS, "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      end(req, res, message);
      return true;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "content-length": String(body.length),
      // Always revalidated: a new build's index.html names new asset hashes.
      "cache-control": "no-cache",
    });
    end(req, res, body);
    return true;
  };
}

function serveAsset(dir: string, path: string, req: Request, res: Response): boolean {
  const type = TYPES[extname(path)];
  const file = ASSET.test(path) && type ? join(dir, path) : undefined;
  const stats = file ? statSync(file, { throwIfNoEntry: false }) : undefined;
  if (!file || !stats?.isFile()) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" });
    end(req, res, `no such asset: ${path.slice(0, 200)}\n`);
    return true;
  }
  // The build writes .br and .gz beside each script and style sheet.
  const accepted = acceptedEncodings(req.headers["accept-encoding"]);
  const encoding = (["br", "gzip"] as const).find((e) => accepted.has(e) && statSync(`${file}.${ENCODED[e]}`, { throwIfNoEntry: false })?.isFile());
  const sent = encoding ? `${file}.${ENCODED[encoding]}` : file;
  const body = req.method === "HEAD" ? "" : readFileSync(sent);
  res.writeHead(200, {
    "content-type": type!,
    "content-length": String(encoding ? statSync(sent).size : stats.size),
    ...(encoding ? { "content-encoding": encoding } : {}),
    vary: "accept-encoding",
    // The name carries the content's hash: a new build writes a new name.
    "cache-control": "public, max-age=31536000, immutable",
    "x-content-type-options": "nosniff",
  });
  end(req, res, body);
  return true;
}

const ENCODED = { br: "br", gzip: "gz" } as const;

/** The content codings a client accepts (q=0 refuses one). */
function acceptedEncodings(header: string | string[] | undefined): Set<string> {
  const value = Array.isArray(header) ? header.join(",") : (header ?? "");
  const accepted = new Set<string>();
  for (const part of value.toLowerCase().split(",")) {
    const [coding, ...params] = part.split(";").map((s) => s.trim());
    if (coding && !params.some((p) => /^q=0(\.0*)?$/.test(p))) accepted.add(coding);
  }
  return accepted;
}

/** The body, or none for HEAD (whose headers still say what GET would send). */
function end(req: Request, res: Response, body: string | Buffer): void {
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/** True when the client asks for an HTML page (a browser navigating), not for JSON or anything else. */
function acceptsHtml(accept: string | string[] | undefined): boolean {
  const value = Array.isArray(accept) ? accept.join(",") : (accept ?? "");
  return value
    .toLowerCase()
    .split(",")
    .some((part) => {
      const [type, ...params] = part.split(";").map((s) => s.trim());
      return type === "text/html" && !params.some((p) => /^q=0(\.0*)?$/.test(p));
    });
}
