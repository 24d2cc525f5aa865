// Blob rows, their links to repositories, and upload sessions. The bytes are in the content
// driver; a blob row is written only after the bytes are in place and verified, under the
// digest's shared lock (see digest-locks.ts), so a row never points at missing bytes.
import { and, eq, lt, sql } from "drizzle-orm";
import { PgliteDatabase } from "drizzle-orm/pglite";
import type { ContentDriver, Body } from "../content/driver.js";
import type { Database } from "../db/database.js";
import { blobs, repositoryBlobs, uploads } from "../db/schema.js";
import { DomainError, isDomainError } from "../domain/errors.js";
import { KeyedMutex } from "../content/mutex.js";
import { lockDigestsShared } from "./digest-locks.js";
import { guarded } from "./pg-errors.js";

export type UploadRow = typeof uploads.$inferSelect;

export const uploadUnknown = (id: string) => new DomainError("not-found", `blob upload ${id} is unknown or has expired`, { reason: "upload-unknown" });

const uploadBusy = (id: string) =>
  new DomainError("failed-precondition", `blob upload ${id} is being written by another request; ask for its status and continue from there`, {
    reason: "range-mismatch",
  });

const offsetMoved = (id: string, offset: number, size: number) =>
  new DomainError("failed-precondition", `blob upload ${id} holds ${size} bytes; a chunk must start at ${size}, not ${offset}`, {
    reason: "range-mismatch",
  });

export class BlobStore {
  private readonly findQuery;
  /** PGlite: one writer per upload in this process (PostgreSQL uses the advisory lock). */
  private readonly uploadWriters = new KeyedMutex();

  constructor(
    private readonly db: Database,
    private readonly content: ContentDriver,
  ) {
    // Every blob pull asks this; built once.
    this.findQuery = db
      .select({ size: blobs.sizeBytes })
      .from(repositoryBlobs)
      .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
      .where(and(eq(repositoryBlobs.repositoryId, sql.placeholder("repositoryId")), eq(repositoryBlobs.digest, sql.placeholder("digest"))))
      .limit(1)
      .prepare("blob_in_repository");
  }

  /** Size of a blob this repository may read, or undefined. */
  async find(repositoryId: string, digest: string): Promise<{ size: number } | undefined> {
    const [row] = await guarded(() => this.findQuery.execute({ repositoryId, digest }));
    return row ? { size: row.size } : undefined;
  }

