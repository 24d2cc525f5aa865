// One port, every protocol: HTTP/1.1 and cleartext HTTP/2 with prior knowledge (what grpc
// clients and `grpcurl -plaintext` send). Each accepted socket is sniffed for the HTTP/2
// client preface and handed to an http2 or an http1 server that share one request handler.
// With TLS (src/http/tls.ts) the socket does its handshake first and ALPN picks the server
// instead of the sniff; the rest is the same.
//
// Written here rather than taken from @httptoolkit/httpolyglot because graceful shutdown
// needs the two inner servers (idle HTTP/1.1 keep-alive sockets, HTTP/2 sessions to GOAWAY),
// which that library keeps private, and because we want neither its TLS nor SOCKS branches.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { TlsEndpoint } from "./tls.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Lingering close of an HTTP/1.1 connection that an answer ends (`Connection: close`): the answer
 * and a FIN go out, and what the client still sends is read and dropped until it closes its side,
 * is silent for LINGER_IDLE_MS, or LINGER_MAX_MS have passed. An answer given before the request
 * body was read (a refusal: no credentials, a body over a limit, an upload another request is
 * writing) otherwise leaves unread bytes in the socket, and closing it then makes the kernel send
 * a reset, which can reach the client before it has read the answer: it sees ECONNRESET, and a
 * balancer such as nginx answers 502 in the service's place. (nginx does the same for its own
 * clients: lingering_close, lingering_timeout 5 s, lingering_time 30 s.)
 */
export const LINGER_IDLE_MS = 5_000;
export const LINGER_MAX_MS = 15_000;

export type RequestHandler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

export interface ListenerOptions {
  /** A connection that sends no complete request head in this time is closed. */
  headersTimeoutMs: number;
  /** A whole HTTP/1.1 request (body included) must arrive in this time; 0 = no limit. */
  requestTimeoutMs: number;
  /** An idle keep-alive HTTP/1.1 socket or HTTP/2 session is closed after this time. */
  idleTimeoutMs: number;
  /** Set: every connection is TLS (and every response says Strict-Transport-Security). */
  tls?: TlsEndpoint;
}

export class Listener {
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  /**
   * Connections that have not reached the http1/http2 server yet (not sniffed, or mid-handshake),
   * by client address: they hold no request, so a stop closes them at once. (A TLS socket is a
   * new object over the same connection; its address is what links the two.)
   */
  private readonly unserved = new Map<string, net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** HTTP/1.1 connections an answer has ended, reading what their client still sends. */
  private readonly lingering = new Set<net.Socket>();
  private closing = false;

  constructor(
    handler: RequestHandler,
    private readonly options: ListenerOptions,
  ) {
    const hsts = options.tls?.hsts;
    const serve: RequestHandler = (req, res) => {
      if (hsts) res.setHeader("strict-transport-security", hsts);
      // A handler that stopped reading a body it had started on (piped, then refused) leaves the
      // request paused, and with it the socket; once answered, the rest flows and is dropped.
      if (req.httpVersionMajor === 1) res.once("finish", () => req.complete || req.resume());
      if (!this.closing) return handler(req, res);
      // A request that arrives on a kept-alive connection while we stop: try another replica.
      const headers: Record<string, string> = { "content-type": "application/json", "retry-after": "1" };
      if (req.httpVersionMajor === 1) headers.connection = "close";
      res.writeHead(503, headers);
      res.end(JSON.stringify({ code: "unavailable", message: "the server is shutting down" }));
    };
    this.h1 = http.createServer(
      {
        headersTimeout: options.headersTimeoutMs,
        requestTimeout: options.requestTimeoutMs,
        keepAliveTimeout: options.idleTimeoutMs,
        // Node enforces the two timeouts above only when it checks, every 30 s by default.
        connectionsCheckingInterval: checkingInterval(options),
      },
      serve,
    );
    // The inner server never listens itself, but Node starts its connection tracking (which
    // enforces headersTimeout/requestTimeout and backs closeIdleConnections) on "listening".
    this.h1.emit("listening");
    this.h2 = http2.createServer({}, serve as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
    // Node answers `expect: 100-continue` by writing a 100 on the stream, and that throws (an
    // uncaught exception: the process ends) when nghttp2 has already reset the stream, e.g. for a
    // body longer than its Content-Length. With a listener Node leaves it to us: a dead stream is
    // not served.
    this.h2.on("checkContinue", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
      if (res.stream.destroyed || res.stream.closed) return;
      res.writeContinue();
      serve(req, res);
    });
    this.h2.on("session", (session: http2.ServerHttp2Session) => {
      this.sessions.add(session);
      session.setTimeout(options.idleTimeoutMs, () => session.close());
      session.once("close", () => this.sessions.delete(session));
    });
    options.tls?.onSecureConnection((socket, protocol) => this.serveSecure(socket, protocol));
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** Starts accepting on host:port (port 0 = any free one); resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.servers.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /** Serves a connection accepted elsewhere (a cluster primary hands its workers theirs). */
  accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    const peer = peerKey(socket);
    this.unserved.set(peer, socket);
    socket.once("close", () => {
      this.sockets.delete(socket);
      if (this.unserved.get(peer) === socket) this.unserved.delete(peer);
    });
    socket.on("error", () => socket.destroy());
    // The handshake has its own timeout (the same as the headers').
    if (this.options.tls) return void this.options.tls.server.emit("connection", socket);
    // A client that connects and says nothing is not kept forever.
    socket.setTimeout(this.options.headersTimeoutMs, () => socket.destroy());
    socket.once("readable", () => this.sniff(socket, Buffer.alloc(0)));
  }

