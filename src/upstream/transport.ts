// HTTP plumbing for upstream requests: undici dispatchers that keep connections per origin,
// one-shot requests with the three timeouts, bounded body reads, and retry with backoff.
import { PassThrough, type Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { isIP } from "node:net";
import { Agent, buildConnector, request, type Dispatcher } from "undici";
import type { AddressPolicy } from "./address-policy.js";
import { BulkTransport } from "./bulk.js";
import { UpstreamError } from "./errors.js";
import type { RetryPolicy, UpstreamTimeouts } from "./settings.js";

const CONNECTIONS_PER_ORIGIN = 64;
const KEEP_ALIVE_MS = 10_000;

/**
 * undici Agents shared by many clients: an Agent keeps one connection pool per origin, so every
 * client of the same upstream (old and new settings versions, the token realm, storage redirect
 * targets) reuses its connections. Certificate checking is a property of a connection, so it
 * picks the Agent. Every connection any of them opens passes the address policy.
 */
export class Dispatchers {
  private readonly agents = new Map<boolean, Agent>();
  private readonly bulks = new Map<boolean, BulkTransport>();

  constructor(private readonly options: { policy: AddressPolicy; timeouts: UpstreamTimeouts }) {}

  get(insecure: boolean): Dispatcher {
    let agent = this.agents.get(insecure);
    if (!agent) {
      const { connectMs, headersMs, bodyIdleMs } = this.options.timeouts;
      agent = new Agent({
        connect: fencedConnector(this.options.policy, { timeout: connectMs, rejectUnauthorized: !insecure }),
        connections: CONNECTIONS_PER_ORIGIN,
        keepAliveTimeout: KEEP_ALIVE_MS,
        // Each request passes its own; the same values.
        headersTimeout: headersMs,
        bodyTimeout: bodyIdleMs,
      });
      this.agents.set(insecure, agent);
    }
    return agent;
  }

  /** Blob GETs: their own connections, read in big buffers (src/upstream/bulk.ts). */
  bulk(insecure: boolean): BulkTransport {
    let bulk = this.bulks.get(insecure);
    if (!bulk) {
      bulk = new BulkTransport({ ...this.options, insecure, keepAliveMs: KEEP_ALIVE_MS });
      this.bulks.set(insecure, bulk);
    }
    return bulk;
  }

  async close(): Promise<void> {
    for (const bulk of this.bulks.values()) bulk.close();
    this.bulks.clear();
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}

/** Connectors kept per destination port; past this many the oldest is dropped (its sockets live on). */
const MAX_PORT_CONNECTORS = 64;

/**
 * undici's connector with the address policy in front of every connection: an IP literal is
 * judged before dialling (Node skips `lookup` for those), a host name through the `lookup` Node
 * calls with the addresses it is about to dial. The own-listener rule needs the port, which Node
 * does not pass to `lookup`, hence one connector per port.
 */
function fencedConnector(policy: AddressPolicy, options: buildConnector.BuildOptions): buildConnector.connector {
  const byPort = new Map<number, buildConnector.connector>();
  return (opts, callback) => {
    const port = Number(opts.port) || (opts.protocol === "https:" ? 443 : 80);
    if (isIP(opts.hostname)) {
      const refusal = policy.check(opts.hostname, port, opts.hostname);
      if (refusal) {
        // Asynchronously, as a failed dial would: undici expects the callback after it returns.
        process.nextTick(() => callback(refusal, null));
        return;
      }
    }
    let connect = byPort.get(port);
    if (!connect) {
      if (byPort.size >= MAX_PORT_CONNECTORS) byPort.delete(byPort.keys().next().value!);
      connect = buildConnector({ ...options, lookup: policy.lookupFor(port) });
      byPort.set(port, connect);
    }
    connect(opts, callback);
  };
}

export type Headers = Record<string, string | string[] | undefined>;

export interface RawResponse {
  status: number;
  headers: Headers;
  body: Readable;
}

export async function send(
  dispatcher: Dispatcher,
  timeouts: UpstreamTimeouts,
  req: { url: URL; method: "GET" | "HEAD"; headers: Record<string, string>; signal?: AbortSignal },
): Promise<RawResponse> {
  const res = await request(req.url, {
    dispatcher,
    method: req.method,
    headers: req.headers,
    signal: req.signal,
    headersTimeout: timeouts.headersMs,
    bodyTimeout: timeouts.bodyIdleMs,
  });
  return { status: res.statusCode, headers: res.headers, body: res.body };
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Frees the connection without reading what remains of a body we do not want. */
export async function discard(body: Readable): Promise<void> {
  const b = body as Readable & { dump?: (o?: { limit: number }) => Promise<void> };
  try {
    if (b.dump) await b.dump({ limit: 64 * 1024 });
    else b.destroy();
  } catch {
    // the connection is gone anyway
  }
}

export class TooLarge extends Error {
  constructor(readonly limit: number) {
    super(`larger than ${limit} bytes`);
  }
}

/** The whole body, refusing more than `limit` bytes (throws TooLarge); network errors propagate. */
export async function readAll(body: Readable, limit: number, contentLength?: string): Promise<Buffer> {
  if (contentLength !== undefined && Number(contentLength) > limit) {
    body.destroy();
    throw new TooLarge(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      throw new TooLarge(limit);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * Hands a response body to a caller: backpressure passes through (memory stays flat whatever the
 * size), network errors become domain errors, and a caller that stops reading releases the socket.
 */
export function forwardBody(body: Readable, mapError: (err: unknown) => Error): Readable {
  const out = new PassThrough({ highWaterMark: 64 * 1024 });
  body.on("error", (err) => out.destroy(mapError(err)));
  out.on("close", () => {
    if (!body.readableEnded) body.destroy();
  });
  body.pipe(out);
  return out;
}

/**
 * How long to wait after failed try `n` (1 for the first): exponential from the base delay, at most
 * the max, with jitter (half to all of it) so clients that failed together do not retry together.
 * Webhook deliveries back off the same way (src/events/delivery.ts).
 */
export function backoffMs(policy: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">, n: number, random = Math.random): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(n - 1, 40)) * (0.5 + random() / 2);
}

/** Runs `attempt` until it succeeds, fails for good, or the policy's tries are spent. */
export async function withRetry<T>(policy: RetryPolicy, signal: AbortSignal | undefined, attempt: () => Promise<T>, random = Math.random): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof UpstreamError) || !err.retryable || n >= policy.attempts || signal?.aborted) throw err;
      // The upstream may have said when to come back.
      const delay = err.retryAfterMs ?? backoffMs(policy, n, random);
      if (delay > policy.maxDelayMs) throw err;
      await sleep(delay, undefined, { signal });
    }
  }
}
