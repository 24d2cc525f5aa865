// The REST transcoder, all in src/http/rest/: src/http/app.ts mounts this handler behind the
// Connect handler, for what no RPC path matches. It matches the path against every rule
// (path-template.ts, bindings.ts), builds the request message (body.ts, request.ts), calls the
// service in-process through the same interceptors as every RPC (invoke.ts) and answers JSON or
// an error (error.ts). It depends on gen/, src/api/interceptors/ and src/request-id.ts; nothing
// in src/api/ or below imports it. src/http/rest-blob.ts reuses its pieces for raw blob bytes.
//
// REST transcoding: serves every google.api.http rule of the given services as plain HTTP
// with JSON bodies, generically (no hand-written route per method). Calls reach the same
// implementations through the same interceptors as the RPC protocols (see invoke.ts), so
// request ids, the call log and the mapping of domain errors behave the same on every way in.
//
// Responses: 200 with the proto3 JSON of the response message (or of its `response_body`
// field). Errors: Connect's error JSON {"code","message"} with the HTTP status the Connect
// protocol gives the code (so FAILED_PRECONDITION is 400 and ABORTED 409, as for Connect
// clients); before any call: 404 not_found for a path no rule matches, 405 unimplemented with
// `Allow` for a known path and another method, 415 for a body that is not JSON, 413
// resource_exhausted past the body limit, 400 invalid_argument for bad JSON or parameters.
// `x-request-id` (the caller's, or a new one) is passed to the call and returned on every
// response; `connect-timeout-ms` or `grpc-timeout` becomes the call's deadline.
//
// Server-streaming methods answer `application/x-ndjson`: one JSON message per line. An error
// before the first message is an ordinary error response; an error after it (the status line
// is gone by then) ends the stream with one last line {"error": {"code": "...", "message": "..."}}.
import type http from "node:http";
import type http2 from "node:http2";
import { ScalarType, toJson, type DescField, type DescService, type JsonValue, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "pino";
import { MAX_DEADLINE_MS } from "../../api/interceptors/deadline.js";
import { pickRequestId, REQUEST_ID_HEADER } from "../../request-id.js";
import { callContext, callHeaders } from "../call-context.js";
import { PathMatcher } from "./path-template.js";
import { readBindings, type RestBinding } from "./bindings.js";
import { readJsonBody } from "./body.js";
import { collectInvokers, type InvokeInit, type MethodInvoker } from "./invoke.js";
import { errorObject, errorStatus, RestError, type EdgeError } from "./error.js";
import { applyPath, applyQuery, messageFromBody } from "./request.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
/** What we use of an HTTP/1.1 or HTTP/2 compatibility response. */
interface Response {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  write(chunk: string): boolean;
  end(): unknown;
  end(chunk: string): unknown;
  on(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}
export type RestHandler = (req: Request, res: Response, next: () => void) => void;

export interface RestOptions {
  services: readonly DescService[];
  /** The same routes the RPC protocols serve. */
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** Larger request bodies are refused with 413 (MAX_REQUEST_BYTES). */
  maxBodyBytes: number;
  shutdownSignal?: AbortSignal;
  log?: Logger;
}

interface Route {
  binding: RestBinding;
  invoker: MethodInvoker;
}

export function createRestHandler(options: RestOptions): RestHandler {
  const { maxBodyBytes } = options;
  const invokers = collectInvokers(options.routes, { interceptors: options.interceptors, shutdownSignal: options.shutdownSignal });
  const { bindings, skipped } = readBindings(options.services);
  for (const s of skipped) options.log?.debug({ method: `${s.method.parent.typeName}/${s.method.name}`, reason: s.reason }, "REST: skipped");

  const matcher = new PathMatcher<Route>();
  // First path segments the rules use (e.g. "v1"): those paths are ours, 404 included.
  const owned = new Set<string>();
  let ownsEverything = false;
  for (const binding of bindings) {
    const invoker = invokers.get(binding.method);
    if (!invoker) {
      options.log?.warn({ method: `${binding.service.typeName}/${binding.method.name}` }, "REST: no implementation registered in routes; rule skipped");
      continue;
    }
    matcher.add(binding.template, { binding, invoker });
    const first = binding.template.segments[0]!;
    if (first.kind === "literal") owned.add(first.value);
    else ownsEverything = true;
  }
  checkDuplicates(bindings);

  return (req, res, next) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const slash = path.indexOf("/", 1);
    if (!ownsEverything && !owned.has(path.slice(1, slash < 0 ? undefined : slash))) return next();
    const requestId = pickRequestId(header(req, REQUEST_ID_HEADER));
    serve(req, res, path, q < 0 ? "" : url.slice(q + 1), requestId).catch((err: unknown) => {
      const known = err instanceof RestError || err instanceof ConnectError;
      const error = known ? err : new ConnectError(`internal error (request id ${requestId})`, Code.Internal);
      if (!known) options.log?.error({ requestId, err }, "REST: unexpected error");
      sendError(res, error, requestId);
    });
  };

  async function serve(req: Request, res: Response, path: string, query: string, requestId: string): Promise<void> {
    const matches = matcher.match(path);
    const method = req.method ?? "GET";
    const match = matches.find((m) => m.value.binding.httpMethod === method);
    if (!match) {
      if (matches.length === 0) throw new RestError(404, Code.NotFound, `no REST route for ${method} ${path.slice(0, 256)}`);
      const allow = [...new Set(matches.map((m) => m.value.binding.httpMethod))].sort().join(", ");
      throw new RestError(405, Code.Unimplemented, `${method} is not allowed on ${path.slice(0, 256)}; allowed: ${allow}`, { allow });
    }
    const { binding, invoker } = match.value;
    const init: InvokeInit = {
      requestMethod: method,
      url: req.url ?? path,
      header: callHeaders(req, requestId),
      timeoutMs: deadline(req),
      contextValues: callContext(req),
    };
    const text = binding.body === undefined ? "" : await readJsonBody(req, maxBodyBytes);
    const input = messageFromBody(binding, text);
    applyPath(binding, match, input);
    applyQuery(binding, input, query);
    if (binding.method.methodKind === "server_streaming") {
      await stream(res, binding, invoker, input, init, requestId);
      return;
    }
    const output = await invoker.unary(input, init);
    const body = JSON.stringify(responseJson(binding, output));
    res.writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      [REQUEST_ID_HEADER]: requestId,
    });
    res.end(body);
  }
}

