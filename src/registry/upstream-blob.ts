// Blob bytes from an upstream: a whole blob verified while it streams, to a reader and into the
// cache at once (transfer), and a part read directly, length-checked (directPart). Nothing here
// knows a protocol: readers are Writables, the cache is the hosted repository's upload API.
import { PassThrough, pipeline, Transform, type Readable, type TransformCallback, type Writable } from "node:stream";
import type { Logger } from "pino";
import { resolveRange, sliceOf, type ByteRange, type RangeRequest } from "../domain/byte-range.js";
import { verifyDigest } from "../domain/digest.js";
import { giveBack } from "../domain/lent-buffers.js";
import { dataLoss, isDomainError, RangeNotSatisfiable, unknownFault } from "../domain/errors.js";
import type { Blob, UpstreamClient } from "../upstream/client.js";
import { relay, StreamedBlob, write, writeAll } from "./blob-content.js";
import type { BlobContent } from "./index.js";

/** Where a transfer keeps the blob: the pull-through cache (HostedRepository.keepBlob). */
export interface BlobCacheWriter {
  /**
   * Stores the blob from `body`, which ends only once every byte matched the digest (it is
   * destroyed with an error otherwise): nothing is kept unless it ends.
   */
  keepBlob(digest: string, size: number, body: AsyncIterable<Buffer>, written?: (bytes: number) => void): Promise<void>;
}

/**
 * Chunks move in batches of this many bytes from the verifier on: one socket writev and a few
 * promise turns per batch instead of per network read (undici hands over up to 64 KiB). Batches
 * hold the chunks as they came: copying them into bigger buffers costs more than it saves
 * (fresh memory for every copy: page faults and garbage).
 */
const PIECE_BYTES = 1 << 20;
/** Batches (of about PIECE_BYTES) the cache writer may lag behind the reader before the relay waits for it. */
const CACHE_LAG_BATCHES = 8;

export interface Transfer {
  /** The upstream's answer for the whole blob. */
  body: Readable;
  digest: string;
  size: number;
  /** For messages: "blob sha256:… of team/app from upstream host:port". */
  what: string;
  /** Absent: the bytes are not kept. */
  cache?: BlobCacheWriter;
  log: Logger;
  /** Fields of the log lines about the cache. */
  logFields: Record<string, unknown>;
}

/**
 * Streams a whole blob from the upstream through the digest verifier into the cache and, when
 * `sink` is given, to a reader at the same time: all of it, or the part `range` names. The cache
 * keeps the blob only when every byte matched; a mismatch or a broken upstream fails the transfer
 * before the reader's last piece and caches nothing. A reader that goes away does not stop the
 * caching; a cache that cannot be written (the store is full) does not stop a reader, and is
 * logged. With no reader, a failure to cache is the transfer's failure. `delivered` runs when the
 * reader holds every byte (the cache may still be committing).
 */
export async function transfer(t: Transfer, sink?: Writable, range?: ByteRange, delivered?: () => void, sinkReleases = false): Promise<void> {
  const { body, digest, size, cache, log } = t;
  const verifier = verifyDigest(digest, { size, what: t.what });
  const batched = new Batcher(PIECE_BYTES);
  // Errors (a broken upstream, a digest mismatch) surface through the loop over the batches below.
  pipeline(body, verifier, batched, () => undefined);
  // Object mode: a batch passes as one object, its chunks as they are (a byte-mode read would
  // concatenate what is buffered); the lag is counted in batches whatever size the chunks are.
  const toCache = cache ? new PassThrough({ objectMode: true, highWaterMark: CACHE_LAG_BATCHES }) : undefined;
  toCache?.on("error", () => undefined); // reported by keepBlob below
  const lent = new GiveBack(!sink || sinkReleases, sink, !toCache);
  let cacheFailed: unknown;
  const caching = toCache
    ? cache!
        .keepBlob(digest, size, chunksOfBatches(toCache), (bytes) => lent.cacheWrote(bytes))
        .catch((err: unknown) => {
          cacheFailed = err;
          toCache.destroy();
        })
        .finally(() => lent.cacheDone())
    : undefined;
  let position = 0;
  const sent = new Map<Buffer[], Batch>();
  async function* pieces(): AsyncGenerator<Buffer[]> {
    for await (const batch of batched as AsyncIterable<Buffer[]>) {
      const start = position;
      for (const chunk of batch) position += chunk.length;
      const tracked = lent.track(batch, position);
      // The cache and the reader take each batch at the same time; the next waits for both.
      const cached = toCache && cacheFailed === undefined ? write(toCache, batch) : undefined;
      let piece = batch;
      if (range) {
        piece = [];
        let at = start;
        for (const chunk of batch) {
          const part = sliceOf(chunk, at, range);
          at += chunk.length;
          if (part.length > 0) piece.push(part);
        }
      }
      if (tracked && piece.length > 0) sent.set(piece, tracked);
      else if (tracked) lent.sent(tracked);
      yield piece;
      await cached;
    }
  }
  const deliver = (piece: Buffer[]) => {
    const tracked = sent.get(piece);
    sent.delete(piece);
    if (!sink) {
      if (tracked) lent.sent(tracked);
      return Promise.resolve();
    }
    return writeAll(sink, piece, tracked && (() => lent.sent(tracked)));
  };
  try {
    await relay(pieces(), deliver, delivered);
  } catch (err) {
    toCache?.destroy(isDomainError(err) ? err : new Error("upstream read failed"));
    await caching;
    throw err;
  }
  toCache?.end();
  await caching;
  if (cacheFailed !== undefined) {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what was caught, as it was
    if (!sink) throw cacheFailed;
    const logDetails = isDomainError(cacheFailed) ? cacheFailed.logDetails : undefined;
    log.warn({ err: cacheFailed, ...t.logFields, ...logDetails }, "pull-through: blob served but not cached");
  }
}

