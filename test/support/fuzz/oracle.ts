// The oracle: what a fuzzed request's answer may be. Every answer is below 500, or exactly 503/504
// where that is correct: the service says an upstream registry failed (the playground's REMOTE
// registry points at a port nobody listens on), or the client's own deadline passed (504 /
// DEADLINE_EXCEEDED, only when the request carried a deadline). Status codes inside a protocol
// count as much as HTTP statuses: gRPC and gRPC-Web answer HTTP 200 with grpc-status in trailers,
// Connect streams with an end-of-stream message, REST streams with a last {"error"} line; none may
// be INTERNAL, UNKNOWN or DATA_LOSS. An error the server logs is a failure too, whatever went back.
import { Code } from "@connectrpc/connect";
import { hasDeadlineHeader } from "./framing.js";
import type { OciCase } from "./oci.js";
import type { RestCase, RpcCase } from "./rpc.js";
import type { LogLine } from "./watch.js";
import type { WireRequest, WireResponse } from "./wire.js";

export type FuzzCase = RpcCase | RestCase | OciCase;

/** The protocol-level outcome found in an answer. */
export interface Outcome {
  /** Connect code in snake case ("invalid_argument"), or an OCI error code ("NAME_INVALID"). */
  code?: string;
  message?: string;
}

const FAULTS = new Set(["internal", "unknown", "data_loss", "UNKNOWN"]);

/**
 * `outcome`: the code and message, when the caller knows them better than the answer shows (a
 * HEAD answer has no body: the caller asks again with GET).
 */
export function judge(req: WireRequest, res: WireResponse, serverErrors: LogLine[], known?: Outcome): string | undefined {
  if (res.refused) return undefined;
  const problems: string[] = [];
  if (serverErrors.length > 0) problems.push(`the server logged ${serverErrors.length === 1 ? "an error" : `${serverErrors.length} errors`}`);
  // A malformed HTTP/2 request is a stream error of type PROTOCOL_ERROR (RFC 9113 §8.1.1, §5.4.2:
  // RST_STREAM), whenever it is detected: a Content-Length the DATA frames contradict is known
  // only at the END_STREAM, which may come after an early answer (a 401 before the body was
  // read), and node:http2's client then drops the end of that answer for the reset right behind
  // it. (Node 24's nghttp2 ends the client's own session, code 2, when made to send a body its
  // Content-Length contradicts.) Such a request may get no answer, or an answer cut short.
  const malformed = req.h2 && /PROTOCOL_ERROR|Session closed with error code 2\b/.test(res.error ?? "") && malformedForHttp2(req);
  if (res.status === undefined) {
    // A request the client cut short may get no answer, and so may a malformed HTTP/2 request; any other must get one.
    // A header block past the server's SETTINGS_MAX_HEADER_LIST_SIZE is refused unprocessed (HTTP/2's 431).
    const tooLarge = req.h2 && /REFUSED_STREAM/.test(res.error ?? "") && headerListSize(req) > 16 * 1024;
    if (req.cutAfter === undefined && !res.cutByClient && !malformed && !tooLarge) problems.push(`no answer (${res.error ?? "connection closed"})`);
    return problems.length ? problems.join("; ") : undefined;
  }
  if (res.error !== undefined && req.cutAfter === undefined && !res.cutByClient && !malformed) problems.push(`the answer is incomplete (${res.error})`);
  const outcome = known ?? outcomeOf(res);
  const upstream = /\bupstream\b/.test(outcome.message ?? "");
  const deadline = hasDeadlineHeader(req.headers);
  if (res.status >= 500) {
    // 501 is the Connect protocol's fixed status for UNIMPLEMENTED (e.g. an unsupported compression,
    // which the Connect spec says must be answered so): a refusal, not a fault.
    const correct =
      (res.status === 503 && upstream) ||
      (res.status === 504 && (upstream || deadline)) ||
      (res.status === 502 && upstream && outcome.code === "UNKNOWN") ||
      (res.status === 501 && outcome.code === "unimplemented") ||
      // Connect's answer to a bidi stream over HTTP/1.1, which cannot carry one: the client's HTTP version is refused.
      (res.status === 505 && !req.h2);
    if (!correct) problems.push(`HTTP ${res.status}`);
  }
  if (outcome.code !== undefined) {
    if (FAULTS.has(outcome.code) && !(upstream && res.status === 502)) problems.push(`code ${outcome.code}`);
    if (outcome.code === "unavailable" && !upstream) problems.push("UNAVAILABLE without an upstream to blame");
    if (outcome.code === "deadline_exceeded" && !deadline && !upstream) problems.push("DEADLINE_EXCEEDED without a deadline");
  }
  if (!problems.length) return undefined;
  return `${problems.join("; ")}${outcome.message !== undefined ? ` — ${JSON.stringify(outcome.message.slice(0, 300))}` : ""}`;
}

