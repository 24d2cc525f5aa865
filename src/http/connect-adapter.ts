// The Connect router as a Node request handler: connect-node's connectNodeAdapter, plus three
// repairs. connect-es reports three client mistakes as INTERNAL (HTTP 500 on the Connect
// protocol): a request body that is not valid protobuf binary ("parse binary: …"), an envelope
// flagged compressed when the request names no compression ("received compressed envelope, but
// do not know how to decompress") and compressed bytes zlib cannot finish ("decompression
// failed": a gzip stream cut short). We turn exactly those errors into INVALID_ARGUMENT, for every
// protocol, on their way out. (JSON bodies already get INVALID_ARGUMENT.) A gRPC error whose
// message connect-es cannot put in a trailer gets an answer (answerUnencodable). And a client
// deadline too far for a Node timer is clamped before connect-es arms one (see MAX_DEADLINE_MS).
// A GET whose base64 message is not base64 is refused before connect-es (which answers 500).
// Its bare 405 gets the Allow header HTTP requires, and its refusal of an unknown JSON enum name
// gets the valid names (./enum-values.ts), in every protocol's error form.
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter, ConnectRouterOptions } from "@connectrpc/connect";
import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { clampDeadlineHeaders } from "../api/interceptors/deadline.js";
import { callContext } from "./call-context.js";
import { withEnumValues } from "./enum-values.js";

type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = ServerResponse | Http2ServerResponse;

export interface ConnectHandlerOptions extends Partial<ConnectRouterOptions> {
  routes: (router: ConnectRouter) => void;
  fallback: (req: NodeRequest, res: NodeResponse) => void;
  onHandlerFailure?: (procedure: string, reason: unknown) => void;
  /**
   * Procedures ("/pkg.Service/Method") whose responses are never compressed, whatever the
   * client accepts: blob bytes are compressed already, and gzip on the event-loop thread
   * brought a 512 MiB GetBlob from ~350 MB/s down to ~20 MB/s.
   */
  uncompressedProcedures?: ReadonlySet<string>;
}

