// A webhook endpoint on loopback for the tests: records every request (headers, exact body bytes,
// arrival order), answers with whatever status the test chooses per request, and can go down and
// come back on the same port. Signatures are checked here the way README tells receivers to, with
// node:crypto alone (not the service's own code), so a test fails if the documented check fails.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed (a CloudEvent), or undefined when it is not JSON. */
  event: ReceivedEvent | undefined;
  /** The status this request was answered with. */
  status: number;
}

export interface ReceivedEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: string;
  data: Record<string, unknown> & { tag?: string; digest?: string; actor?: { id: string | null; name: string } };
}

/**
 * README's receiver check: `x-artifact-signature: t=<unix>,v1=<hex>`, the hex an HMAC-SHA256 with the
 * secret over `<t>.<raw body>`; compared in constant time; the timestamp within five minutes.
 */
export function verifiesWith(secret: string, request: Pick<ReceivedRequest, "headers" | "body">): boolean {
  const header = String(request.headers["x-artifact-signature"] ?? "");
  const fields = Object.fromEntries(header.split(",").map((kv) => kv.split("=", 2) as [string, string]));
  const t = fields.t;
  const v1 = fields.v1;
  if (!t || !v1 || !/^[0-9a-f]{64}$/.test(v1)) return false;
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const expected = createHmac("sha256", secret).update(`${t}.`).update(request.body).digest();
  return timingSafeEqual(expected, Buffer.from(v1, "hex"));
}

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** The status of the answer to each request (default 200); may be changed at any time. */
  answer: (request: Omit<ReceivedRequest, "status">, index: number) => number = () => 200;
  /** Milliseconds to wait before answering (a slow endpoint). */
  delayMs = 0;
  private server: Server;
  private port = 0;

  private constructor() {
    this.server = this.create();
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await receiver.listen(0);
    return receiver;
  }

  /** The endpoint's URL (path /hook). */
  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Requests answered 2xx, in arrival order: what the endpoint accepted. */
  get accepted(): ReceivedRequest[] {
    return this.requests.filter((r) => r.status >= 200 && r.status < 300);
  }

  /** Stops listening and drops open connections: the endpoint is down (connections are refused). */
  async down(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    this.server = this.create();
    await this.listen(this.port);
  }

  /** Resolves once `predicate` holds for the requests so far (polling), or fails after `timeoutMs`. */
  async waitFor(predicate: (requests: ReceivedRequest[]) => boolean, timeoutMs = 15_000, what = "the expected webhook requests"): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.requests)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${this.requests.length} request(s): ${this.describe()}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  describe(): string {
    return this.requests.map((r) => `${r.status} ${r.event?.type ?? "?"} ${r.event?.subject ?? ""}:${r.event?.data.tag ?? ""}`).join("; ");
  }

  async stop(): Promise<void> {
    if (this.server.listening) await this.down();
  }

  private create(): Server {
    return createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks);
        let event: ReceivedEvent | undefined;
        try {
          event = JSON.parse(body.toString("utf8")) as ReceivedEvent;
        } catch {
          event = undefined;
        }
        const request = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body, event };
        const status = this.answer(request, this.requests.length);
        this.requests.push({ ...request, status });
        setTimeout(() => {
          res.writeHead(status, { "content-type": "text/plain" });
          res.end(status >= 400 ? `receiver says ${status}` : "ok");
        }, this.delayMs);
      });
    });
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }
}
