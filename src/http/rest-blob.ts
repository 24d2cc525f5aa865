// REST for ImageService.GetBlob: `GET|HEAD /v1/images/{repository=**}/blobs/{digest}` answers the
// blob's raw bytes rather than the transcoder's NDJSON of chunk messages, the way registries
// serve blobs: Content-Length, Content-Type, Docker-Content-Digest, ETag, Accept-Ranges, and
// single Range requests (206 with Content-Range; 416 with `Content-Range: bytes */size` when
// nothing of the range exists), conditionals as on /v2/ (./conditional.ts). GetBlob's `offset`
// and `length` come from the query as the transcoder would read them (unknown parameters are
// 400): that part, 200. The path comes from the method's google.api.http rule; the call goes
// through the same interceptors as every other (request id, log line, errors).
//
// Errors before the first byte are the REST JSON errors with their status. After it the status
// is gone: a failure (a digest mismatch found at the end, an upstream that vanished) aborts
// the connection, so the client sees a transfer shorter than its Content-Length, never a
// complete-looking wrong body (the service releases the last bytes only after verifying).
import http2 from "node:http2";
import type http from "node:http";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { GetBlobRequestSchema, ImageService, type GetBlobRequest, type GetBlobResponse } from "../../gen/artifact/v1/image_pb.js";
import { BLOB_METADATA_ONLY, BLOB_SIZE_KEY, RAW_BLOB_SINK } from "../api/image-service.js";
import { parseRangeHeader } from "../domain/byte-range.js";
import { noneMatch, rangeApplies } from "./conditional.js";
import { callContext, callHeaders } from "./call-context.js";
import { pickRequestId, REQUEST_ID_HEADER } from "../request-id.js";
import { PathMatcher } from "./rest/path-template.js";
import { readBindings, type RestBinding } from "./rest/bindings.js";
import { errorObject, errorStatus, RestError, type EdgeError } from "./rest/error.js";
import { collectInvokers, type InvokeInit, type MethodInvoker } from "./rest/invoke.js";
import { applyPath, applyQuery } from "./rest/request.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
export type RestBlobHandler = (req: Request, res: Response, next: () => void) => void;

export interface RestBlobOptions {
  /** The same routes the RPC protocols serve. */
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  shutdownSignal?: AbortSignal;
  log?: Logger;
}

export function createRestBlobHandler(options: RestBlobOptions): RestBlobHandler {
  const method = ImageService.method.getBlob;
  const invoker = collectInvokers(options.routes, { interceptors: options.interceptors, shutdownSignal: options.shutdownSignal }).get(method);
  const binding = readBindings([ImageService]).bindings.find((b) => b.method === method);
  if (!invoker || !binding) throw new Error("REST blob route: ImageService.GetBlob has no implementation or no google.api.http rule");
  const matcher = new PathMatcher<RestBinding>();
  matcher.add(binding.template, binding);

  return (req, res, next) => {
    if (req.method !== "GET" && req.method !== "HEAD") return next();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const match = matcher.match(q < 0 ? url : url.slice(0, q))[0];
    if (!match) return next();
    const requestId = pickRequestId(header(req, REQUEST_ID_HEADER));
    const input = create(GetBlobRequestSchema);
    const call = new BlobCall(req, res, invoker, { requestMethod: req.method, url, header: callHeaders(req, requestId) }, requestId);
    call
      .serve(() => {
        applyPath(match.value, match, input);
        applyQuery(match.value, input, q < 0 ? "" : url.slice(q + 1));
      }, input)
      .catch((err: unknown) => {
        const known = err instanceof RestError || err instanceof ConnectError;
        if (!known) options.log?.error({ requestId, err }, "REST blob: unexpected error");
        call.fail(known ? err : new ConnectError(`internal error (request id ${requestId})`, Code.Internal));
      });
  };
}

class BlobCall {
  private readonly abort = new AbortController();

  constructor(
    private readonly req: Request,
    private readonly res: Response,
    private readonly invoker: MethodInvoker,
    private readonly init: InvokeInit,
    private readonly requestId: string,
  ) {
    res.once("close", () => this.abort.abort());
  }

