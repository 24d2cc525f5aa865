// A blob's bytes as a sequence of chunks for a server stream, verified on the way. Memory stays
// flat: the source is pulled only as fast as the consumer takes chunks (the generator awaits
// it), and at most about one chunk is held. Whole-blob reads from an upstream are checked against the digest and
// size; the last bytes are released only after that check passed, so a consumer either gets
// every correct byte or an error with the end of the blob missing, never a complete-looking
// wrong body. Ranges cannot be checked against a digest; only their length is.
import { pipeline, type Readable } from "node:stream";
import { DomainError } from "../domain/errors.js";
import { verifyDigest } from "../domain/digest.js";

/** Chunks are at least this big (but the last), so small network reads do not become messages. */
export const MIN_CHUNK = 64 * 1024;
/** And at most this big: one message never holds more. */
export const MAX_CHUNK = 1024 * 1024;

export interface ChunkSource {
  body: Readable;
  /** Digest of the whole blob; verified when `whole`. */
  digest: string;
  /** The body is the whole blob (verified) rather than a range (length checked only). */
  whole: boolean;
  /**
   * Bytes from this service's content store, verified against the digest when they were
   * stored (and served unhashed by /v2/ too): only their length is checked here.
   */
  stored?: boolean;
  /** Bytes the body must deliver. */
  length: number;
  /** For error messages: "blob sha256:… of team/app from upstream host:port". */
  what: string;
}

/** The body's bytes in chunks of MIN_CHUNK..MAX_CHUNK; throws DomainError data-loss on a mismatch. */
export async function* blobChunks(source: ChunkSource): AsyncGenerator<Buffer> {
  const { body, length, what } = source;
  const checked: Readable = source.whole && !source.stored ? pipeline(body, verifyDigest(source.digest, { size: length, what }), () => {}) : body;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let seen = 0;
  // The latest piece read is held back until the next arrives or the check at the end passed.
  let held: Buffer | undefined;
  try {
    for await (const piece of checked as AsyncIterable<Buffer>) {
      seen += piece.length;
      if (seen > length) throw new DomainError("data-loss", `${what}: received more than the ${length} bytes expected`, { reason: "size-mismatch" });
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
    if (!checked.destroyed) checked.destroy();
    if (!body.destroyed) body.destroy();
  }
  if (seen !== length) throw new DomainError("data-loss", `${what}: expected ${length} bytes, received ${seen}`, { reason: "size-mismatch" });
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
