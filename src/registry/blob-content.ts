// The two kinds of BlobContent (index.ts): bytes in the content store, and bytes streamed from
// somewhere else (an upstream) by a function that writes them into a sink. Plus the one way bytes
// are relayed here: with backpressure, and one piece behind, so the last piece is handed over only
// once the source ended cleanly (verified, or length-checked).
import { PassThrough, type Readable, type Writable } from "node:stream";
import type { ContentDriver } from "../content/driver.js";
import { rangeLength, type ByteRange } from "../domain/byte-range.js";
import type { BlobContent, PipeHooks } from "./index.js";

/** Writes one chunk (an object, in object mode), waiting for drain (or for the stream to close) when it is full. A closed stream takes nothing. */
export function write(stream: Writable, chunk: Buffer | Buffer[]): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  if (stream.write(chunk)) return Promise.resolve();
  return drained(stream);
}

/**
 * write() of several chunks at once: a socket sends them in one writev. `written` runs once the
 * stream's callback for the last of them did (at once when nothing is written).
 */
export function writeAll(stream: Writable, chunks: readonly Buffer[], written?: () => void): Promise<void> {
  if (stream.destroyed || chunks.length === 0) {
    written?.();
    return Promise.resolve();
  }
  stream.cork();
  let room = true;
  chunks.forEach((chunk, i) => (room = i === chunks.length - 1 && written ? stream.write(chunk, () => written()) : stream.write(chunk)));
  stream.uncork();
  return room ? Promise.resolve() : drained(stream);
}

function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

/**
 * Hands `source`'s pieces to `deliver` one piece late: the last one only after the source ended
 * without an error (a digest or length check at its end), so a consumer never receives a
 * complete-looking wrong body. Calls `delivered` once every piece was handed over.
 */
export async function relay<Piece extends { length: number }>(
  source: AsyncIterable<Piece>,
  deliver: (piece: Piece) => Promise<void>,
  delivered?: () => void,
): Promise<void> {
  let held: Piece | undefined;
  for await (const piece of source) {
    if (piece.length === 0) continue;
    if (held) await deliver(held);
    held = piece;
  }
  if (held) await deliver(held);
  delivered?.();
}

abstract class OnceContent implements BlobContent {
  private used = false;

  constructor(
    readonly digest: string,
    readonly size: number,
    readonly range: ByteRange | undefined,
  ) {}

  get length(): number {
    return rangeLength(this.range, this.size);
  }

  pipeTo(sink: Writable, hooks: PipeHooks = {}): Promise<void> {
    this.use();
    return this.writeInto(
      sink,
      () => hooks.ready?.(),
      () => hooks.delivered?.(),
      true,
    );
  }

  read(): Promise<Readable> {
    this.use();
    return this.open();
  }

  discard(): void {
    if (this.used) return;
    this.used = true;
    this.release();
  }

  /** `sinkReleases`: the sink is done with a chunk once its write callback ran (BlobContent.pipeTo's sinks are). */
  protected abstract writeInto(sink: Writable, ready: () => void, delivered: () => void, sinkReleases: boolean): Promise<void>;
  protected abstract open(): Promise<Readable>;
  protected abstract release(): void;

  private use(): void {
    if (this.used) throw new Error(`blob ${this.digest} was already read`);
    this.used = true;
  }
}

/**
 * A blob in the content store. Its bytes were verified against the digest when they were
 * stored; they are served length-checked by the driver, not hashed again.
 */
export class StoredBlob extends OnceContent {
  constructor(
    private readonly content: ContentDriver,
    digest: string,
    size: number,
    range: ByteRange | undefined,
    /** BLOB_REDIRECT: clients are sent to the store's presigned URL, when it has them. */
    private readonly redirect = false,
  ) {
    super(digest, size, range);
  }

  async location(): Promise<string | undefined> {
    return this.redirect && this.content.presignRead ? this.content.presignRead(this.digest) : undefined;
  }

  protected async writeInto(sink: Writable, ready: () => void, delivered: () => void): Promise<void> {
    if (this.content.pipeTo) {
      await this.content.pipeTo(this.digest, this.range, sink, ready);
      return delivered();
    }
    const stream = await this.content.read(this.digest, this.range);
    ready();
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (sink.destroyed) return;
        await write(sink, chunk);
      }
    } finally {
      stream.destroy();
    }
    delivered();
  }

  protected open(): Promise<Readable> {
    return this.content.read(this.digest, this.range);
  }

  protected release(): void {}
}

/**
 * Bytes written by `run` into a sink (or into nothing: the consumer went away) and found before
 * this object exists, so `ready` is immediate. `run` calls `delivered` when the sink holds every
 * byte, and may go on afterwards (a cache commit); `abandon` lets go of a source never read.
 */
export class StreamedBlob extends OnceContent {
  constructor(
    digest: string,
    size: number,
    range: ByteRange | undefined,
    private readonly run: (sink: Writable, delivered: () => void, sinkReleases: boolean) => Promise<void>,
    private readonly abandon: () => void,
  ) {
    super(digest, size, range);
  }

  protected writeInto(sink: Writable, ready: () => void, delivered: () => void, sinkReleases: boolean): Promise<void> {
    ready();
    return this.run(sink, delivered, sinkReleases);
  }

  protected async open(): Promise<Readable> {
    // Ends once the work behind the bytes is done too: a reader that reached the end finds the
    // blob cached. Object mode: each read takes one chunk as it came (a byte-mode read joins
    // everything buffered into a new buffer, a copy per read of up to a 1 MiB batch).
    const out = new PassThrough({ objectMode: true });
    // Its reader keeps the chunks as long as it likes: they are never reused.
    this.writeInto(
      out,
      () => undefined,
      () => undefined,
      false,
    ).then(
      () => out.end(),
      (err: Error) => out.destroy(err),
    );
    return out;
  }

  protected release(): void {
    this.abandon();
  }
}
