// Pull events (EVENTS_PULL). A pull is no change and has no transaction to ride in; writing an event
// on its path would cost every pull a database write (pulls are the hot path: most are answered from
// memory, src/store/hot-cache.ts), and take the outbox's lock. So pulls are off by default, may be
// sampled, and are written in batches after the answers went out: at most once a second, or
// every 500 pulls. A process that dies loses the last second's pull events; nothing else.
import type { Logger } from "pino";
import { EVENT_TYPES, type EventActor } from "../domain/events.js";
import type { PullEvents } from "../oci/deps.js";
import type { EventStore, NewEvent } from "../store/events.js";

const FLUSH_MS = 1_000;
const BATCH = 500;
/** Pulls kept while the database does not take them; past this, new ones are dropped (and counted in the log). */
const MAX_QUEUED = 20_000;
const ANONYMOUS: EventActor = { id: null, name: "anonymous" };

type Pull = Parameters<PullEvents["record"]>[0];

export class PullRecorder implements PullEvents {
  private queue: Pull[] = [];
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private dropped = 0;

  constructor(
    private readonly store: EventStore,
    /** The share of pulls recorded, above 0, at most 1. */
    private readonly rate: number,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  sampled(): boolean {
    return this.rate >= 1 || this.random() < this.rate;
  }

  record(pull: Pull): void {
    if (this.queue.length >= MAX_QUEUED) {
      this.dropped++;
      return;
    }
    this.queue.push(pull);
    if (this.queue.length >= BATCH) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes what is queued (the server calls it when stopping). */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flushing;
    if (this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.queue.length);
    this.flushing = this.write(batch).finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private async write(batch: Pull[]): Promise<void> {
    const events: NewEvent[] = await Promise.all(
      batch.map(async (p) => ({
        type: EVENT_TYPES.imagePulled,
        at: { image: { registry: p.name.registry, namespace: p.name.namespace, repository: p.name.repository } },
        data: { tag: p.tag, digest: p.digest, mediaType: p.mediaType, sizeBytes: p.sizeBytes },
        actor: await p.actor().catch(() => ANONYMOUS),
      })),
    );
    try {
      for (let i = 0; i < events.length; i += BATCH) await this.store.write(events.slice(i, i + BATCH));
    } catch (err) {
      this.log.warn({ err, pulls: events.length }, "pull events could not be written; they are lost");
    }
    if (this.dropped > 0) {
      this.log.warn({ dropped: this.dropped }, "pull events dropped: more were queued than the database took");
      this.dropped = 0;
    }
  }
}
