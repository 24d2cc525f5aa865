// One process's ear on the outbox: a LISTEN on the "artifact_events" channel (migration 0009's
// trigger notifies it when a transaction that wrote events commits), shared by every live
// WatchEvents stream and the webhook deliverer of the process. A notice says only "something was
// committed": listeners then read the events table from where they are. While the listening
// connection is down, notices are lost: listeners poll instead (pollMs), and are woken when it
// is back.
import type { DatabaseHandle, Subscription } from "../db/database.js";

const EVENTS_CHANNEL = "artifact_events";

export type WaitOutcome = "notice" | "timeout" | "closed";

export class EventHub {
  /** Counts notices (and reconnections, after which notices may have been lost). */
  private generation = 0;
  private readonly waiters = new Set<() => void>();
  private readonly subscribers = new Set<() => void>();
  private subscription?: Subscription;
  private listening = false;
  private stopped = false;

  /** Starts listening; resolves once the first LISTEN is in place or has failed (it keeps retrying). */
  async start(database: Pick<DatabaseHandle, "listen">): Promise<void> {
    this.subscription = await database.listen(
      EVENTS_CHANNEL,
      () => this.notice(),
      (listening) => {
        this.listening = listening;
        // Back after a loss: what was committed meanwhile was never announced.
        if (listening) this.notice();
      },
    );
  }

  /** Whether notices reach this process now (otherwise, poll). */
  get live(): boolean {
    return this.listening && !this.stopped;
  }

  get closed(): boolean {
    return this.stopped;
  }

  /** The current generation: wait(since) returns at once when a notice came after it was read. */
  get mark(): number {
    return this.generation;
  }

  /** Called on every notice (the webhook deliverer); returns the unsubscribe function. */
  subscribe(onNotice: () => void): () => void {
    this.subscribers.add(onNotice);
    return () => this.subscribers.delete(onNotice);
  }

  /** Resolves at the first notice after `since` (at once if one came already), after `ms`, or when the hub stops or `signal` aborts. */
  wait(since: number, ms: number, signal?: AbortSignal): Promise<WaitOutcome> {
    if (this.stopped || signal?.aborted) return Promise.resolve("closed");
    if (this.generation !== since) return Promise.resolve("notice");
    return new Promise((resolve) => {
      const finish = (outcome: WaitOutcome) => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        signal?.removeEventListener("abort", aborted);
        resolve(outcome);
      };
      const wake = () => finish(this.stopped ? "closed" : "notice");
      const aborted = () => finish("closed");
      const timer = setTimeout(() => finish("timeout"), ms);
      this.waiters.add(wake);
      signal?.addEventListener("abort", aborted, { once: true });
    });
  }

  /** Ends every wait (streams end: the server is stopping) and stops listening. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const wake of [...this.waiters]) wake();
    await this.subscription?.close();
  }

  private notice(): void {
    this.generation++;
    for (const wake of [...this.waiters]) wake();
    for (const subscriber of this.subscribers) subscriber();
  }
}
