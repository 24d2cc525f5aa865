// Reading a request body (or any byte source) chunk by chunk. An upload's body passes through
// several readers (the edge's idle watch, the store's lease watch, the driver), once per chunk of
// the request (skopeo sends 32 KiB chunks: 16,384 of them for 512 MiB), so each layer here is a
// plain iterator that costs one promise per chunk: no async generator, no Promise.race, and no
// concatenation of queued chunks (a Readable's own iterator joins them into a new buffer).
import { Readable, finished } from "node:stream";
import type { Body } from "./driver.js";

/** Bytes a Readable may have queued here before it is paused (its own buffer comes on top). */
const QUEUE_HIGH_WATER = 1 << 20;

type Waiter = { resolve: (result: IteratorResult<Uint8Array>) => void; reject: (err: unknown) => void };

const DONE: IteratorResult<Uint8Array> = { value: undefined, done: true };

/** Bytes checked to be bytes and never empty: chunksOf() passes them on as they are. */
class ByteChunks implements AsyncIterable<Uint8Array> {
  constructor(private readonly open: () => AsyncIterator<Uint8Array>) {}
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.open();
  }
}

/**
 * The chunks of `body`. Leaving the loop early (a mismatch, a limit) does not destroy a Readable:
 * an HTTP edge must still be able to answer on the request's connection.
 */
export function chunksOf(body: Body): AsyncIterable<Uint8Array> {
  if (body instanceof ByteChunks) return body;
  if (body instanceof Readable) return new ByteChunks(() => new ReadableChunks(body));
  return new ByteChunks(() => checkedChunks(body));
}

function toBytes(chunk: unknown): Uint8Array {
  // A Readable with an encoding set yields strings; everything else must already be bytes.
  const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
  if (!(bytes instanceof Uint8Array)) throw new TypeError("body chunks must be bytes");
  return bytes;
}

async function* checkedChunks(body: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    const bytes = toBytes(chunk);
    if (bytes.byteLength > 0) yield bytes;
  }
}

/**
 * A Readable's chunks as its 'data' events deliver them, paused while more than
 * QUEUE_HIGH_WATER wait here (backpressure). Ends with the stream's end, fails with its error
 * (or a premature close); return() stops listening and leaves the stream paused, not destroyed.
 */
class ReadableChunks implements AsyncIterator<Uint8Array> {
  private queue: Uint8Array[] = [];
  private head = 0;
  private queued = 0;
  private ended = false;
  private closed = false;
  private failure: { error: unknown } | undefined;
  private waiting: Waiter | undefined;
  private readonly stopWatching: () => void;

  constructor(private readonly stream: Readable) {
    this.stopWatching = finished(stream, { writable: false }, (err) => {
      if (err) this.failure ??= { error: err };
      else this.ended = true;
      this.settleWaiter();
    });
    stream.on("data", this.onData);
    stream.resume();
  }

  private readonly onData = (chunk: unknown): void => {
    let bytes: Uint8Array;
    try {
      bytes = toBytes(chunk);
    } catch (error) {
      this.failure ??= { error };
      this.stream.pause();
      this.settleWaiter();
      return;
    }
    if (bytes.byteLength === 0) return;
    const waiter = this.waiting;
    if (waiter) {
      this.waiting = undefined;
      waiter.resolve({ value: bytes, done: false });
      return;
    }
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    if (this.queued >= QUEUE_HIGH_WATER) this.stream.pause();
  };

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head++]!;
      this.queued -= value.byteLength;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      }
      if (!this.closed && this.queued < QUEUE_HIGH_WATER / 2 && this.stream.isPaused() && this.failure === undefined) this.stream.resume();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure) {
      this.close();
      return Promise.reject(this.failure.error);
    }
    if (this.ended || this.closed) {
      this.close();
      return Promise.resolve(DONE);
    }
    if (this.stream.isPaused()) this.stream.resume();
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    this.close();
    return Promise.resolve(DONE);
  }

  /** A read waiting when the stream ended or failed gets the outcome (queued chunks are delivered first: none are queued while one waits). */
  private settleWaiter(): void {
    const waiter = this.waiting;
    if (!waiter) return;
    this.waiting = undefined;
    if (this.failure) waiter.reject(this.failure.error);
    else waiter.resolve(DONE);
    this.close();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stream.off("data", this.onData);
    this.stopWatching();
    if (!this.stream.destroyed) this.stream.pause();
    this.queue = [];
    this.head = 0;
    this.queued = 0;
    const waiter = this.waiting;
    this.waiting = undefined;
    waiter?.resolve(DONE);
  }
}

