// A closed-loop load generator in its own process: `node --import tsx node-worker.ts plan.json`
// prints one LoadResult as JSON. gRPC is spoken over node:http2 directly (length-prefixed
// frames, grpc-status from the trailers) rather than through a client library, so the client
// costs as little CPU as Node allows; HTTP/1.1 (Connect JSON, REST) is the fallback when wrk is absent.
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
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

function http1Caller(plan: LoadPlan): { call: Call; close(): void } {
  const secure = plan.baseUrl.startsWith("https:");
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: plan.concurrency, ca: plan.ca })
    : new http.Agent({ keepAlive: true, maxSockets: plan.concurrency });
  const request = secure ? https.request : http.request;
  const base: Record<string, string> = { ...(plan.protocol === "connect" ? { "connect-protocol-version": "1" } : {}), ...plan.headers };
  const call: Call = ({ path, body }, done) => {
    const headers: Record<string, string | number> = { ...base };
    if (body.length > 0) {
      headers["content-length"] = body.length;
      // JSON unless the plan names another type (the token endpoint's OAuth2 form).
      if (!Object.keys(headers).some((k) => k.toLowerCase() === "content-type")) headers["content-type"] = "application/json";
    }
    const req = request(new URL(path, plan.baseUrl), { method: plan.method, agent, headers }, (res) => {
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

export function runPlan(plan: LoadPlan): Promise<LoadResult> {
  const requests: Encoded[] = plan.requests.map(({ path, body }) => ({
    path,
    body: plan.protocol === "grpc" ? grpcFrame(Buffer.from(body, "base64")) : Buffer.from(body, "utf8"),
  }));
  const caller = plan.protocol === "grpc" ? grpcCaller(plan) : http1Caller(plan);
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
            tool: `node:${plan.protocol === "grpc" ? "http2" : "http"} (bench/load/node-worker.ts)`,
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
