// A closed-loop load generator in its own process: `node --import tsx node-worker.ts plan.json`
// prints one LoadResult as JSON. gRPC is spoken over node:http2 directly (length-prefixed
// frames, grpc-status from the trailers) rather than through a client library, so the client
// costs as little CPU as Node allows; HTTP/1.1 (Connect JSON, REST) is the fallback when wrk is absent,
// and the client for what wrk cannot do (HEAD: its parser waits for a body that never comes).
// Cleartext HTTP/1.1 is written and read on raw sockets (requests encoded once, answers framed by
// Content-Length or chunked encoding), so the client costs a few microseconds per call: with
// node:http's agent it cost more CPU than the service's cached answers did, and the rows measured
// the client. TLS goes through node:https.
import { readFileSync } from "node:fs";
import https from "node:https";
import http2 from "node:http2";
import net from "node:net";
import type { LoadPlan, LoadResult } from "./types.js";

type Outcome = { ok: true } | { ok: false; error: string };
type Encoded = { path: string; body: Buffer };
type Call = (request: Encoded, done: (outcome: Outcome) => void) => void;

/** gRPC wire format: 1 byte "compressed" flag, 4 bytes big-endian length, the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

function grpcCaller(plan: LoadPlan): { call: Call; close(): void } {
  const sessions = Array.from({ length: Math.max(1, plan.connections) }, () => {
    const session = http2.connect(plan.baseUrl, plan.ca ? { ca: plan.ca } : {});
    session.on("error", () => {});
    return session;
  });
  let next = 0;
  const call: Call = ({ path, body }, done) => {
    const session = sessions[next++ % sessions.length]!;
    let grpcStatus: string | undefined;
    let grpcMessage: string | undefined;
    let httpStatus: number | undefined;
    let finished = false;
    const finish = (outcome: Outcome) => {
      if (!finished) {
        finished = true;
        done(outcome);
      }
    };
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers" });
    stream.on("response", (h) => {
      httpStatus = Number(h[":status"]);
      // A "trailers-only" answer (most errors) puts the status in the headers.
      if (h["grpc-status"] !== undefined) {
        grpcStatus = String(h["grpc-status"]);
        grpcMessage = h["grpc-message"] as string | undefined;
      }
    });
    stream.on("trailers", (t: http2.IncomingHttpHeaders) => {
      grpcStatus = String(t["grpc-status"]);
      grpcMessage = t["grpc-message"] as string | undefined;
    });
    stream.on("data", () => {});
    stream.on("error", (err: Error) => finish({ ok: false, error: `stream: ${err.message}` }));
    stream.on("close", () =>
      finish(
        httpStatus === 200 && grpcStatus === "0"
          ? { ok: true }
          : { ok: false, error: `http ${httpStatus ?? "-"} grpc-status ${grpcStatus ?? "-"} ${decodeURIComponent(grpcMessage ?? "")}` },
      ),
    );
    stream.end(body);
  };
  return { call, close: () => sessions.forEach((s) => s.close()) };
}

function http1Headers(plan: LoadPlan, body: Buffer): Record<string, string | number> {
  const headers: Record<string, string | number> = { ...(plan.protocol === "connect" ? { "connect-protocol-version": "1" } : {}), ...plan.headers };
  if (body.length > 0) {
    headers["content-length"] = body.length;
    // JSON unless the plan names another type (the token endpoint's OAuth2 form).
    if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
  }
  return headers;
}

function httpsCaller(plan: LoadPlan): { call: Call; close(): void } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: plan.concurrency, ca: plan.ca });
  const call: Call = ({ path, body }, done) => {
    const req = https.request(new URL(path, plan.baseUrl), { method: plan.method, agent, headers: http1Headers(plan, body) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => res.statusCode !== 200 && chunks.push(c));
      res.on("end", () =>
        done(res.statusCode === 200 ? { ok: true } : { ok: false, error: `http ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}` }),
      );
    });
    req.on("error", (err) => done({ ok: false, error: `request: ${err.message}` }));
    req.end(body.length > 0 ? body : undefined);
  };
  return { call, close: () => agent.destroy() };
}

const CRLF2 = Buffer.from("\r\n\r\n");

/**
 * One answer's length on the wire once `buffer` holds all of it, else undefined; the status line
 * and headers are read, the body skipped (Content-Length, chunked, or none for HEAD, 204 and 304).
 */
