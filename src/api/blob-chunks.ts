// A blob's bytes as a sequence of chunks for a server stream. Memory stays flat: the source is
// pulled only as fast as the consumer takes chunks (the generator awaits it), and at most about one
// chunk is held. The bytes come from the image core, which has verified them (or, for a part of an
// upstream blob, checked their length); the count is checked once more here, against the length
// the first message announced, and the last bytes are held back until it matched.
import type { Readable } from "node:stream";
import { dataLoss } from "../domain/errors.js";

/** Chunks are at least this big (but the last), so small network reads do not become messages. */
const MIN_CHUNK = 64 * 1024;
/** And at most this big: one message never holds more. */
const MAX_CHUNK = 1024 * 1024;

/** The body's bytes in chunks of MIN_CHUNK..MAX_CHUNK; throws DomainError data-loss when they are not `length` bytes. */
export async function* blobChunks(body: Readable, length: number, what: string): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let seen = 0;
  // The latest piece read is held back until the next arrives or the count at the end matched.
  let held: Buffer | undefined;
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      seen += piece.length;
      if (seen > length) throw dataLoss(`${what}: received more than the ${length} bytes expected`, "size-mismatch");
      if (held) {
        pending.push(held);
        pendingBytes += held.length;
      }
      held = piece;
      if (pendingBytes >= MIN_CHUNK) {
        yield* split(joined(pending, pendingBytes));
        pending = [];
        pendingBytes = 0;
      }
    }
  } finally {
    // A consumer that stops early (client gone) must not leave the source open.
    if (!body.destroyed) body.destroy();
  }
  if (seen !== length) throw dataLoss(`${what}: expected ${length} bytes, received ${seen}`, "size-mismatch");
  if (held) {
    pending.push(held);
    pendingBytes += held.length;
  }
  if (pendingBytes > 0) yield* split(joined(pending, pendingBytes));
}

/** One buffer as it is (a 1 MiB file read is one already): a copy per chunk doubled the garbage. */
const joined = (pieces: Buffer[], bytes: number): Buffer => (pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, bytes));

function* split(buffer: Buffer): Generator<Buffer> {
  for (let at = 0; at < buffer.length; at += MAX_CHUNK) yield buffer.subarray(at, Math.min(at + MAX_CHUNK, buffer.length));
}
