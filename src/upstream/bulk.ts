// Blob GETs on sockets of their own: the response is parsed here and its body read straight
// into ~1 MiB buffers (net's `onread`), so a big blob moves through the relay, the verifier and
// the cache in 512 pieces per 512 MiB instead of 8,192 network reads of 64 KiB each pushed
// through undici's parser and stream. Everything else an upstream request needs stays as for
// undici: the address policy judges every connection (IP literals here, host names in `lookup`),
// the three timeouts, TLS verification unless the registry is insecure, keep-alive per origin.
// Bodies framed otherwise (chunked, read to the close) are small in practice (a redirect's, an
// error's): they are read whole, up to 1 MiB; a bigger one, or a 1xx, is left to undici, which
// the caller asks again (a GET, so asking twice is harmless).
import net from "node:net";
import { Readable } from "node:stream";
import tls from "node:tls";
import { lend, SLAB_BYTES, takeSlab } from "../domain/lent-buffers.js";
import type { AddressPolicy } from "./address-policy.js";
import type { UpstreamTimeouts } from "./settings.js";
import type { Headers, RawResponse } from "./transport.js";

/** A batch is handed on once less than this is left in its buffer: no read gets a sliver. */
const MIN_READ = 64 * 1024;
const MAX_HEAD_BYTES = 64 * 1024;
/** Largest body not framed by Content-Length read here (whole, in memory). */
const MAX_SMALL_BODY = 1 << 20;
/** Bytes of body a reader that stopped reading may have waiting, before the socket pauses. */
const BODY_HIGH_WATER = 2 * SLAB_BYTES;
const IDLE_PER_ORIGIN = 8;

/** The answer is a 1xx, or a body not framed by Content-Length and bigger than MAX_SMALL_BODY: ask again with undici. */
export class NotBulk extends Error {}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/;