export function connectHandler(options: ConnectHandlerOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  options.routes(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return (req, res) => {
    const handler = handlers.get((req.url ?? "").split("?", 1)[0]!);
    if (!handler) return options.fallback(req, res);
    if (req.method === "GET" && refuseBadGetMessage(req, res)) return;
    const uReq = universalRequestFromNodeRequest(req, res, undefined, callContext(req));
    clampDeadlineHeaders(uReq.header);
    if (req.method === "POST" && isUnaryJson(uReq.header) && isStream(uReq.body)) uReq.body = utf8Checked(uReq.body);
    if (options.uncompressedProcedures?.has(handler.requestPath)) {
      for (const name of ACCEPT_ENCODING_HEADERS) uReq.header.delete(name);
    }
    handler(uReq)
      .then(async (uRes) => universalResponseToNodeResponse(await repairParseError(withAllow(uRes, handler.allowedMethods), handler.service), res))
      .catch((reason: unknown) => {
        if (reason instanceof URIError && answerUnencodable(req, res)) return;
        // Aborted: the client went away mid-response; nothing to report.
        if (ConnectError.from(reason).code !== Code.Aborted) {
          options.onHandlerFailure?.(`/${handler.service.typeName}/${handler.method.name}`, reason);
        }
      });
  };
}

/**
 * A Connect GET's `message` with `base64=1` that is not base64: connect-es decodes it outside its
 * error handling and answers 500 "internal error". It is the client's mistake, refused here as
 * Connect refuses a malformed body (400 invalid_argument). Both alphabets, padding optional.
 */
function refuseBadGetMessage(req: NodeRequest, res: NodeResponse): boolean {
  const url = req.url ?? "";
  const at = url.indexOf("?");
  if (at < 0) return false;
  const query = new URLSearchParams(url.slice(at + 1));
  if (query.get("base64") !== "1") return false;
  const message = query.get("message") ?? "";
  const digits = message.replace(/={1,2}$/, "");
  if (/^[A-Za-z0-9+/_-]*$/.test(digits) && digits.length % 4 !== 1) return false;
  const body = JSON.stringify({ code: "invalid_argument", message: "the message query parameter is not valid base64 (base64=1)" });
  res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
  return true;
}

const isStream = (body: unknown): body is AsyncIterable<Uint8Array> => typeof body === "object" && body !== null && Symbol.asyncIterator in body;

/** A Connect unary JSON request sent as is (no Content-Encoding). */
function isUnaryJson(header: Headers): boolean {
  const encoding = header.get("content-encoding");
  return /^application\/json(;|$)/i.test(header.get("content-type") ?? "") && (encoding === null || encoding === "identity");
}

/**
 * The body, refused as INVALID_ARGUMENT unless it is valid UTF-8: connect-es decodes JSON with a
 * lenient decoder, so `"a\xffb"` was stored as "a\uFFFDb" where every other protocol (and REST)
 * refuses it (found by a probe). Checked as it streams.
 */
async function* utf8Checked(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const invalid = () => new ConnectError("the request body is not valid UTF-8", Code.InvalidArgument);
  for await (const chunk of body) {
    try {
      decoder.decode(chunk, { stream: true });
    } catch {
      throw invalid();
    }
    yield chunk;
  }
  try {
    decoder.decode();
  } catch {
    throw invalid();
  }
}

/** connect-es answers a method the procedure does not take with a bare 405; RFC 9110 wants an Allow header. */
function withAllow(res: UniversalServerResponse, methods: string[]): UniversalServerResponse {
  if (res.status !== 405) return res;
  const header = new Headers(res.header);
  header.set("allow", methods.join(", "));
  return { ...res, header };
}

/**
 * connect-es percent-encodes an error's message into grpc-message with encodeURIComponent, which
 * throws on a lone surrogate; the call then ended with no answer at all (found by the bad-input
 * suite). Such a message quotes what a client sent as JSON to gRPC or gRPC-Web ("key \"\ud800\" is
 * unknown"), and only the request parser quotes client text that way (values are checked to be
 * well-formed Unicode before our code sees them), so the answer is INVALID_ARGUMENT, trailers-only.
 */
function answerUnencodable(req: NodeRequest, res: NodeResponse): boolean {
  const type = req.headers["content-type"] ?? "";
  if (res.headersSent || !/^application\/grpc(-web)?([+;]|$)/.test(type)) return false;
  res.writeHead(200, {
    "content-type": type.split(";")[0]!,
    "grpc-status": String(Code.InvalidArgument),
    "grpc-message": encodeURIComponent("invalid request; its error message quotes text that is not well-formed Unicode"),
  });
  res.end();
  return true;
}

const CLIENT_MISTAKE = /^(parse binary|received compressed envelope, but do not know how to decompress|decompression failed)/;
const ACCEPT_ENCODING_HEADERS = ["connect-accept-encoding", "grpc-accept-encoding", "accept-encoding"];

async function repairParseError(res: UniversalServerResponse, service: DescService): Promise<UniversalServerResponse> {
  const contentType = res.header?.get("content-type") ?? "";
  if (!res.body) return res;
  // The status line goes out before the body, so this one error body is read up front.
  if ((res.status === 500 || res.status === 400) && contentType.startsWith("application/json")) return rewriteConnectUnary(res, res.body, service);
  if (contentType.startsWith("application/grpc-web")) return { ...res, body: rewriteFrames(res.body, 0x80, (p) => grpcTrailerFix(p, service)) };
  if (contentType.startsWith("application/grpc")) return { ...res, body: fixGrpcTrailerAfter(res, res.body, service) };
  if (contentType.startsWith("application/connect+")) return { ...res, body: rewriteFrames(res.body, 0x02, (p) => connectEndStreamFix(p, service)) };
  return res;
}

async function rewriteConnectUnary(res: UniversalServerResponse, body: AsyncIterable<Uint8Array>, service: DescService): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  let bytes = Buffer.concat(chunks);
  let status = res.status;
  try {
    const error = JSON.parse(bytes.toString("utf8")) as ConnectErrorJson;
    const fixed = repairedError(error, service);
    if (fixed) {
      if (error.code === "internal") {
        status = 400;
        const message = fixed.message.startsWith("parse binary") ? `request is not a valid protobuf message: ${fixed.message}` : fixed.message;
        bytes = Buffer.from(JSON.stringify({ code: fixed.code, message }));
      } else {
        bytes = Buffer.from(JSON.stringify({ ...error, ...fixed }));
      }
      res.header?.delete("content-length");
    }
  } catch {
    // not an error body we know; pass it on untouched
  }
  return {
    ...res,
    status,
    body: (async function* () {
      yield bytes;
    })(),
  };
}