/**
 * What makes an HTTP/2 request malformed (RFC 9113 §8.1.1, §8.2.1, §8.2.2): a Content-Length that
 * is not the body's length, a field value with NUL, CR or LF or with whitespace at either end, a
 * connection-specific field, TE other than "trailers", a :path with control characters or spaces.
 * node:http2 sends each character of a value as its low byte, so "\u{dc00}" goes out as NUL.
 */
function malformedForHttp2(req: WireRequest): boolean {
  const lowBytes = (text: string) => [...text].flatMap((ch) => [...Array(ch.length).keys()].map((i) => ch.charCodeAt(i) & 0xff));
  if (lowBytes(req.path).some((b) => b <= 0x20 || b === 0x7f)) return true;
  return req.headers.some(([k, v]) => {
    const name = k.toLowerCase();
    const bytes = lowBytes(v);
    const edge = (b: number | undefined) => b === 0x20 || b === 0x09;
    return (
      (name === "content-length" && v !== String(req.body.length)) ||
      bytes.some((b) => b === 0 || b === 0x0a || b === 0x0d) ||
      edge(bytes[0]) ||
      edge(bytes[bytes.length - 1]) ||
      ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"].includes(name) ||
      (name === "te" && v !== "trailers")
    );
  });
}

/** RFC 9113 §6.5.2: the size of a header list is its names and values plus 32 per field. */
function headerListSize(req: WireRequest): number {
  const fields: [string, string][] = [[":path", req.path], [":method", req.method], ...req.headers];
  return fields.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 32, 0);
}

/** The code and message an answer carries, by its content type. */
export function outcomeOf(res: WireResponse): Outcome {
  const type = (res.headers["content-type"] ?? "").toLowerCase();
  const grpcStatus = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
  if (type.startsWith("application/grpc-web")) {
    const fromBody = grpcWebTrailer(res.body);
    const status = grpcStatus ?? fromBody["grpc-status"];
    return status === undefined ? {} : grpcOutcome(status, res.headers["grpc-message"] ?? fromBody["grpc-message"]);
  }
  if (type.startsWith("application/grpc")) {
    return grpcStatus === undefined ? {} : grpcOutcome(grpcStatus, res.trailers["grpc-message"] ?? res.headers["grpc-message"]);
  }
  if (type.startsWith("application/connect+")) {
    const end = lastEnvelope(res.body, 0x02);
    if (end === undefined) return {};
    const parsed = parseJson(end) as { error?: { code?: string; message?: string } } | undefined;
    return parsed?.error ? { code: parsed.error.code, message: parsed.error.message } : {};
  }
  if (type.startsWith("application/x-ndjson")) {
    const lines = res.body.toString("utf8").trim().split("\n");
    const last = parseJson(Buffer.from(lines[lines.length - 1] ?? "")) as { error?: { code?: string; message?: string } } | undefined;
    return last?.error ? { code: last.error.code, message: last.error.message } : {};
  }
  if (type.startsWith("application/json") && res.body.length > 0) {
    const parsed = parseJson(res.body) as { code?: unknown; message?: unknown; errors?: { code?: unknown; message?: unknown }[] } | undefined;
    if (parsed && typeof parsed.code === "string") return { code: parsed.code, message: typeof parsed.message === "string" ? parsed.message : undefined };
    const first = Array.isArray(parsed?.errors) ? parsed.errors[0] : undefined;
    if (first && typeof first.code === "string") return { code: first.code, message: typeof first.message === "string" ? first.message : undefined };
  }
  return {};
}

function grpcOutcome(status: string, message: string | undefined): Outcome {
  const n = Number(status);
  const name: string | undefined = Code[n];
  const code = n === 0 ? "ok" : name ? name.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase() : `grpc-status ${status}`;
  let text = message;
  try {
    text = message === undefined ? undefined : decodeURIComponent(message);
  } catch {
    // keep it as sent
  }
  return { code, message: text };
}

/** The payload of the last envelope that has `flag` set. */
function lastEnvelope(body: Buffer, flag: number): Buffer | undefined {
  let found: Buffer | undefined;
  for (let at = 0; at + 5 <= body.length;) {
    const length = body.readUInt32BE(at + 1);
    const end = at + 5 + length;
    if (end > body.length) break;
    if ((body[at]! & flag) === flag) found = body.subarray(at + 5, end);
    at = end;
  }
  return found;
}

function grpcWebTrailer(body: Buffer): Record<string, string> {
  const payload = lastEnvelope(body, 0x80);
  const out: Record<string, string> = {};
  for (const line of payload?.toString("utf8").split("\r\n") ?? []) {
    const colon = line.indexOf(":");
    if (colon > 0) out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

function parseJson(bytes: Buffer): unknown {
  try {
    return JSON.parse(bytes.toString("utf8")) as unknown;
  } catch {
    return undefined;
  }
}
