// Blob rows, their links to repositories, and upload sessions. The bytes are in the content
// driver; a blob row is written only after the bytes are in place and verified, under the
// digest's shared lock (see digest-locks.ts), so a row never points at missing bytes.
import { randomUUID } from "node:crypto";
import { and, asc, eq, isNull, lt, ne, or, sql } from "drizzle-orm";
import { watchBody } from "../content/body.js";
import type { ContentDriver, Body, WriteOptions } from "../content/driver.js";
import type { Database } from "../db/database.js";
import { blobs, manifestReferences, manifests, repositoryBlobs, uploads } from "../db/schema.js";
import * as errors from "../domain/errors.js";
import { isDomainError, unavailable } from "../domain/errors.js";
import { lockDigestExclusive, lockDigestsShared } from "./digest-locks.js";
import { guarded } from "./pg-errors.js";
import type { Visibility } from "./listing.js";
import { repositoryVisible, visibilityValues } from "./visibility.js";

export type UploadRow = typeof uploads.$inferSelect;

const uploadUnknown = (id: string) => errors.uploadUnknown(`blob upload ${id} is unknown or has expired`);

/** `retryAfterMs`: how long the other writer's claim lasts unless it renews it (it is still sending). */
const uploadBusy = (id: string, retryAfterMs: number) =>
  new errors.UploadBusy(
    `blob upload ${id} is being written by another request; ask for its status and continue from there (that request's claim runs out in ${Math.ceil(retryAfterMs / 1000)} s unless it is still sending)`,
    retryAfterMs,
  );

/** Milliseconds left of an upload row's writer lease (0 when nobody holds it). */
const leaseLeftMs = sql<number>`coalesce(greatest(0, ceil(extract(epoch from (${uploads.writerUntil} - now())) * 1000)), 0)::integer`;

const offsetMoved = (id: string, offset: number, size: number) =>
  errors.rangeMismatch(`blob upload ${id} holds ${size} bytes; a chunk must start at ${size}, not ${offset}`);

const leaseLost = (id: string) =>
  errors.rangeMismatch(`blob upload ${id} was taken over by another request while this chunk was arriving; ask for its status and continue from there`);

/**
 * How long a writer's claim on an upload lasts unless renewed. Long enough that renewals delayed by
 * a busy database or event loop do not lose it (it is renewed every WRITER_LEASE_MS / 6); short
 * enough that the clients of a replica that died resume their uploads within half a minute.
 */
const WRITER_LEASE_MS = 30_000;
const RENEWALS_PER_LEASE = 6;

export interface BlobStoreOptions {
  /** Tests only: a shorter writer lease than WRITER_LEASE_MS, so a dead writer's claim runs out quickly. */
  writerLeaseMs?: number;
}

/** What deleting a blob from a repository did. */
export type UnlinkResult = { outcome: "deleted" } | { outcome: "unknown" } | { outcome: "in-use"; manifest: string };

export class BlobStore {
  private readonly findQuery;
  private readonly writerLeaseMs: number;