function grpcStatusIsParseError(status: string | null, message: string | null): boolean {
  return status === String(Code.Internal) && CLIENT_MISTAKE.test(decodeURIComponent(message ?? ""));
}

async function* fixGrpcTrailerAfter(res: UniversalServerResponse, body: AsyncIterable<Uint8Array>, service: DescService) {
  yield* body;
  // The trailer is filled while the body is read, so look once it is done.
  for (const headers of [res.trailer, res.header]) {
    if (headers && grpcStatusIsParseError(headers.get("grpc-status"), headers.get("grpc-message"))) {
      headers.set("grpc-status", String(Code.InvalidArgument));
    }
    const hinted = hintedGrpcMessage(headers?.get("grpc-message"), service);
    if (hinted !== undefined) headers!.set("grpc-message", hinted);
  }
}

/** Rewrites the payload of frames that carry `flag` (gRPC-Web trailers, Connect end-stream). */
async function* rewriteFrames(body: AsyncIterable<Uint8Array>, flag: number, fix: (payload: string) => string | undefined) {
  for await (const chunk of body) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: Buffer[] = [];
    let offset = 0;
    let changed = false;
    while (offset + 5 <= buf.length) {
      const length = buf.readUInt32BE(offset + 1);
      const end = offset + 5 + length;
      if (end > buf.length) break;
      const payload = buf.subarray(offset + 5, end);
      const fixed = (buf[offset]! & flag) === flag ? fix(payload.toString("utf8")) : undefined;
      if (fixed === undefined) {
        out.push(buf.subarray(offset, end));
      } else {
        const data = Buffer.from(fixed, "utf8");
        const head = Buffer.alloc(5);
        head[0] = buf[offset]!;
        head.writeUInt32BE(data.length, 1);
        out.push(head, data);
        changed = true;
      }
      offset = end;
    }
    if (!changed) {
      yield chunk;
    } else {
      out.push(buf.subarray(offset));
      yield Buffer.concat(out);
    }
  }
}

function grpcTrailerFix(payload: string, service: DescService): string | undefined {
  const status = /grpc-status:\s*(\d+)/i.exec(payload)?.[1] ?? null;
  const message = /grpc-message:\s*([^\r\n]*)/i.exec(payload)?.[1] ?? null;
  let fixed = payload;
  if (grpcStatusIsParseError(status, message)) fixed = fixed.replace(/grpc-status:\s*\d+/i, `grpc-status: ${Code.InvalidArgument}`);
  const hinted = hintedGrpcMessage(message, service);
  if (hinted !== undefined) fixed = fixed.replace(/grpc-message:\s*[^\r\n]*/i, () => `grpc-message: ${hinted}`);
  return fixed === payload ? undefined : fixed;
}

/** A percent-encoded grpc-message with the valid enum names added, or undefined when it needs none. */
function hintedGrpcMessage(encoded: string | null | undefined, service: DescService): string | undefined {
  if (!encoded) return undefined;
  try {
    const decoded = decodeURIComponent(encoded);
    const hinted = withEnumValues(decoded, service);
    return hinted === decoded ? undefined : encodeURIComponent(hinted);
  } catch {
    return undefined;
  }
}

function connectEndStreamFix(payload: string, service: DescService): string | undefined {
  try {
    const end = JSON.parse(payload) as { error?: ConnectErrorJson };
    const fixed = end.error && repairedError(end.error, service);
    if (!fixed) return undefined;
    Object.assign(end.error!, fixed);
    return JSON.stringify(end);
  } catch {
    return undefined;
  }
}

interface ConnectErrorJson {
  code?: string;
  message?: string;
}

/**
 * A Connect error (a unary body or an end-of-stream message) as it should leave, or undefined when
 * it is right as it is: a client mistake connect-es calls INTERNAL becomes INVALID_ARGUMENT, and
 * an unknown enum name gets the valid ones.
 */
function repairedError(error: ConnectErrorJson, service: DescService): { code: string; message: string } | undefined {
  const message = error.message ?? "";
  if (error.code === "internal" && CLIENT_MISTAKE.test(message)) return { code: "invalid_argument", message };
  if (error.code !== "invalid_argument") return undefined;
  const hinted = withEnumValues(message, service);
  return hinted === message ? undefined : { code: "invalid_argument", message: hinted };
}
