// One webhook request: a CloudEvent POSTed in structured mode, signed (signature.ts), through the
// same network fence as REMOTE registries' upstreams (src/upstream/address-policy.ts, with its own
// wording), with a deadline on the whole request. The deliverer (delivery.ts) and TestWebhook use it.
import { isIP } from "node:net";
import { request } from "undici";
import { printableLine } from "../domain/text.js";
import { parseWebhookUrl } from "../domain/webhook-url.js";
import type { AddressPolicy } from "../upstream/address-policy.js";
import { AddressRefused } from "../upstream/address-policy.js";
import { Dispatchers } from "../upstream/transport.js";
import { CLOUDEVENTS_CONTENT_TYPE, type CloudEvent } from "./cloudevent.js";
import { SIGNATURE_HEADER, signatureHeader } from "./signature.js";

export interface SendOutcome {
  /** The endpoint answered 2xx. */
  delivered: boolean;
  /** Its HTTP status, when it answered. */
  status?: number;
  /** Why it was not delivered, for people (never the URL's path or query: they may hold a token). */
  error?: string;
  /** No retry can help until the operator changes something (the network policy refused the address). */
  permanent?: boolean;
  durationMs: number;
}

export interface SendTarget {
  webhookId: string;
  url: string;
  secret: string;
  deliveryId?: string;
  position?: number;
}

/** Bytes of an answer's body kept for a failure's message. */
const ERROR_BODY_BYTES = 200;
const USER_AGENT = "artifact-service-webhook/1";

export class WebhookSender {
  private readonly dispatchers: Dispatchers;

  constructor(
    private readonly policy: AddressPolicy,
    private readonly timeoutMs: number,
  ) {
    this.dispatchers = new Dispatchers({ policy, timeouts: { connectMs: timeoutMs, headersMs: timeoutMs, bodyIdleMs: timeoutMs } });
  }

  async send(target: SendTarget, event: CloudEvent): Promise<SendOutcome> {
    const started = performance.now();
    const done = (outcome: Omit<SendOutcome, "durationMs">): SendOutcome => ({ ...outcome, durationMs: performance.now() - started });
    const url = new URL(target.url);
    const body = JSON.stringify(event);
    const headers: Record<string, string> = {
      "content-type": CLOUDEVENTS_CONTENT_TYPE,
      "user-agent": USER_AGENT,
      [SIGNATURE_HEADER]: signatureHeader(target.secret, body),
      "x-artifact-webhook-id": target.webhookId,
    };
    if (target.deliveryId) headers["x-artifact-delivery-id"] = target.deliveryId;
    if (target.position !== undefined) headers["x-artifact-event-position"] = String(target.position);
    try {
      const res = await request(url, {
        dispatcher: this.dispatchers.get(false),
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const status = res.statusCode;
      if (status >= 200 && status < 300) {
        await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
        return done({ delivered: true, status });
      }
      const text = await snippet(res.body);
      const redirect = status >= 300 && status < 400 ? " (redirects are not followed)" : "";
      return done({ delivered: false, status, error: `HTTP ${status}${redirect}${text ? `: ${text}` : ""}` });
    } catch (err) {
      if (err instanceof AddressRefused || (err as { cause?: unknown }).cause instanceof AddressRefused) {
        const refusal = err instanceof AddressRefused ? err : (err as { cause: AddressRefused }).cause;
        return done({ delivered: false, error: refusal.message, permanent: true });
      }
      return done({ delivered: false, error: describe(err, url, this.timeoutMs) });
    }
  }

  /**
   * Why the network policy would refuse connections to `url` now (its host resolved and judged as
   * a delivery would be), or undefined. A name that does not resolve is not refused: it may later.
   */
  async refusal(url: string): Promise<AddressRefused | undefined> {
    const parsed = parseWebhookUrl(url);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(parsed.port) || (parsed.protocol === "https:" ? 443 : 80);
    if (isIP(host)) return this.policy.check(host, port, host);
    return new Promise((resolve) => {
      this.policy.lookupFor(port)(host, { all: true }, (err) => resolve(err instanceof AddressRefused ? err : undefined));
    });
  }

  close(): Promise<void> {
    return this.dispatchers.close();
  }
}

/** The start of a failure's answer, as one line of printable text. */
async function snippet(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= ERROR_BODY_BYTES) break;
    }
  } catch {
    // the answer broke off: what arrived is enough
  } finally {
    body.destroy();
  }
  return printableLine(Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString("utf8"));
}

function errorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

/** A network failure in words that name the endpoint by its origin (its path or query may hold a token). */
function describe(err: unknown, url: URL, timeoutMs: number): string {
  const where = url.host;
  const code = errorCode(err) ?? "";
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) return `${where} did not answer within ${timeoutMs} ms`;
  switch (code) {
    case "ECONNREFUSED":
      return `${where} refused the connection (nothing listens there, or it is down)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return `${where}: the host name does not resolve (DNS ${code})`;
    case "UND_ERR_CONNECT_TIMEOUT":
      return `${where} did not accept a connection within ${timeoutMs} ms`;
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return `${where} did not answer within ${timeoutMs} ms`;
    case "ECONNRESET":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return `${where} closed the connection before answering`;
  }
  if (/^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_)/.test(code)) return `${where}: TLS failed (${code})`;
  return `${where}: ${code || (err instanceof Error ? err.name : "request failed")}`;
}