  constructor(
    private readonly db: Database,
    private readonly content: ContentDriver,
    options: BlobStoreOptions = {},
  ) {
    this.writerLeaseMs = options.writerLeaseMs ?? WRITER_LEASE_MS;
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
   * `fromRepositoryId`, only if that repository may read it; without, with a visibility, only
   * if a repository it lets the caller see may. Returns the size, or undefined when there is
   * nothing to mount (the client then uploads).
   */
  async mount(repositoryId: string, digest: string, fromRepositoryId?: string, visibility?: Visibility): Promise<{ size: number } | undefined> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await lockDigestsShared(tx, [digest]);
        const source = fromRepositoryId
          ? tx
              .select({ size: blobs.sizeBytes })
              .from(repositoryBlobs)
              .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
              .where(and(eq(repositoryBlobs.repositoryId, fromRepositoryId), eq(repositoryBlobs.digest, digest)))
          : visibility
            ? tx
                .select({ size: blobs.sizeBytes })
                .from(blobs)
                .where(
                  and(
                    eq(blobs.digest, digest),
                    sql`exists (select 1 from ${repositoryBlobs} rb where rb.digest = ${blobs.digest} and ${repositoryVisible(sql`rb.repository_id`, visibilityValues(visibility))})`,
                  ),
                )
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

  /**
   * Removes the repository's link to a blob (the bytes go when garbage collection finds them
   * unused), unless a manifest of the repository still lists it as config or layer: then the
   * manifest would stay pullable without its content. The check and the delete run under the
   * digest's exclusive lock, which manifest pushes take shared (digest-locks.ts), so a push that
   * references the blob either committed before (and is seen) or checks the link after (and fails).
   */
  async unlink(repositoryId: string, digest: string): Promise<UnlinkResult> {
    return guarded(() =>
      this.db.transaction(async (tx): Promise<UnlinkResult> => {
        await lockDigestExclusive(tx, digest);
        const [user] = await tx
          .select({ digest: manifests.digest })
          .from(manifestReferences)
          .innerJoin(manifests, eq(manifests.id, manifestReferences.manifestId))
          .where(and(eq(manifests.repositoryId, repositoryId), eq(manifestReferences.digest, digest), ne(manifestReferences.kind, "manifest")))
          .orderBy(asc(manifests.digest))
          .limit(1);
        if (user) {
          const [linked] = await tx
            .select({ digest: repositoryBlobs.digest })
            .from(repositoryBlobs)
            .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)));
          return linked ? { outcome: "in-use", manifest: user.digest } : { outcome: "unknown" };
        }
        const rows = await tx
          .delete(repositoryBlobs)
          .where(and(eq(repositoryBlobs.repositoryId, repositoryId), eq(repositoryBlobs.digest, digest)))
          .returning({ digest: repositoryBlobs.digest });
        return { outcome: rows.length > 0 ? "deleted" : "unknown" };
      }),
    );
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
   * size, so the session survives a restart. The request is the upload's only writer while it
   * holds the upload's lease (see claim()), and holds no database connection while the body
   * streams in. Being the only writer with the recorded offset in hand, it lets the driver drop
   * bytes past `offset`: they are the unrecorded tail of an append that a crash cut short.
   */
  async append(upload: UploadRow, offset: number, body: Body, maxBytes?: number): Promise<number> {
    const lease = await this.claim(upload.id, offset);
    try {
      const size = await this.content.append(upload.id, offset, watchBody(body, { signal: lease.lost }), maxBytes, true);
      await lease.record(size);
      return size;
    } finally {
      await lease.release();
    }
  }

  /**
   * Stores a whole blob in one step (no upload session: the pull-through cache's write) and lets
   * `repositoryId` read it. The driver places the bytes verified and durable; the row follows
   * under the digest's shared lock, once the bytes are seen still in place (garbage collection
   * deletes unrecorded bytes under the exclusive lock), so a row never points at missing bytes.
   */
  async keep(repositoryId: string, digest: string, body: Body, size: number, options?: WriteOptions): Promise<void> {
    await this.content.write(digest, body, size, options);
    await guarded(() =>
      this.db.transaction(async (tx) => {
        await lockDigestsShared(tx, [digest]);
        const stored = await this.content.stat(digest);
        if (stored?.size !== size) throw unavailable(`blob ${digest} was removed while it was being stored; pull it again`);
        await tx
          .insert(blobs)
          .values({ digest, sizeBytes: size })
          .onConflictDoUpdate({ target: blobs.digest, set: { pushTime: sql`now()` } });
        await tx.insert(repositoryBlobs).values({ repositoryId, digest }).onConflictDoNothing();
      }),
    );
  }

  /** Verifies and publishes the upload as blob `digest`, readable by the upload's repository. */
  async commit(upload: UploadRow, digest: string, expectedSize?: number): Promise<{ size: number }> {
    try {
      return await guarded(() =>
        this.db.transaction(async (tx) => {
          // The row lock keeps writers from claiming the upload until it is gone; a writer that
          // holds it now must finish first.
          const [row] = await tx
            .select({ leased: sql<boolean>`${uploads.writer} is not null and ${uploads.writerUntil} >= now()`, leftMs: leaseLeftMs })
            .from(uploads)
            .where(eq(uploads.id, upload.id))
            .for("update");
          if (!row) throw uploadUnknown(upload.id);
          if (row.leased) throw uploadBusy(upload.id, row.leftMs);
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
   * Makes this request the upload's only writer: one short UPDATE takes the lease when nobody
   * holds it or its holder let it run out (a dead replica), then checks the recorded size. The
   * lease is renewed on a timer for as long as the append runs (a stalled body is cut by the
   * edge's idle timeout, not here); when a renewal finds it taken over, or cannot reach the
   * database before it runs out, `lost` fires and the append fails (all or nothing).
   */
  private async claim(uploadId: string, offset: number): Promise<WriterLease> {
    const token = randomUUID();
    const leaseMs = this.writerLeaseMs;
    const until = sql`now() + ${leaseMs}::integer * interval '1 millisecond'`;
    const [claimed] = await guarded(() =>
      this.db
        .update(uploads)
        .set({ writer: token, writerUntil: until, updateTime: sql`now()` })
        .where(and(eq(uploads.id, uploadId), or(isNull(uploads.writer), lt(uploads.writerUntil, sql`now()`))))
        .returning({ size: uploads.sizeBytes }),
    );
    if (!claimed) {
      const [held] = await guarded(() => this.db.select({ leftMs: leaseLeftMs }).from(uploads).where(eq(uploads.id, uploadId)));
      throw held ? uploadBusy(uploadId, held.leftMs) : uploadUnknown(uploadId);
    }

    const controller = new AbortController();
    let heldUntil = Date.now() + leaseMs;
    let renewing: Promise<void> | undefined;
    const mine = and(eq(uploads.id, uploadId), eq(uploads.writer, token));
    const renew = async () => {
      try {
        const started = Date.now();
        // Renewals also move update_time, which upload expiry looks at.
        const rows = await this.db
          .update(uploads)
          .set({ writerUntil: until, updateTime: sql`now()` })
          .where(mine)
          .returning({ id: uploads.id });
        if (rows.length === 0) controller.abort(leaseLost(uploadId));
        else heldUntil = started + leaseMs;
      } catch (err) {
        if (Date.now() >= heldUntil) controller.abort(unavailable("the database could not be reached to keep this upload's claim; retry the chunk", err));
      }
    };
    const timer = setInterval(
      () => {
        renewing ??= renew().finally(() => (renewing = undefined));
      },
      Math.max(1, Math.floor(leaseMs / RENEWALS_PER_LEASE)),
    );
    timer.unref();
    let released = false;
    const lease: WriterLease = {
      lost: controller.signal,
      record: async (size) => {
        clearInterval(timer);
        await renewing;
        const rows = await guarded(() =>
          this.db
            .update(uploads)
            .set({ sizeBytes: size, writer: null, writerUntil: null, updateTime: sql`now()` })
            .where(mine)
            .returning({ id: uploads.id }),
        );
        // Taken over meanwhile: these bytes were never recorded, and the next writer drops them.
        if (rows.length === 0) throw (await this.exists(uploadId)) ? leaseLost(uploadId) : uploadUnknown(uploadId);
        released = true;
      },
      release: async () => {
        clearInterval(timer);
        await renewing;
        if (released) return;
        released = true;
        // Best effort: a lease that cannot be released runs out by itself.
        await this.db
          .update(uploads)
          .set({ writer: null, writerUntil: null })
          .where(mine)
          .catch(() => undefined);
      },
    };
    if (claimed.size !== offset) {
      await lease.release();
      throw offsetMoved(uploadId, offset, claimed.size);
    }
    return lease;
  }

  private async exists(uploadId: string): Promise<boolean> {
    const [row] = await guarded(() => this.db.select({ id: uploads.id }).from(uploads).where(eq(uploads.id, uploadId)));
    return row !== undefined;
  }

  /** Marks a cached blob as used (pull-through), at most one write per `intervalMs` per blob. */
  async touch(digest: string, intervalMs: number): Promise<void> {
    await guarded(() =>
      this.db
        .update(blobs)
        .set({ pushTime: sql`now()` })
        .where(and(eq(blobs.digest, digest), sql`${blobs.pushTime} < now() - ${intervalMs}::integer * interval '1 millisecond'`)),
    );
  }

  async cancel(upload: UploadRow): Promise<void> {
    await guarded(() => this.db.delete(uploads).where(eq(uploads.id, upload.id)));
    await this.content.abort(upload.id);
  }

  /** Upload sessions idle since before `cutoff` that no writer holds. */
  async expiredUploads(cutoff: Date, limit: number): Promise<UploadRow[]> {
    return guarded(() =>
      this.db
        .select()
        .from(uploads)
        .where(and(lt(uploads.updateTime, cutoff), or(isNull(uploads.writer), lt(uploads.writerUntil, sql`now()`))))
        .limit(limit),
    );
  }
}

/** A writer's claim on an upload (see BlobStore.claim). */
interface WriterLease {
  /** Fires when the claim is lost; the append must stop. */
  readonly lost: AbortSignal;
  /** Records the upload's new size and gives the claim up, in one statement. */
  record(size: number): Promise<void>;
  /** Gives the claim up without recording anything (after a failure); harmless after record(). */
  release(): Promise<void>;
}
