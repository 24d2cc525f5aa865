// The webhook deliverer: every process runs one. It claims due deliveries from the queue the
// outbox fills (src/store/webhooks.ts: a lease taken with FOR UPDATE SKIP LOCKED, so replicas
// never send one delivery at once, and only the oldest pending delivery of a webhook and
// repository is ever due, so a repository's events arrive in order), POSTs them (sender.ts), and
// settles them: delivered, retried after an exponential backoff with jitter, or given up after
// WEBHOOK_RETRY_ATTEMPTS. It wakes on the outbox's notice (hub.ts), when a retry falls due, and
// every WEBHOOK_POLL_INTERVAL_MS besides. Nothing here runs on a push's path: a slow or dead
// endpoint costs its own queue time, never a client's.
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { WebhookSettings } from "../config.js";
import { UnopenableCredential, type Sealer } from "../secrets.js";
import type { ClaimedDelivery, DeliveryOutcome, WebhookStore } from "../store/webhooks.js";
import { backoffMs } from "../upstream/transport.js";
import { cloudEvent } from "./cloudevent.js";
import type { EventHub } from "./hub.js";
import type { SendOutcome, WebhookSender } from "./sender.js";

/** How long past the request's own deadline a claimed delivery stays this process's. */
const LEASE_MARGIN_MS = 30_000;
/** Wakes within this long share one look at the queue. */
const WAKE_COALESCE_MS = 50;

export class WebhookDeliverer {
  private readonly inFlight = new Set<Promise<void>>();
  private settling: { outcome: DeliveryOutcome; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private filling = false;
  private again = false;
  private soon = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  /** The retries this process scheduled (epoch ms); other processes' retries are theirs, or the poll's. */
  private retries: number[] = [];
  private unsubscribe?: () => void;

  constructor(
    private readonly store: WebhookStore,
    private readonly sender: WebhookSender,
    private readonly sealer: Sealer,
    private readonly settings: WebhookSettings,
    private readonly hub: EventHub,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unsubscribe = this.hub.subscribe(() => this.wake());
    this.wake();
  }

  /** Stops claiming, and waits for the deliveries in flight (each bounded by WEBHOOK_TIMEOUT_MS). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    while (this.filling || this.inFlight.size > 0) {
      await Promise.race([...this.inFlight, new Promise((resolve) => setTimeout(resolve, 20))]);
    }
  }

  /**
   * Look at the queue soon (a notice, a delivery settled, a timer). Wakes that come together (the
   * notices of a burst of pushes, deliveries settling one after the other) share one look.
   */
  wake(): void {
    if (this.stopped || this.soon) return;
    this.soon = true;
    setTimeout(() => {
      this.soon = false;
      if (this.filling) this.again = true;
      else void this.fill();
    }, WAKE_COALESCE_MS).unref();
  }

  private async fill(): Promise<void> {
    this.filling = true;
    try {
      do {
        this.again = false;
        const room = this.settings.concurrency - this.inFlight.size;
        if (room <= 0) break;
        const claimed = await this.store.claim(room, this.settings.timeoutMs + LEASE_MARGIN_MS, randomUUID());
        for (const delivery of claimed) this.launch(delivery);
        // A full batch: there may be more.
        if (claimed.length === room) this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.warn({ err }, "webhook deliveries: could not read the queue; trying again later");
    } finally {
      this.filling = false;
    }
    // Next look without a notice: this process's earliest retry, or the poll (other processes'
    // retries, leases of processes that died, notices lost).
    const now = Date.now();
    this.retries = this.retries.filter((at) => at > now);
    this.schedule(Math.max(10, Math.min(this.settings.pollIntervalMs, ...this.retries.map((at) => at - now))));
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.wake(), ms);
    this.timer.unref();
  }

  private launch(delivery: ClaimedDelivery): void {
    const running: Promise<void> = this.deliver(delivery)
      .catch((err: unknown) => this.log.warn({ err, webhookId: delivery.webhookId, deliveryId: delivery.id }, "webhook delivery could not be settled"))
      .finally(() => {
        this.inFlight.delete(running);
        this.wake();
      });
    this.inFlight.add(running);
  }

  private async deliver(delivery: ClaimedDelivery): Promise<void> {
    const outcome = await this.attempt(delivery);
    const context = { webhookId: delivery.webhookId, deliveryId: delivery.id, eventId: delivery.event.id, attempt: delivery.attempt };
    if (outcome.delivered) {
      await this.settle({ id: delivery.id, leaseToken: delivery.leaseToken, delivered: true, responseStatus: outcome.status });
      this.log.debug({ ...context, status: outcome.status, ms: Math.round(outcome.durationMs) }, "webhook delivered");
      return;
    }
    const retry = !outcome.permanent && delivery.attempt < this.settings.retry.attempts;
    const retryInMs = retry ? backoffMs(this.settings.retry, delivery.attempt) : undefined;
    await this.settle({
      id: delivery.id,
      leaseToken: delivery.leaseToken,
      delivered: false,
      responseStatus: outcome.status,
      error: outcome.error ?? "failed",
      retryInMs,
    });
    if (retryInMs !== undefined) this.retries.push(Date.now() + retryInMs + 5);
    this.log[retry ? "info" : "warn"](
      { ...context, status: outcome.status, error: outcome.error, retryInMs: retryInMs && Math.round(retryInMs) },
      retry ? "webhook delivery failed; will retry" : "webhook delivery failed for good",
    );
  }

  /**
   * Records an attempt's outcome; those that end within a few milliseconds of each other (the
   * deliveries of one event to several webhooks) are written in one statement.
   */
  private settle(outcome: DeliveryOutcome): Promise<void> {
    return new Promise((resolve, reject) => {
      this.settling.push({ outcome, resolve, reject });
      if (this.settling.length === 1) setTimeout(() => void this.flushSettles(), WAKE_COALESCE_MS);
    });
  }

  private async flushSettles(): Promise<void> {
    const batch = this.settling.splice(0, this.settling.length);
    try {
      const settled = await this.store.settle(batch.map((b) => b.outcome));
      for (const b of batch) {
        // Its lease ran out and another process claimed it: that one's outcome counts.
        if (!settled.has(b.outcome.id)) this.log.info({ deliveryId: b.outcome.id }, "webhook delivery outcome not recorded: its lease was taken over");
        b.resolve();
      }
    } catch (err) {
      for (const b of batch) b.reject(err);
    }
  }

  private async attempt(delivery: ClaimedDelivery): Promise<SendOutcome> {
    let secret: string;
    try {
      secret = this.sealer.openText(delivery.secretSealed);
    } catch (err) {
      if (!(err instanceof UnopenableCredential)) throw err;
      return {
        delivered: false,
        error: `the webhook's secret cannot be opened (${err.reason}): check SECRET_KEY and SECRET_KEY_PREVIOUS, or set the secret again`,
        durationMs: 0,
      };
    }
    return this.sender.send(
      { webhookId: delivery.webhookId, url: delivery.url, secret, deliveryId: delivery.id, position: delivery.event.position },
      cloudEvent(delivery.event),
    );
  }
}
