// Sending a fuzzed request exactly as generated: HTTP/1.1 written byte for byte on a socket (no
// client library to refuse a bad header, normalise a path or fix a Content-Length), HTTP/2 through
// node:http2 (which frames correctly but sends whatever headers and body it is given). The answer
// is kept whole: status, headers, trailers, body bytes.
import http2 from "node:http2";
import net from "node:net";

export interface WireRequest {
  h2: boolean;
  method: string;
  /** The request target as sent (never normalised). */
  path: string;
  headers: [string, string][];
  body: Uint8Array;
  /** HTTP/1.1: the client stops after this many body bytes and closes its side (a truncated upload). */
  cutAfter?: number;
  /** The answer may be a stream that never ends (Health.Watch): stop reading after a pause. */
  mayStream: boolean;
}

export interface WireResponse {
  /** Undefined: no answer at all. */
  status?: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** Why the answer is missing or incomplete (a connection error after a whole answer is not kept). */
  error?: string;
  /** The client stopped reading a stream that was still open. */
  cutByClient?: boolean;
  /** The client library refused to send the request (HTTP/2 header rules): nothing reached the server. */
  refused?: string;
}

/** A unary answer that takes longer than this is a hang (the server must answer or time out). */
export const ANSWER_TIMEOUT_MS = 20_000;
/** A streaming answer idle this long is cut by the client and judged on what arrived. */
const STREAM_IDLE_MS = 200;

/**
 * HTTP/1.1: headers that promise more body than there is (a larger Content-Length, or chunked
 * framing the body may not follow) would leave the server waiting for the rest, as it should. The
 * client then closes its side after the body, as a client that gave up would.
 */
export function withImpliedCut(req: WireRequest): WireRequest {
  if (req.h2 || req.cutAfter !== undefined) return req;
  const promisesMore = req.headers.some(([k, v]) => {
    const name = k.toLowerCase();
    return name === "transfer-encoding" || (name === "content-length" && /^\s*\d+\s*$/.test(v) && Number(v) > req.body.length);
  });
  return promisesMore ? { ...req, cutAfter: req.body.length } : req;
}

export function send(port: number, req: WireRequest): Promise<WireResponse> {
  return req.h2 ? sendH2(port, req) : sendH1(port, req);
}

function sendH1(port: number, req: WireRequest): Promise<WireResponse> {
  const names = new Set(req.headers.map(([k]) => k.toLowerCase()));
  const lines = [`${req.method} ${req.path} HTTP/1.1`, `host: 127.0.0.1:${port}`, "connection: close"];
  for (const [k, v] of req.headers) lines.push(`${k}: ${v}`);
  if (!names.has("content-length") && !names.has("transfer-encoding") && (req.body.length > 0 || req.method !== "GET")) {
    lines.push(`content-length: ${req.body.length}`);
  }
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "utf8");
  const body = req.cutAfter === undefined ? req.body : req.body.subarray(0, req.cutAfter);

  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let cutByClient = false;
    let timer: NodeJS.Timeout | undefined;
    const socket = net.connect(port, "127.0.0.1");
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (chunks.length > 0 && req.mayStream) cutByClient = true;
        else error = `no complete answer in ${ms} ms`;
        socket.destroy();
      }, ms);
    };
    arm(ANSWER_TIMEOUT_MS);
    socket.on("data", (c: Buffer) => {
      chunks.push(c);
      if (req.mayStream) arm(STREAM_IDLE_MS);
    });
    socket.on("error", (e) => (error ??= e.message));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ ...parseH1(Buffer.concat(chunks), req.method, error), ...(cutByClient ? { cutByClient } : {}) });
    });
    socket.write(head);
    if (body.length > 0) socket.write(body);
    if (req.cutAfter !== undefined) socket.end();
  });
}

/**
 * The first answer in what an HTTP/1.1 connection has received so far, once it is whole (head and
 * body), else undefined: for tests that read the answer while their request is still being sent.
 */
export function completeAnswer(received: Buffer): { status: number; headers: Record<string, string>; body: string } | undefined {
  const res = parseH1(received, "GET", undefined);
  if (res.error !== undefined || res.status === undefined) return undefined;
  return { status: res.status, headers: res.headers, body: res.body.toString("utf8") };
}

/** Parses what came back on an HTTP/1.1 connection (1xx answers skipped, chunked bodies decoded). */
function parseH1(data: Buffer, method: string, error: string | undefined): WireResponse {
  let rest = data;
  for (;;) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0)
      return { headers: {}, trailers: {}, body: Buffer.alloc(0), error: error ?? (data.length ? "incomplete answer" : "connection closed without an answer") };
    const [statusLine, ...headerLines] = rest.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? NaN);
    if (!Number.isFinite(status)) return { headers: {}, trailers: {}, body: Buffer.alloc(0), error: `not an HTTP answer: ${JSON.stringify(statusLine)}` };
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.subarray(end + 4);
    if (status >= 100 && status < 200) continue;
    if (method === "HEAD" || status === 204 || status === 304) return { status, headers, trailers: {}, body: Buffer.alloc(0) };
    if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const { body, trailers, complete } = dechunk(rest);
      return { status, headers, trailers, body, ...(complete ? {} : { error: error ?? "chunked body cut short" }) };
    }
    const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
    const body = length === undefined ? rest : rest.subarray(0, length);
    const short = length !== undefined && rest.length < length;
    return { status, headers, trailers: {}, body, ...(short ? { error: error ?? `body cut short: ${rest.length} of ${length} bytes` } : {}) };
  }
}