  /**
   * Lets `repositoryId` read a blob the service already holds (cross-repository mount). With
   * `fromRepositoryId`, only if that repository may read it. Returns the size, or undefined
   * when there is nothing to mount (the client then uploads).
   */
  async mount(repositoryId: string, digest: string, fromRepositoryId?: string): Promise<{ size: number } | undefined> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await lockDigestsShared(tx, [digest]);
        const source = fromRepositoryId
          ? tx
              .select({ size: blobs.sizeBytes })
              .from(repositoryBlobs)
              .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
              .where(and(eq(repositoryBlobs.repositoryId, fromRepositoryId), eq(repositoryBlobs.digest, digest)))
          : tx.select({ size: blobs.sizeBytes }).from(blobs).where(eq(blobs.digest, digest));
        const [row] = await source.limit(1);
        if (!row) return undefined;
        await tx
          .update(blobs)
          .set({ pushTime: sql`now()` })
          .where(eq(blobs.digest, digest));
        await tx.insert(repositoryBlobs).values({ repositoryId, digest }).onConflictDoNothing();
        return { size: row.size };
      }),
    );
  }

  /** Removes the repository's link to a blob; the bytes go when garbage collection finds them unused. */
  async unlink(repositoryId: string, digest: string): Promise<boolean> {
    const rows = await guarded(() =>
      this.db
        .delete(repositoryBlobs)
        .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)))
        .returning({ digest: repositoryBlobs.digest }),
    );
    return rows.length > 0;
  }

  async startUpload(repositoryId: string): Promise<UploadRow> {
    const [row] = await guarded(() => this.db.insert(uploads).values({ repositoryId }).returning());
    try {
      await this.content.startUpload(row!.id);
    } catch (err) {
      // No session without its bytes (the store may be full): the client can start again.
      await guarded(() => this.db.delete(uploads).where(eq(uploads.id, row!.id))).catch(() => undefined);
      throw err;
    }
    return row!;
  }

  async getUpload(repositoryId: string, uploadId: string): Promise<UploadRow> {
    const [row] = await guarded(() =>
      this.db
        .select()
        .from(uploads)
        .where(and(eq(uploads.id, uploadId), eq(uploads.repositoryId, repositoryId)))
        .limit(1),
    );
    if (!row) throw uploadUnknown(uploadId);
    return row;
  }

  /**
   * Appends to an upload at `offset` (its current size, or range-mismatch) and records the new
   * size, so the session survives a restart. One writer per upload at a time (see withUpload),
   * which checked that the database records `offset` bytes: more bytes in the content store are
   * the unrecorded tail of an append that a crash cut short, and the driver drops them.
   */
  async append(upload: UploadRow, offset: number, body: Body, maxBytes?: number): Promise<number> {
    return this.withUpload(upload.id, offset, async (db) => {
      const size = await this.content.append(upload.id, offset, body, maxBytes, true);
      await db
        .update(uploads)
        .set({ sizeBytes: size, updateTime: sql`now()` })
        .where(eq(uploads.id, upload.id));
      return size;
    });
  }

  /** Verifies and publishes the upload as blob `digest`, readable by the upload's repository. */
  async commit(upload: UploadRow, digest: string, expectedSize?: number): Promise<{ size: number }> {
    try {
      return await guarded(() =>
        this.db.transaction(async (tx) => {
          await lockUpload(tx, upload.id);
          await lockDigestsShared(tx, [digest]);
          const stored = await this.content.commit(upload.id, digest, expectedSize);
          await tx.delete(uploads).where(eq(uploads.id, upload.id));
          await tx
            .insert(blobs)
            .values({ digest, sizeBytes: stored.size })
            .onConflictDoUpdate({ target: blobs.digest, set: { pushTime: sql`now()` } });
          await tx.insert(repositoryBlobs).values({ repositoryId: upload.repositoryId, digest }).onConflictDoNothing();
          return stored;
        }),
      );
    } catch (err) {
      // The driver drops an upload whose bytes do not match; its session goes with it.
      if (isDomainError(err, "invalid-argument")) {
        await guarded(() => this.db.delete(uploads).where(eq(uploads.id, upload.id)));
      }
      throw err;
    }
  }

  /**
   * Runs `work` as the upload's only writer, after checking it still holds `offset` bytes. On
   * PostgreSQL that is a transaction holding the upload's advisory lock (so it holds a pooled
   * connection while the chunk streams in, and a second writer is refused at once); the embedded
   * database belongs to this one process, where a per-upload mutex around the check, the append
   * and its record does (a second writer waits, then finds the offset moved), and no transaction
   * may stay open that long.
   */
  private async withUpload<T>(uploadId: string, offset: number, work: (db: Database) => Promise<T>): Promise<T> {
    if (this.db instanceof PgliteDatabase) {
      return this.uploadWriters.run(uploadId, async () => {
        const [row] = await guarded(() => this.db.select({ size: uploads.sizeBytes }).from(uploads).where(eq(uploads.id, uploadId)));
        if (!row) throw uploadUnknown(uploadId);
        if (row.size !== offset) throw offsetMoved(uploadId, offset, row.size);
        return guarded(() => work(this.db));
      });
    }
    return guarded(() =>
      this.db.transaction(async (tx) => {
        const size = await lockUpload(tx, uploadId);
        if (size !== offset) throw offsetMoved(uploadId, offset, size);
        return work(tx);
      }),
    );
  }

  /** Marks a cached blob as used (pull-through), at most one write a minute per blob. */
  async touch(digest: string): Promise<void> {
    await guarded(() =>
      this.db
        .update(blobs)
        .set({ pushTime: sql`now()` })
        .where(and(eq(blobs.digest, digest), sql`${blobs.pushTime} < now() - interval '1 minute'`)),
    );
  }

  async cancel(upload: UploadRow): Promise<void> {
    await guarded(() => this.db.delete(uploads).where(eq(uploads.id, upload.id)));
    await this.content.abort(upload.id);
  }

  /** Upload sessions idle since before `cutoff`. */
  async expiredUploads(cutoff: Date, limit: number): Promise<UploadRow[]> {
    return guarded(() => this.db.select().from(uploads).where(lt(uploads.updateTime, cutoff)).limit(limit));
  }
}

/**
 * Takes the upload's advisory lock for the transaction without waiting and returns the upload's
 * recorded size; upload-unknown when the session is gone, busy when another request holds it.
 */
async function lockUpload(tx: Database, uploadId: string): Promise<number> {
  const [row] = await tx
    .select({ size: uploads.sizeBytes, locked: sql<boolean>`pg_try_advisory_xact_lock(hashtextextended(${`upload:${uploadId}`}, 0))` })
    .from(uploads)
    .where(eq(uploads.id, uploadId));
  if (!row) throw uploadUnknown(uploadId);
  if (!row.locked) throw uploadBusy(uploadId);
  return row.size;
}