async function stream(res: Response, binding: RestBinding, invoker: MethodInvoker, input: Message, init: InvokeInit, requestId: string) {
  const abort = new AbortController();
  const onClose = () => abort.abort();
  res.on("close", onClose);
  try {
    const messages = invoker.serverStream(input, { ...init, signal: abort.signal })[Symbol.asyncIterator]();
    let next = await messages.next();
    res.writeHead(200, { "content-type": "application/x-ndjson", [REQUEST_ID_HEADER]: requestId });
    try {
      while (!next.done) {
        if (!res.write(`${JSON.stringify(responseJson(binding, next.value))}\n`)) await drained(res);
        next = await messages.next();
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      const error = ConnectError.from(err);
      res.write(`${JSON.stringify({ error: errorObject(error) })}\n`);
    }
    res.end();
  } finally {
    res.off("close", onClose);
  }
}

function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

function responseJson(binding: RestBinding, output: Message): JsonValue {
  const schema = binding.method.output;
  const field = binding.responseBody;
  if (!field) return toJson(schema, output);
  if (field.fieldKind === "message") {
    const value = (output as unknown as Record<string, unknown>)[field.localName] as Message | undefined;
    return value ? toJson(field.message, value) : {};
  }
  const json = toJson(schema, output) as Record<string, JsonValue>;
  return json[field.jsonName] ?? zeroJson(field);
}

/** proto3 JSON leaves default values out; a response_body field still needs a value. */
function zeroJson(field: DescField): JsonValue {
  if (field.fieldKind === "list") return [];
  if (field.fieldKind === "map") return {};
  if (field.fieldKind === "enum") return field.enum.values[0]?.name ?? 0;
  switch (field.scalar) {
    case undefined:
      return null;
    case ScalarType.BOOL:
      return false;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return "";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.SINT64:
      return "0";
    default:
      return 0;
  }
}

/** The client's deadline, in Connect's or gRPC's header form. */
function deadline(req: Request): number | undefined {
  const connect = header(req, "connect-timeout-ms");
  const grpc = header(req, "grpc-timeout");
  if (connect === undefined && grpc === undefined) return undefined;
  const parsed = connect !== undefined ? parseConnectTimeout(connect, Number.MAX_SAFE_INTEGER) : parseGrpcTimeout(grpc!, Number.MAX_SAFE_INTEGER);
  if (parsed.error) throw new RestError(400, Code.InvalidArgument, parsed.error.rawMessage);
  return parsed.timeoutMs === undefined ? undefined : Math.min(parsed.timeoutMs, MAX_DEADLINE_MS);
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendError(res: Response, error: EdgeError, requestId: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = JSON.stringify(errorObject(error));
  res.writeHead(errorStatus(error), {
    ...(error instanceof RestError ? error.headers : Object.fromEntries(error.metadata)),
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    [REQUEST_ID_HEADER]: requestId,
  });
  res.end(body);
}

/** Two rules with the same method, path and verb would make one of them unreachable. */
function checkDuplicates(bindings: RestBinding[]): void {
  const seen = new Map<string, RestBinding>();
  for (const b of bindings) {
    const shape = b.template.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**")).join("/");
    const key = `${b.httpMethod} /${shape}:${b.template.verb}`;
    const other = seen.get(key);
    if (other) {
      throw new Error(
        `google.api.http: ${b.method.parent.typeName}.${b.method.name} and ${other.method.parent.typeName}.${other.method.name} both bind ${b.httpMethod} ${b.template.source}`,
      );
    }
    seen.set(key, b);
  }
}