export function http1AnswerLength(buffer: Buffer, head: boolean): { length: number; status: number; body: Buffer } | undefined | Error {
  const end = buffer.indexOf(CRLF2);
  if (end < 0) return undefined;
  const lines = buffer.toString("latin1", 0, end).split("\r\n");
  const status = Number(lines[0]!.split(" ")[1]);
  if (!Number.isInteger(status)) return new Error(`not an HTTP/1.1 answer: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
  let contentLength: number | undefined;
  let chunked = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") contentLength = Number(value);
    else if (name === "transfer-encoding") chunked = value.toLowerCase().includes("chunked");
  }
  const bodyStart = end + 4;
  if (head || status === 204 || status === 304) return { length: bodyStart, status, body: Buffer.alloc(0) };
  if (!chunked) {
    if (contentLength === undefined) return new Error(`HTTP ${status} without Content-Length or chunked encoding`);
    const length = bodyStart + contentLength;
    return buffer.length < length ? undefined : { length, status, body: buffer.subarray(bodyStart, length) };
  }
  let at = bodyStart;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buffer.toString("latin1", at, lineEnd), 16);
    if (Number.isNaN(size)) return new Error("a chunk size that is not hexadecimal");
    at = lineEnd + 2 + size + 2;
    if (buffer.length < at) return undefined;
    if (size === 0) return { length: at, status, body: Buffer.alloc(0) };
  }
}

function rawHttp1Caller(plan: LoadPlan): { call: Call; close(): void } {
  const url = new URL(plan.baseUrl);
  const host = url.hostname;
  const port = Number(url.port || 80);
  const head = plan.method.toUpperCase() === "HEAD";
  const encoded = new Map<string, Buffer>();
  const encode = (path: string, body: Buffer): Buffer => {
    let wire = encoded.get(path);
    if (!wire) {
      const headers = Object.entries({ host: url.host, ...http1Headers(plan, body) }).map(([k, v]) => `${k}: ${v}\r\n`);
      wire = Buffer.concat([Buffer.from(`${plan.method} ${path} HTTP/1.1\r\n${headers.join("")}\r\n`, "latin1"), body]);
      encoded.set(path, wire);
    }
    return wire;
  };
  interface Connection {
    socket: net.Socket;
    buffer: Buffer;
    done?: (outcome: Outcome) => void;
  }
  const idle: Connection[] = [];
  const all = new Set<Connection>();
  let closing = false;
  const open = (): Connection => {
    const c: Connection = { socket: net.connect({ host, port, noDelay: true }), buffer: Buffer.alloc(0) };
    all.add(c);
    const fail = (error: string) => {
      all.delete(c);
      const at = idle.indexOf(c);
      if (at >= 0) idle.splice(at, 1);
      c.socket.destroy();
      const done = c.done;
      c.done = undefined;
      done?.({ ok: false, error });
    };
    c.socket.on("data", (data: Buffer) => {
      c.buffer = c.buffer.length === 0 ? data : Buffer.concat([c.buffer, data]);
      const answer = http1AnswerLength(c.buffer, head);
      if (answer === undefined) return;
      if (answer instanceof Error) return fail(answer.message);
      if (c.buffer.length > answer.length) return fail(`${c.buffer.length - answer.length} bytes after the answer`);
      c.buffer = Buffer.alloc(0);
      const done = c.done;
      c.done = undefined;
      idle.push(c);
      done?.(answer.status === 200 ? { ok: true } : { ok: false, error: `http ${answer.status} ${answer.body.toString().slice(0, 200)}` });
    });
    c.socket.on("error", (err) => fail(`socket: ${err.message}`));
    // The server closed a kept-alive connection: the next call opens another.
    c.socket.on("close", () => (closing ? undefined : fail("connection closed by the server")));
    return c;
  };
  const call: Call = ({ path, body }, done) => {
    const c = idle.pop() ?? open();
    c.done = done;
    c.socket.write(encode(path, body));
  };
  return {
    call,
    close: () => {
      closing = true;
      for (const c of all) c.socket.destroy();
    },
  };
}

export function runPlan(plan: LoadPlan): Promise<LoadResult> {
  const requests: Encoded[] = plan.requests.map(({ path, body }) => ({
    path,
    body: plan.protocol === "grpc" ? grpcFrame(Buffer.from(body, "base64")) : Buffer.from(body, "utf8"),
  }));
  const caller = plan.protocol === "grpc" ? grpcCaller(plan) : plan.baseUrl.startsWith("https:") ? httpsCaller(plan) : rawHttp1Caller(plan);
  const started = performance.now();
  const measureFrom = started + plan.warmupSeconds * 1000;
  const stopAt = measureFrom + plan.durationSeconds * 1000;
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let inFlight = 0;

  return new Promise((resolve) => {
    const loop = () => {
      if (performance.now() >= stopAt) {
        if (inFlight === 0) {
          caller.close();
          latencies.sort((a, b) => a - b);
          const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
          resolve({
            tool: `node:${plan.protocol === "grpc" ? "http2" : plan.baseUrl.startsWith("https:") ? "https" : "net"} (bench/load/node-worker.ts)`,
            requests: latencies.length,
            seconds: plan.durationSeconds,
            rps: latencies.length / plan.durationSeconds,
            p50Ms: pct(50),
            p99Ms: pct(99),
            errors,
            firstError,
          });
        }
        return;
      }
      inFlight++;
      const t0 = performance.now();
      caller.call(requests[Math.floor(Math.random() * requests.length)]!, (outcome) => {
        inFlight--;
        const t1 = performance.now();
        if (outcome.ok && t1 - t0 > plan.timeoutSeconds * 1000) outcome = { ok: false, error: `slower than ${plan.timeoutSeconds} s` };
        if (!outcome.ok) {
          errors++;
          firstError ??= outcome.error;
        } else if (t1 >= measureFrom && t1 <= stopAt) {
          latencies.push(t1 - t0);
        }
        loop();
      });
    };
    for (let i = 0; i < plan.concurrency; i++) loop();
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const plan = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as LoadPlan;
  const result = await runPlan(plan);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