/** Batches waiting to be given back, at most (about as many MiB). */
const MAX_TRACKED = 32;

interface Batch {
  chunks: Buffer[];
  /** Where the batch ends in the blob. */
  end: number;
  sent: boolean;
}

/**
 * Gives the buffers of a transfer's batches back (src/domain/lent-buffers.ts) once neither the
 * reader's socket nor the cache holds them: the sink's write callback ran (or the sink closed,
 * or there is none) and the cache driver said it wrote past them (or the cache is done). Only
 * when the sink's callbacks mean that (`sinkReleases`); otherwise nothing is tracked, and the
 * buffers are collected as any other.
 */
class GiveBack {
  private readonly pending: Batch[] = [];
  private cacheWritten = 0;
  private sinkClosed = false;

  constructor(
    private readonly enabled: boolean,
    sink: Writable | undefined,
    private cacheFinished: boolean,
  ) {
    sink?.once("close", () => {
      this.sinkClosed = true;
      this.flush();
    });
  }

  /** `end`: where the batch ends in the blob. */
  track(chunks: Buffer[], end: number): Batch | undefined {
    if (!this.enabled) return undefined;
    const batch = { chunks, end, sent: false };
    this.pending.push(batch);
    // A cache driver that never says what it wrote: forget the oldest (never reused) rather than hold them all.
    if (this.pending.length > MAX_TRACKED) this.pending.shift();
    return batch;
  }

  sent(batch: Batch): void {
    batch.sent = true;
    this.flush();
  }

  cacheWrote(bytes: number): void {
    this.cacheWritten = bytes;
    this.flush();
  }

  cacheDone(): void {
    this.cacheFinished = true;
    this.flush();
  }

  private flush(): void {
    while (this.pending.length > 0) {
      const first = this.pending[0]!;
      if (!(first.sent || this.sinkClosed) || !(this.cacheFinished || this.cacheWritten >= first.end)) return;
      this.pending.shift();
      for (const chunk of first.chunks) giveBack(chunk);
    }
  }
}

/** The chunks of the batches a stream carries, in order. */
async function* chunksOfBatches(batches: AsyncIterable<Buffer[]>): AsyncGenerator<Buffer> {
  for await (const batch of batches) yield* batch;
}

/**
 * Gathers the chunks flowing through into batches of at least `bytes` (the last one smaller),
 * without copying them: each read takes one batch (an array), to be written with one writev.
 */
class Batcher extends Transform {
  private batch: Buffer[] = [];
  private batched = 0;

  constructor(private readonly bytes: number) {
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.batch.push(chunk);
    this.batched += chunk.length;
    if (this.batched < this.bytes) return done();
    const batch = this.batch;
    this.batch = [];
    this.batched = 0;
    done(null, batch);
  }

  override _flush(done: TransformCallback): void {
    done(null, this.batch.length > 0 ? this.batch : undefined);
  }
}