/**
 * `body`, which must carry exactly `bytes` bytes: a chunk that would take it past them fails with
 * `error(undefined)` before it is passed on, an end short of them with `error(received)`. A reader
 * that is all or nothing (an upload's append) then keeps no byte of a body that disagrees with
 * the length it declared.
 */
export function exactly(body: Body, bytes: number, error: (received: number | undefined) => Error): AsyncIterable<Uint8Array> {
  return new ByteChunks(() => new ExactChunks(chunksOf(body)[Symbol.asyncIterator](), bytes, error));
}

class ExactChunks implements AsyncIterator<Uint8Array> {
  private received = 0;

  constructor(
    private readonly inner: AsyncIterator<Uint8Array>,
    private readonly bytes: number,
    private readonly error: (received: number | undefined) => Error,
  ) {}

  next(): Promise<IteratorResult<Uint8Array>> {
    return this.inner.next().then((result) => {
      if (result.done) {
        if (this.received !== this.bytes) throw this.error(this.received);
        return result;
      }
      this.received += result.value.byteLength;
      if (this.received > this.bytes) {
        // A reader whose next() failed does not call return(): stop the source here.
        void this.inner.return?.(undefined)?.catch(() => undefined);
        throw this.error(undefined);
      }
      return result;
    });
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    return this.inner.return?.(undefined) ?? Promise.resolve(DONE);
  }
}

/** A byte budget: `bytes` more may be accepted, past that `error()` is thrown. */
export interface Limit {
  bytes: number;
  error: () => Error;
}

export interface BodyWatch {
  /** Cut the body when it delivers no byte for this long while being read (0 or absent: never). */
  idleMs?: number;
  /** The error an idle body fails with. */
  idleError?: () => Error;
  /** Cut the body when this fires; it fails with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * `body`, failing as soon as it stalls (no byte for `idleMs` while the reader waits for one) or
 * `signal` fires, instead of waiting forever for a sender that stopped. Only time spent waiting
 * for the sender counts: a reader that is slow to ask (a disk write, backpressure) is not idle.
 * The source is neither destroyed nor read further: an HTTP edge can still answer on the request's
 * connection (and then close it, since the rest of the body will not be drained).
 */
export function watchBody(body: Body, watch: BodyWatch): AsyncIterable<Uint8Array> {
  return new ByteChunks(() => new WatchedChunks(chunksOf(body)[Symbol.asyncIterator](), watch));
}

class WatchedChunks implements AsyncIterator<Uint8Array> {
  private readonly idleMs: number;
  private failure: { error: unknown } | undefined;
  private pending: Waiter | undefined;
  private finished = false;
  // One timer re-armed lazily (not one per chunk): it fires at the earliest possible deadline and
  // checks whether a read has really been waiting that long.
  private waitingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly inner: AsyncIterator<Uint8Array>,
    private readonly watch: BodyWatch,
  ) {
    this.idleMs = watch.idleMs ?? 0;
    const { signal } = watch;
    if (signal?.aborted) this.fail(signal.reason);
    signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => this.fail(this.watch.signal?.reason);

  private readonly check = (): void => {
    this.timer = undefined;
    if (this.waitingSince === undefined) return;
    const left = this.waitingSince + this.idleMs - performance.now();
    if (left <= 0) this.fail(this.watch.idleError?.() ?? new Error(`the body delivered no byte for ${this.idleMs} ms`));
    else this.timer = setTimeout(this.check, left);
  };

  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.finished) return Promise.resolve(DONE);
    if (this.idleMs > 0) {
      this.waitingSince = performance.now();
      this.timer ??= setTimeout(this.check, this.idleMs);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.pending = waiter;
      this.inner.next().then(
        (result) => {
          if (this.pending !== waiter) return; // failed meanwhile: already rejected
          this.pending = undefined;
          this.waitingSince = undefined;
          if (result.done) this.finish();
          resolve(result);
        },
        (err: unknown) => {
          if (this.pending !== waiter) return;
          this.pending = undefined;
          this.waitingSince = undefined;
          this.finish();
          reject(err);
        },
      );
    });
  }

  return(): Promise<IteratorResult<Uint8Array>> {
    const waiter = this.pending;
    this.pending = undefined;
    this.finish();
    waiter?.resolve(DONE);
    return Promise.resolve(DONE);
  }

  private fail(error: unknown): void {
    if (this.finished) return;
    this.failure = { error };
    const waiter = this.pending;
    this.pending = undefined;
    // A read still pending is abandoned (its source is not read further).
    this.finish();
    waiter?.reject(error);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waitingSince = undefined;
    this.watch.signal?.removeEventListener("abort", this.onAbort);
    // Not awaited: an inner read still pending would make return() wait for it. A Readable's
    // iterator stops listening at once and leaves the stream paused.
    void this.inner.return?.(undefined)?.catch(() => undefined);
  }
}