  async serve(fillFromPath: () => void, input: GetBlobRequest): Promise<void> {
    fillFromPath();
    const head = this.req.method === "HEAD";
    const etag = `"${input.digest}"`;
    // GetBlob's offset and length from the query (its google.api.http rule binds them there): a
    // part of the blob as a resource of its own, 200 with those bytes (a Range header asks for
    // parts of the whole blob: 206). Not both at once.
    const part = input.offset !== 0n || input.length !== 0n ? { offset: Number(input.offset), length: Number(input.length) } : undefined;
    if (part && header(this.req, "range") !== undefined) {
      throw new RestError(400, Code.InvalidArgument, "ask for a part of the blob with a Range header or with offset and length, not both");
    }
    if (!part && !noneMatch(header(this.req, "if-none-match"), etag)) {
      // Content is immutable: a client holding this digest has the bytes. Still say 404 for a blob that is not there.
      await this.stat(input);
      return this.headers(304, { etag, [REQUEST_ID_HEADER]: this.requestId }, true);
    }
    // If-Range with another validator: the client's partial copy is stale, send everything.
    let range = head || part || !rangeApplies(header(this.req, "if-range"), etag) ? undefined : parseRangeHeader(header(this.req, "range"));

    if (head || (range && "suffix" in range)) {
      // What the blob is, without its bytes: for HEAD, or to place a suffix range.
      const info = await this.stat(input);
      const size = Number(info.sizeBytes);
      if (head) return this.headers(200, this.baseHeaders(input.digest, info.mediaType, size), true);
      const suffix = (range as { suffix: number }).suffix;
      if (suffix === 0 || size === 0) return this.unsatisfiable(size);
      range = { start: Math.max(0, size - suffix), end: size - 1 };
    }

    const { message, messages } = part
      ? await this.open(input, part.offset, part.length)
      : await this.open(input, range?.start ?? 0, range ? (range.end === undefined ? 0 : range.end - range.start + 1) : 0);
    const size = Number(message.sizeBytes);
    const headers = this.baseHeaders(input.digest, message.mediaType, size);
    if (part) {
      // These bytes are not the blob: no validator of the blob's, and their own length.
      delete headers.etag;
      headers["content-length"] = Math.min(part.length === 0 ? size : part.offset + part.length, size) - part.offset;
    }
    if (range) {
      if (size === 0) {
        await messages.return?.();
        return this.unsatisfiable(size);
      }
      const end = Math.min(range.end ?? size - 1, size - 1);
      headers["content-length"] = end - range.start + 1;
      headers["content-range"] = `bytes ${range.start}-${end}/${size}`;
    }
    this.headers(range ? 206 : 200, headers, false);
    try {
      await this.write(message.data);
      for (let next = await messages.next(); !next.done; next = await messages.next()) await this.write(next.value.data);
    } catch (err) {
      await messages.return?.().catch(() => undefined);
      this.cut();
      if (this.abort.signal.aborted) return; // the client left; nothing to tell
      throw err;
    }
    this.res.end();
  }

  /** GetBlob's one message for what the blob is (size, media type), without its bytes. */
  private async stat(input: GetBlobRequest): Promise<GetBlobResponse> {
    const { message, messages } = await this.open(input, 0, 0, true);
    await messages.return?.();
    return message;
  }

  /** Starts GetBlob and waits for its first message (errors before it become ordinary REST errors). */
  private async open(input: GetBlobRequest, offset: number, length: number, metadataOnly = false) {
    const request = create(GetBlobRequestSchema, { repository: input.repository, digest: input.digest, offset: BigInt(offset), length: BigInt(length) });
    // The blob's bytes are then written straight into the response after the first message
    // (headers are sent by then), not as chunk messages.
    const contextValues = callContext(this.req, createContextValues().set(RAW_BLOB_SINK, this.res).set(BLOB_METADATA_ONLY, metadataOnly));
    const stream = this.invoker.serverStream(request, { ...this.init, signal: this.abort.signal, contextValues });
    const messages = stream[Symbol.asyncIterator]() as AsyncIterator<GetBlobResponse>;
    const first = await messages.next();
    if (first.done) throw new ConnectError("GetBlob ended without a message", Code.Internal);
    return { message: first.value, messages };
  }

  private baseHeaders(digest: string, mediaType: string, size: number): Record<string, string | number> {
    return {
      "content-type": mediaType || "application/octet-stream",
      "content-length": size,
      "docker-content-digest": digest,
      etag: `"${digest}"`,
      "accept-ranges": "bytes",
      // Addressed by digest: the bytes behind this URL never change.
      "cache-control": "max-age=31536000, immutable",
      [REQUEST_ID_HEADER]: this.requestId,
    };
  }

  private headers(status: number, headers: Record<string, string | number>, end: boolean): void {
    this.res.writeHead(status, headers);
    if (end) this.res.end();
  }

  private unsatisfiable(size: number): void {
    const err = new RestError(416, Code.OutOfRange, `range ${header(this.req, "range")} is not satisfiable for a blob of ${size} bytes`, {
      "content-range": `bytes */${size}`,
    });
    this.fail(err);
  }

  /** Writes with backpressure: waits for the socket to drain (or close). */
  private write(data: Uint8Array): Promise<void> {
    if (data.length === 0 || (this.res as http.ServerResponse).write(data)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off("drain", done);
        this.res.off("close", done);
        resolve();
      };
      this.res.on("drain", done);
      this.res.on("close", done);
    });
  }

  /** Ends the transfer abnormally: the client must not mistake what it got for the whole body. */
  private cut(): void {
    const res = this.res;
    if ("stream" in res) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    else res.destroy();
  }

  fail(error: EdgeError): void {
    if (this.res.headersSent) {
      this.cut();
      return;
    }
    if (this.abort.signal.aborted) return;
    let status = errorStatus(error);
    const extra: Record<string, string> = error instanceof RestError ? { ...error.headers } : {};
    // The service says a range begins past the end; HTTP says 416 and how big the blob is.
    if (error instanceof ConnectError && error.code === Code.OutOfRange) {
      status = 416;
      const size = error.metadata.get(BLOB_SIZE_KEY);
      if (size) extra["content-range"] = `bytes */${size}`;
    }
    const body = JSON.stringify(errorObject(error));
    this.res.writeHead(status, {
      ...extra,
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      [REQUEST_ID_HEADER]: this.requestId,
    });
    if (this.req.method === "HEAD") this.res.end();
    else this.res.end(body);
  }
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