/** The transfer as BlobContent: a reader gets the bytes while they are cached. */
export function streamedTransfer(t: Transfer, range: ByteRange | undefined): BlobContent {
  return new StreamedBlob(
    t.digest,
    t.size,
    range,
    (sink, delivered, sinkReleases) => transfer(t, sink, range, delivered, sinkReleases),
    () => t.body.destroy(),
  );
}

/** A whole blob's size: the answer's Content-Length, else a HEAD's. */
export async function sizeOf(client: UpstreamClient, path: string, digest: string, said: number | undefined, signal?: AbortSignal): Promise<number> {
  const size = said ?? (await client.headBlob(path, digest, { signal })).size;
  if (size === undefined) throw unknownFault(`upstream ${client.host} did not say the size of blob ${digest} of ${path}`);
  return size;
}

/**
 * The part `request` names of a blob, asked of the upstream as a range and not cached: a part
 * cannot be verified against the digest, so only its length is checked. A part that turns out to
 * be the whole blob is verified. An upstream that ignores Range sends everything: the part is cut
 * out here.
 */
export async function directPart(client: UpstreamClient, path: string, digest: string, request: RangeRequest, signal?: AbortSignal): Promise<BlobContent> {
  const what = `blob ${digest} of ${path} from upstream ${client.host}`;
  if ("suffix" in request) {
    // The last n bytes: where they start depends on the size.
    const size = await sizeOf(client, path, digest, undefined, signal);
    const range = resolveRange(request, size, what)!;
    return directPart(client, path, digest, { start: range.start, end: range.end }, signal);
  }
  const start = "offset" in request ? request.offset : request.start;
  const end = "offset" in request ? (request.length > 0 ? request.offset + request.length - 1 : undefined) : request.end;
  let blob: Blob;
  try {
    blob = await client.getBlob(path, digest, { range: { start, end }, signal });
  } catch (err) {
    // 416 from the upstream: say how big the blob is, as for stored blobs.
    if (!isDomainError(err) || err.reason !== "range-mismatch") throw err;
    const size = await sizeOf(client, path, digest, undefined, signal);
    throw new RangeNotSatisfiable(`range ${start}-${end ?? ""} is not satisfiable for ${what} of ${size} bytes`, size);
  }
  try {
    let size: number;
    let range: ByteRange;
    if (blob.status === 206) {
      const r = blob.contentRange!;
      if (r.start !== start) throw unknownFault(`upstream ${client.host} answered a range of ${what} from byte ${r.start}, not ${start}`);
      size = r.total ?? (await sizeOf(client, path, digest, undefined, signal));
      range = { start: r.start, end: r.end };
    } else {
      size = await sizeOf(client, path, digest, blob.size, signal);
      range = resolveRange(request, size, what) ?? { start: 0, end: size - 1 };
    }
    const whole = range.start === 0 && range.end === size - 1;
    const length = range.end - range.start + 1;
    const cut = blob.status === 200 && !whole;
    const source: Readable = cut ? pipeline(blob.body, sliced(range), () => undefined) : blob.body;
    const checked = whole ? pipeline(source, verifyDigest(digest, { size, what }), () => undefined) : source;
    const resolved = whole && "offset" in request ? undefined : range;
    return new StreamedBlob(
      digest,
      size,
      resolved,
      (sink, delivered) => relay(lengthChecked(checked, length, what, cut), (piece) => write(sink, piece), delivered),
      () => blob.body.destroy(),
    );
  } catch (err) {
    blob.body.destroy();
    throw err;
  }
}

/** A stream that passes on only the bytes of `range` of what flows through it. */
function sliced(range: ByteRange): Transform {
  let position = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      const piece = sliceOf(chunk, position, range);
      position += chunk.length;
      done(null, piece.length > 0 ? piece : undefined);
    },
  });
}

/**
 * `source`'s pieces, failing with data-loss when they add up to more or less than `length`. With
 * `stopAtLength` (a part cut out of a longer answer) it stops reading once it has them; otherwise
 * it reads to the end, where a verifier's check runs.
 */
async function* lengthChecked(source: Readable, length: number, what: string, stopAtLength: boolean): AsyncGenerator<Buffer> {
  let seen = 0;
  try {
    for await (const piece of source as AsyncIterable<Buffer>) {
      seen += piece.length;
      if (seen > length) throw dataLoss(`${what}: received more than the ${length} bytes expected`, "size-mismatch");
      yield piece;
      if (stopAtLength && seen === length) break;
    }
  } finally {
    source.destroy();
  }
  if (seen !== length) throw dataLoss(`${what}: expected ${length} bytes, received ${seen}`, "size-mismatch");
}