function failure(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** One connection: its reads go to whichever response is being read on it. */
class Connection {
  socket!: net.Socket;
  reader?: ResponseReader;
  /** Where reads land while no response is being read (an idle connection, the first read). */
  private readonly spare = Buffer.allocUnsafe(MIN_READ);
  idleTimer?: NodeJS.Timeout;
  closed = false;

  constructor(readonly key: string) {}

  buffer(): Buffer {
    return this.reader?.buffer() ?? this.spare;
  }

  onRead(n: number, buf: Buffer): boolean {
    if (this.reader) return this.reader.onRead(n, buf);
    // Bytes nobody asked for on an idle connection: it cannot be trusted for a next request.
    this.socket.destroy();
    return false;
  }
}

export class BulkTransport {
  private readonly idle = new Map<string, Connection[]>();
  private closed = false;

  constructor(
    private readonly options: {
      policy: AddressPolicy;
      timeouts: UpstreamTimeouts;
      insecure: boolean;
      /** How long an idle connection is kept for the next request (the same as undici's: src/upstream/transport.ts). */
      keepAliveMs: number;
    },
  ) {}

  /**
   * GETs `url` and resolves with the status, headers and body once the headers are in. Throws
   * NotBulk when this transport does not read such an answer (the request should go to undici).
   */
  async get(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<RawResponse> {
    const head = requestHead(url, headers);
    const key = `${url.protocol}//${url.host}`;
    for (;;) {
      const reused = this.takeIdle(key);
      const connection = reused ?? this.connect(url, key);
      try {
        return await new ResponseReader(connection, this.options.timeouts, signal, (c) => this.release(c)).send(head, !reused);
      } catch (err) {
        // A kept-alive connection the server had closed meanwhile: once more on a new one.
        if (reused && err instanceof StaleConnection) continue;
        throw err;
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list) c.socket.destroy();
    this.idle.clear();
  }

  private takeIdle(key: string): Connection | undefined {
    const list = this.idle.get(key);
    while (list && list.length > 0) {
      const c = list.pop()!;
      clearTimeout(c.idleTimer);
      if (!c.closed && !c.socket.destroyed) return c;
    }
    return undefined;
  }

  private release(c: Connection): void {
    const list = this.idle.get(c.key) ?? [];
    if (this.closed || c.closed || list.length >= IDLE_PER_ORIGIN) {
      c.socket.destroy();
      return;
    }
    c.reader = undefined;
    c.idleTimer = setTimeout(() => c.socket.destroy(), this.options.keepAliveMs).unref();
    list.push(c);
    this.idle.set(c.key, list);
  }

  private connect(url: URL, key: string): Connection {
    const { policy, timeouts, insecure } = this.options;
    const c = new Connection(key);
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    const onread = { buffer: () => c.buffer(), callback: (n: number, buf: Buffer) => c.onRead(n, buf) };
    const literal = net.isIP(host) !== 0;
    // IP literals are judged here (Node skips `lookup` for them), host names on every resolution.
    const refusal = literal ? policy.check(host, port, host) : undefined;
    const common = { host, port, lookup: policy.lookupFor(port), onread };
    c.socket =
      url.protocol === "https:"
        ? tls.connect({ ...common, servername: literal ? undefined : host, rejectUnauthorized: !insecure, ALPNProtocols: ["http/1.1"] })
        : net.connect(common);
    if (refusal) c.socket.destroy(refusal);
    c.socket.setNoDelay(true);
    const connectTimer = setTimeout(
      () => c.socket.destroy(failure("UND_ERR_CONNECT_TIMEOUT", `connect timeout after ${timeouts.connectMs} ms`)),
      timeouts.connectMs,
    ).unref();
    c.socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => clearTimeout(connectTimer));
    c.socket.on("error", (err) => c.reader?.socketError(err));
    c.socket.on("close", () => {
      c.closed = true;
      clearTimeout(connectTimer);
      clearTimeout(c.idleTimer);
      c.reader?.closed();
    });
    return c;
  }
}

/** A kept-alive connection that closed before a byte of the answer came. */
class StaleConnection extends Error {}

/** One response read from a connection: the head, then the body into batch buffers. */
class ResponseReader {
  private current = takeSlab();
  /** Where the bytes not handed on yet start in `current`, and where they end. */
  private start = 0;
  private fill = 0;
  private phase: "head" | "body" | "small" | "done" = "head";
  /** A body not framed by Content-Length, read whole before it is handed over. */
  private small?: { code: number; headers: Headers; chunked: boolean; raw: Buffer };
  private received = 0;
  private length = 0;
  private reusable = false;
  private anyByte = false;
  private timer?: NodeJS.Timeout;
  private settle?: { resolve: (r: RawResponse) => void; reject: (err: unknown) => void };
  private body?: Readable;
  private paused = false;
  private fresh = true;

  constructor(
    private readonly c: Connection,
    private readonly timeouts: UpstreamTimeouts,
    private readonly signal: AbortSignal | undefined,
    private readonly release: (c: Connection) => void,
  ) {}

  send(head: string, fresh: boolean): Promise<RawResponse> {
    this.fresh = fresh;
    return new Promise<RawResponse>((resolve, reject) => {
      this.settle = { resolve, reject };
      if (this.signal?.aborted) return this.fail(this.signal.reason);
      this.signal?.addEventListener("abort", this.onAbort, { once: true });
      this.c.reader = this;
      if (this.c.closed) return this.closed();
      this.timer = setTimeout(
        () => this.c.socket.destroy(failure("UND_ERR_HEADERS_TIMEOUT", `headers timeout after ${this.timeouts.headersMs} ms`)),
        this.timeouts.headersMs,
      ).unref();
      if (!this.c.socket.destroyed) this.c.socket.write(head);
    });
  }

  buffer(): Buffer {
    return this.current.subarray(this.fill);
  }

  onRead(n: number, buf: Buffer): boolean {
    if (this.phase === "done") return true;
    this.anyByte = true;
    // The first read may have landed in the connection's spare buffer.
    if (buf.buffer !== this.current.buffer || buf.byteOffset !== this.current.byteOffset + this.fill) buf.copy(this.current, this.fill, 0, n);
    this.fill += n;
    if (this.phase === "small") {
      this.small!.raw = Buffer.concat([this.small!.raw, this.current.subarray(this.fill - n, this.fill)]);
      this.fill = 0;
      return this.smallBody(false);
    }
    if (this.phase === "head") {
      if (!this.parseHead(n)) return !this.c.socket.destroyed;
    } else {
      this.received += n;
      this.timer?.refresh();
    }
    return this.afterBody();
  }

  /** Errors of the socket (and refusals of the address policy, timeouts): the answer fails. */
  fail(err: unknown): void {
    if (this.phase === "done") return;
    this.finish(false);
    if (this.settle) {
      this.settle.reject(err);
      this.settle = undefined;
    } else this.body?.destroy(err as Error);
  }

  /** A socket error: on a kept-alive connection before any answer, the server had let it go. */
  socketError(err: Error): void {
    this.fail(this.stale() ? new StaleConnection("kept-alive connection failed") : err);
  }

  /** The socket closed: fine only once the whole body was read (or it is read to the close). */
  closed(): void {
    if (this.phase === "small" && !this.small!.chunked) {
      this.smallBody(true);
      return;
    }
    this.fail(this.stale() ? new StaleConnection("kept-alive connection closed") : failure("UND_ERR_SOCKET", "other side closed"));
  }

  private stale(): boolean {
    return this.phase === "head" && !this.fresh && !this.anyByte && !this.signal?.aborted;
  }

  private readonly onAbort = (): void => {
    this.c.socket.destroy();
    this.fail(this.signal?.reason ?? failure("ABORT_ERR", "aborted"));
  };

  /** Parses the head once it is complete; false while more of it is needed (or it failed). */
  private parseHead(n: number): boolean {
    const from = Math.max(0, this.fill - n - 3);
    const end = this.current.subarray(0, this.fill).indexOf("\r\n\r\n", from);
    if (end < 0) {
      if (this.fill > MAX_HEAD_BYTES) this.destroy(failure("UND_ERR_HEADERS_OVERFLOW", `response head larger than ${MAX_HEAD_BYTES} bytes`));
      return false;
    }
    const lines = this.current.toString("latin1", 0, end).split("\r\n");
    const status = STATUS_LINE.exec(lines[0]!);
    if (!status) {
      this.destroy(failure("HPE_INVALID_CONSTANT", "the upstream's answer is not HTTP/1.x"));
      return false;
    }
    const headers: Headers = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon).toLowerCase();
      if (colon <= 0 || !TOKEN.test(name)) {
        this.destroy(failure("HPE_INVALID_HEADER_TOKEN", "the upstream's answer has a malformed header"));
        return false;
      }
      const value = line.slice(colon + 1).trim();
      const seen = headers[name];
      headers[name] = seen === undefined ? value : Array.isArray(seen) ? [...seen, value] : [seen, value];
    }
    const code = Number(status[2]);
    const lengths = headers["content-length"];
    const single = Array.isArray(lengths) ? (lengths.every((l) => l === lengths[0]) ? lengths[0] : undefined) : lengths;
    const noBody = code === 204 || code === 304;
    if (code < 200) {
      this.destroy(new NotBulk());
      return false;
    }
    const encoding = headers["transfer-encoding"];
    if (!noBody && (encoding !== undefined || single === undefined)) {
      const chunked = encoding !== undefined;
      if (chunked && String(encoding).toLowerCase() !== "chunked") {
        this.destroy(new NotBulk());
        return false;
      }
      this.small = { code, headers, chunked, raw: Buffer.from(this.current.subarray(end + 4, this.fill)) };
      this.phase = "small";
      this.fill = 0;
      this.smallBody(false);
      return false;
    }
    if (!noBody && !/^\d{1,15}$/.test(single!)) {
      this.destroy(failure("HPE_INVALID_CONTENT_LENGTH", "the upstream's answer has an invalid Content-Length"));
      return false;
    }
    const connection = String(headers.connection ?? "").toLowerCase();
    this.reusable = status[1] === "1" && !/\bclose\b/.test(connection);
    this.length = noBody ? 0 : Number(single);
    this.start = end + 4;
    this.received = this.fill - this.start;
    this.phase = "body";
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.destroy(failure("UND_ERR_BODY_TIMEOUT", `body timeout after ${this.timeouts.bodyIdleMs} ms`)),
      this.timeouts.bodyIdleMs,
    ).unref();
    this.body = new Readable({
      highWaterMark: BODY_HIGH_WATER,
      read: () => this.resume(),
      destroy: (err, done) => {
        // A reader that goes away before the end: the connection cannot be reused.
        if (this.phase !== "done") this.destroy(null);
        done(err);
      },
    });
    // discard() reads a short rest to the end (a redirect's, a 401's) so the connection is kept.
    Object.assign(this.body, { dump: (o?: { limit: number }) => this.dump(o?.limit ?? 0) });
    this.settle!.resolve({ status: code, headers, body: this.body });
    this.settle = undefined;
    return true;
  }

  /** Hands over a small body once it is complete (`ended`: the connection closed); false once done. */
  private smallBody(ended: boolean): boolean {
    const { code, headers, chunked, raw } = this.small!;
    if (raw.length > MAX_SMALL_BODY) {
      this.destroy(new NotBulk());
      return false;
    }
    let body: Buffer | undefined;
    try {
      body = chunked ? dechunk(raw) : ended ? raw : undefined;
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
    if (body === undefined) return true;
    const settle = this.settle!;
    this.settle = undefined;
    this.finish(false);
    settle.resolve({ status: code, headers, body: Readable.from(body.length > 0 ? [body] : []) });
    return false;
  }

  /** Hands on a full batch, or the last one; pauses the socket while the reader is full. */
  private afterBody(): boolean {
    const extra = Math.max(0, this.received - this.length);
    const complete = this.received >= this.length;
    if (!complete && this.current.length - this.fill >= MIN_READ) return true;
    let room = true;
    // Each batch is lent (src/domain/lent-buffers.ts): a transfer that knows when every holder is
    // done gives its buffer back for the batches after it; anyone else just drops it.
    if (this.fill - extra > this.start) room = this.body!.push(lend(this.current.subarray(this.start, this.fill - extra)));
    if (complete) {
      // Bytes past the announced length: the connection is out of step, not to be reused.
      if (extra > 0) this.reusable = false;
      this.finish(this.reusable);
      this.body!.push(null);
      return true;
    }
    this.current = takeSlab();
    this.start = 0;
    this.fill = 0;
    if (!room) {
      this.paused = true;
      // Waiting for our own reader is not the upstream stalling.
      clearTimeout(this.timer);
      return false;
    }
    return true;
  }

  private dump(limit: number): Promise<void> {
    const body = this.body!;
    if (body.readableEnded || body.destroyed) return Promise.resolve();
    if (this.length - this.received > limit) {
      body.destroy();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      body.once("end", resolve);
      body.once("close", resolve);
      body.resume();
    });
  }

  private resume(): void {
    if (!this.paused || this.phase === "done") return;
    this.paused = false;
    this.timer?.refresh();
    this.c.socket.resume();
  }

  private destroy(err: Error | null): void {
    this.c.socket.destroy();
    if (err) this.fail(err);
    else this.finish(false);
  }

  private finish(reuse: boolean): void {
    this.phase = "done";
    clearTimeout(this.timer);
    this.signal?.removeEventListener("abort", this.onAbort);
    if (this.c.reader !== this) return;
    this.c.reader = undefined;
    // A kept-alive connection goes on reading while idle: a close is seen, stray bytes end it.
    if (reuse && !this.c.closed) this.release(this.c);
    else this.c.socket.destroy();
  }
}

/** A chunked body's bytes, or undefined while its last chunk has not come; throws on a malformed one. */
function dechunk(raw: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  for (let at = 0; ;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = raw.toString("latin1", at, eol).split(";")[0]!.trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(size)) throw failure("HPE_INVALID_CHUNK_SIZE", "the upstream's answer has a malformed chunk");
    const length = parseInt(size, 16);
    if (length === 0) return raw.indexOf("\r\n\r\n", eol) < 0 ? undefined : Buffer.concat(parts);
    const end = eol + 2 + length;
    if (raw.length < end + 2) return undefined;
    if (raw[end] !== 13 || raw[end + 1] !== 10) throw failure("HPE_INVALID_CHUNK_SIZE", "the upstream's answer has a malformed chunk");
    parts.push(raw.subarray(eol + 2, end));
    at = end + 2;
  }
}

/** The request's head, refusing what could split it (undici refuses the same). */
function requestHead(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) throw failure("UND_ERR_INVALID_ARG", `invalid header ${JSON.stringify(name)}`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}