function dechunk(data: Buffer): { body: Buffer; trailers: Record<string, string>; complete: boolean } {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf("\r\n", at);
    if (eol < 0) return { body: Buffer.concat(parts), trailers: {}, complete: false };
    const size = parseInt(data.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size)) return { body: Buffer.concat(parts), trailers: {}, complete: false };
    at = eol + 2;
    if (size === 0) {
      const trailers: Record<string, string> = {};
      for (const line of data.subarray(at).toString("latin1").split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      return { body: Buffer.concat(parts), trailers, complete: true };
    }
    if (at + size > data.length) {
      parts.push(data.subarray(at));
      return { body: Buffer.concat(parts), trailers: {}, complete: false };
    }
    parts.push(data.subarray(at, at + size));
    at += size + 2;
  }
}

function sendH2(port: number, req: WireRequest): Promise<WireResponse> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let sessionError: string | undefined;
    session.on("error", (e: Error) => (sessionError ??= e.message));
    const headers: http2.OutgoingHttpHeaders = { ":method": req.method, ":path": req.path };
    for (const [k, v] of req.headers) {
      const name = k.toLowerCase();
      const prior = headers[name];
      headers[name] = prior === undefined ? v : [...(Array.isArray(prior) ? prior : [String(prior)]), v];
    }
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (e) {
      session.destroy();
      resolve({ headers: {}, trailers: {}, body: Buffer.alloc(0), refused: e instanceof Error ? e.message : String(e) });
      return;
    }
    let status: number | undefined;
    const resHeaders: Record<string, string> = {};
    const trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let cutByClient = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (status !== undefined && req.mayStream) cutByClient = true;
        else error = `no complete answer in ${ms} ms`;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }, ms);
    };
    arm(ANSWER_TIMEOUT_MS);
    const copy = (from: http2.IncomingHttpHeaders, to: Record<string, string>) => {
      for (const [k, v] of Object.entries(from)) if (v !== undefined && !k.startsWith(":")) to[k] = Array.isArray(v) ? v.join(", ") : String(v);
    };
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      copy(h, resHeaders);
      if (req.mayStream) arm(STREAM_IDLE_MS);
    });
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => copy(t, trailers));
    stream.on("data", (c: Buffer) => {
      chunks.push(c);
      if (req.mayStream) arm(STREAM_IDLE_MS);
    });
    let ended = false;
    stream.on("end", () => {
      // The answer is whole. The server may not have read all of the body (a 417 before it, say):
      // stop sending it rather than wait on flow control forever.
      ended = true;
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.on("error", (e: Error) => {
      if (!ended) error ??= e.message;
    });
    stream.on("close", () => {
      clearTimeout(timer);
      const reset =
        !ended && stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR && !cutByClient
          ? `stream reset (code ${stream.rstCode})`
          : undefined;
      session.close();
      const problem = ended && !cutByClient && error === undefined ? undefined : (error ?? reset ?? sessionError);
      resolve({
        status,
        headers: resHeaders,
        trailers,
        body: Buffer.concat(chunks),
        ...(problem ? { error: problem } : {}),
        ...(cutByClient ? { cutByClient } : {}),
      });
    });
    stream.end(Buffer.from(req.body));
  });
}

/** The request as printable text: method, path, headers, body with every non-printable byte escaped. */
export function renderRequest(req: WireRequest, maxBody = 1500): string {
  const lines = [`${req.h2 ? "HTTP/2" : "HTTP/1.1"} ${req.method} ${escapeText(req.path, 600)}`];
  for (const [k, v] of req.headers) lines.push(`  ${escapeText(k, 100)}: ${escapeText(v, 300)}`);
  const cut = req.cutAfter === undefined ? "" : ` (connection cut after ${req.cutAfter} bytes)`;
  lines.push(`  body (${req.body.length} bytes)${cut}: ${escapeBytes(req.body, maxBody)}`);
  return lines.join("\n");
}

export function renderResponse(res: WireResponse, maxBody = 600): string {
  if (res.refused) return `(not sent: ${res.refused})`;
  const lines = [res.status === undefined ? `no answer${res.error ? `: ${res.error}` : ""}` : `${res.status}${res.error ? ` (${res.error})` : ""}`];
  const h = Object.entries(res.headers).filter(([k]) => /^(content-type|grpc-|x-request-id|location|range)/.test(k));
  for (const [k, v] of h) lines.push(`  ${k}: ${escapeText(v, 200)}`);
  for (const [k, v] of Object.entries(res.trailers)) lines.push(`  (trailer) ${k}: ${escapeText(v, 200)}`);
  if (res.body.length) lines.push(`  body (${res.body.length} bytes): ${escapeBytes(res.body, maxBody)}`);
  return lines.join("\n");
}

/** Printable ASCII as is, everything else escaped (\n, \xNN, \u{NNNN}). */
export function escapeText(text: string, max: number): string {
  let out = "";
  for (const ch of text) {
    if (out.length >= max) return `${out}… (${text.length} characters)`;
    const code = ch.codePointAt(0)!;
    if (code >= 0x20 && code < 0x7f && ch !== "\\") out += ch;
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x100) out += `\\x${code.toString(16).padStart(2, "0")}`;
    else out += `\\u{${code.toString(16)}}`;
  }
  return out;
}

export function escapeBytes(bytes: Uint8Array, max: number): string {
  let out = "";
  for (let k = 0; k < bytes.length; k++) {
    if (out.length >= max) return `${out}… (${bytes.length} bytes)`;
    const b = bytes[k]!;
    if (b >= 0x20 && b < 0x7f && b !== 0x5c) out += String.fromCharCode(b);
    else if (b === 0x5c) out += "\\\\";
    else if (b === 0x0a) out += "\\n";
    else out += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return out;
}
