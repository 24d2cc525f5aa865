// Blob storage behind one interface: content addressed by digest, immutable, verified. Drivers:
// the filesystem under DATA_DIR/blobs, and S3-compatible object storage (CONTENT_STORE=s3). Every driver passes the
// shared conformance suite in test/content-conformance.ts.
import type { Readable, Writable } from "node:stream";
import type { ByteRange } from "../domain/byte-range.js";

export type { ByteRange } from "../domain/byte-range.js";

/**
 * Bytes to store. A driver that stops reading early (a mismatch, a limit) leaves a Readable
 * undestroyed, so an HTTP edge can still answer on the request's connection.
 */
export type Body = Readable | AsyncIterable<Uint8Array>;

export interface WriteOptions {
  /**
   * The body checks its own bytes against the digest and fails instead of ending when they do
   * not match (a DigestVerifier's output: the pull-through cache verifies what it relays off the
   * event-loop thread). A driver may then skip hashing them again; the size is still checked,
   * and a body that fails still leaves nothing stored. Needs `expectedSize`.
   */
  verifiedBody?: boolean;
  /**
   * Nobody waits for this write to finish (the pull-through cache: its reader was served as the
   * bytes came). The blob is still made durable before it is placed; a driver need not spend
   * effort while the bytes arrive to make that last step short.
   */
  background?: boolean;
  /**
   * Told as the body's bytes are written: the driver holds no chunk of the body before `bytes`
   * any more, so their buffers may be reused (src/domain/lent-buffers.ts). A driver that never
   * calls it only keeps them from being reused.
   */
  written?: (bytes: number) => void;
}

/**
 * Malformed digests (src/domain/digest.ts: reason digest-invalid) and upload ids (UUIDs) are
 * refused with DomainError invalid-argument before any storage is touched. append() and commit() of an
 * upload the store does not hold → DomainError not-found (reason upload-unknown). A store with
 * no room left → DomainError resource-exhausted (reason storage-full), its message free of the
 * machine's paths (they go in logDetails); what failed left nothing partial behind, so the same
 * call succeeds once there is room again.
 */
export interface ContentDriver {
  /** A short name for logs and metrics ("filesystem", "memory"). */
  readonly name: string;

  /** Size of the stored blob, or undefined when the store does not hold it. */
  stat(digest: string): Promise<{ size: number } | undefined>;

  /**
   * The blob's bytes (or a range of them). Throws DomainError not-found (reason blob-unknown)
   * when absent; a range not inside the blob → failed-precondition (reason range-mismatch).
   * The stream is backpressured: memory stays flat whatever the size.
   */
  read(digest: string, range?: ByteRange): Promise<Readable>;

  /**
   * Optional, for serving: writes the blob (or a range) into `sink` as fast as the store can,
   * waiting for the sink to take each chunk (backpressure), and resolves when all was written.
   * `ready` runs once the blob is found and the range checked, before the first byte (the
   * place to send response headers); errors before it are read()'s. A driver without it is
   * served through read().
   */
  pipeTo?(digest: string, range: ByteRange | undefined, sink: Writable, ready: () => void): Promise<void>;

  /**
   * Stores a whole blob from `body`: the bytes are verified against `digest` (and
   * `expectedSize` when given) and become visible only once complete, durable and correct.
   * Writing a blob the store already holds is harmless; two writers of the same digest at once
   * leave one copy. Mismatch → DomainError invalid-argument (reason digest-mismatch or
   * size-mismatch), nothing stored.
   */
  write(digest: string, body: Body, expectedSize?: number, options?: WriteOptions): Promise<{ size: number }>;

  /** Removes a blob; removing an absent one is not an error. */
  delete(digest: string): Promise<void>;

  /** Every stored digest (for reconciliation of bytes without a database row). */
  list(): AsyncIterable<{ digest: string; modifiedTime: Date }>;

  /** Bytes received so far by an upload, or undefined when the store has no such upload. */
  uploadSize(uploadId: string): Promise<number | undefined>;

  /** Creates an empty upload (DomainError already-exists when the id is taken). */
  startUpload(uploadId: string): Promise<void>;

  /**
   * Appends `body` to an upload that holds exactly `offset` bytes (else DomainError
   * failed-precondition, reason range-mismatch, nothing appended). Stops with DomainError
   * resource-exhausted (reason too-large) past `maxBytes` total. Returns the new size.
   * All or nothing: when the append fails for any reason (a limit, a broken body) the upload
   * is back at `offset` bytes, so a retry or a resumed upload continues from there.
   *
   * `dropTail`: the caller is the upload's only writer and knows `offset` bytes to be recorded
   * (its database says so, under a lock). An upload holding more was cut short by a crash between
   * an append and its record: the bytes past `offset` were never acknowledged, and are dropped
   * instead of refusing the append (which would leave the session stuck until it expires).
   */
  append(uploadId: string, offset: number, body: Body, maxBytes?: number, dropTail?: boolean): Promise<number>;

  /**
   * Turns a finished upload into the blob `digest`: verified like write(), then the upload is
   * gone. On a mismatch the upload is removed too (the client must start again).
   */
  commit(uploadId: string, digest: string, expectedSize?: number): Promise<{ size: number }>;

  /** Drops an upload and its bytes; dropping an absent one is not an error. */
  abort(uploadId: string): Promise<void>;

  /** Every upload the store holds bytes for (for cleanup of expired or orphaned ones). */
  listUploads(): AsyncIterable<{ uploadId: string; modifiedTime: Date }>;

  /**
   * Optional: removes what the driver's own writes left behind when a process died or lost a
   * race, last changed before `cutoff` (whole-blob writes cut short, bytes no blob names).
   * Garbage collection calls it on every run; nothing a live write or a stored blob needs goes.
   */
  sweep?(cutoff: Date): Promise<SweepReport>;

  /**
   * Optional: a short-lived URL from which a client reads the blob straight from the store
   * (BLOB_REDIRECT), or undefined when the store does not hold it. The store honours Range.
   */
  presignRead?(digest: string): Promise<string | undefined>;
}

export interface SweepReport {
  /** Objects or files removed. */
  removed: number;
}