  private sniff(socket: net.Socket, seen: Buffer): void {
    const chunk = socket.read() as Buffer | null;
    const data = chunk ? Buffer.concat([seen, chunk]) : seen;
    const n = Math.min(data.length, PREFACE.length);
    const couldBeHttp2 = data.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (couldBeHttp2 && data.length < PREFACE.length) {
      if (socket.readableEnded) socket.destroy();
      else socket.once("readable", () => this.sniff(socket, data));
      return;
    }
    socket.setTimeout(0);
    socket.removeAllListeners("error");
    this.unserved.delete(peerKey(socket));
    socket.unshift(data);
    if (couldBeHttp2) this.h2.emit("connection", socket);
    else this.serveHttp1(socket);
  }

  private serveHttp1(socket: net.Socket): void {
    // Node's HTTP/1.1 server ends a connection after a `Connection: close` answer with
    // destroySoon() (end, then destroy once the FIN is out): here it lingers instead.
    socket.destroySoon = () => this.linger(socket);
    this.h1.emit("connection", socket);
  }

  /** See LINGER_IDLE_MS. */
  private linger(socket: net.Socket): void {
    if (this.closing) return void socket.destroy();
    if (this.lingering.has(socket)) return;
    this.lingering.add(socket);
    const cut = () => socket.destroy();
    const cap = setTimeout(cut, LINGER_MAX_MS);
    cap.unref();
    socket.once("close", () => {
      clearTimeout(cap);
      this.lingering.delete(socket);
    });
    socket.setTimeout(LINGER_IDLE_MS, cut);
    // The HTTP server's parser goes on reading (in C++: a "data" listener here would take the
    // socket from it) and drops the rest of the body; a request whose buffer had filled paused
    // the socket, and resume() starts it again. A request a handler destroyed (an early exit from
    // `for await`, a failed pipeline) refuses each piece of body, and the server pauses the
    // socket for it: from now on nothing may. The client's FIN then closes the socket.
    socket.pause = () => socket;
    socket.resume();
    socket.end();
  }

  private serveSecure(socket: TLSSocket, protocol: "h2" | "http/1.1"): void {
    if (this.closing) return void socket.destroy();
    this.unserved.delete(peerKey(socket));
    // Tracked as well as the socket under it: closing either ends the connection.
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    if (protocol === "h2") this.h2.emit("connection", socket);
    else this.serveHttp1(socket);
  }

  /**
   * Graceful stop: no new connections; HTTP/2 sessions get GOAWAY (running streams finish);
   * HTTP/1.1 sockets close as soon as they are idle. After `timeoutMs` whatever is left is cut.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closing = true;
    // close() stops accepting at once; its callback would wait for every socket, which we drain below.
    for (const server of this.servers) server.close();
    for (const socket of this.unserved.values()) socket.destroy();
    for (const socket of this.lingering) socket.destroy();
    for (const session of this.sessions) session.close();
    const deadline = Date.now() + timeoutMs;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      this.h1.closeIdleConnections();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    // Stops the inner server's connection-checking timer (it reports "not running": expected).
    this.h1.close(() => {});
  }
}

const peerKey = (socket: net.Socket) => `${socket.remoteAddress}:${socket.remotePort}`;

/** Often enough that a timeout is not overshot by more than a quarter of it; at most every 30 s. */
function checkingInterval(options: ListenerOptions): number {
  const timeouts = [options.headersTimeoutMs, options.requestTimeoutMs].filter((t) => t > 0);
  return Math.min(30_000, Math.max(50, Math.floor(Math.min(...timeouts) / 4)));
}
