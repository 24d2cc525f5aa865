// Reading a request body (or any byte source) chunk by chunk.
import { Readable } from "node:stream";
import type { Body } from "./driver.js";

/**
 * The chunks of `body`. Leaving the loop early (a mismatch, a limit) does not destroy a Readable:
 * an HTTP edge must still be able to answer on the request's connection.
 */
export async function* chunksOf(body: Body): AsyncGenerator<Uint8Array> {
  const source: AsyncIterable<unknown> = body instanceof Readable ? body.iterator({ destroyOnReturn: false }) : body;
  for await (const chunk of source) {
    // A Readable with an encoding set yields strings; everything else must already be bytes.
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (!(bytes instanceof Uint8Array)) throw new TypeError("body chunks must be bytes");
    if (bytes.byteLength > 0) yield bytes;
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
export async function* watchBody(body: Body, watch: BodyWatch): AsyncGenerator<Uint8Array> {
  const { idleMs = 0, signal } = watch;
  const chunks = chunksOf(body)[Symbol.asyncIterator]();
  let fail!: (err: unknown) => void;
  // Raced against every read; a read left pending by a failure is abandoned (the race handles its
  // eventual rejection, so it is never unhandled).
  const failed = new Promise<never>((_, reject) => (fail = reject));
  failed.catch(() => undefined);
  const onAbort = () => fail(signal?.reason);
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });

  // One timer re-armed lazily (not one per chunk): it fires at the earliest possible deadline and
  // checks whether a read has really been waiting that long.
  let waitingSince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = () => {
    timer = undefined;
    if (waitingSince === undefined) return;
    const left = waitingSince + idleMs - performance.now();
    if (left <= 0) fail(watch.idleError?.() ?? new Error(`the body delivered no byte for ${idleMs} ms`));
    else timer = setTimeout(check, left);
  };
  let reading = false;
  try {
    for (;;) {
      if (idleMs > 0) {
        waitingSince = performance.now();
        timer ??= setTimeout(check, idleMs);
      }
      reading = true;
      const next = await Promise.race([chunks.next(), failed]);
      reading = false;
      waitingSince = undefined;
      if (next.done) return;
      yield next.value;
    }
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    // A read still pending would make return() wait for it: that source is simply abandoned.
    if (!reading) await chunks.return(undefined);
  }
}
