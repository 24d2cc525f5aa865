// Online garbage collection: untagged manifests nothing refers to, then blobs no manifest refers
// to, then expired upload sessions and bytes without a row. The registry stays writable
// throughout; what protects a push in flight is the grace period (push_time) and, for blobs,
// the per-digest lock that blob commits and manifest pushes share (digest-locks.ts).
import { and, eq, lt, notExists, sql } from "drizzle-orm";
import type { ContentDriver } from "../content/driver.js";
import type { Database, DatabaseHandle } from "../db/database.js";
import { aborted, isDomainError } from "../domain/errors.js";
import { blobs, manifestReferences, manifests, repositoryBlobs, uploads } from "../db/schema.js";
import { lockDigestExclusive } from "./digest-locks.js";
import { guarded } from "./pg-errors.js";
import { pruneAuditEvents } from "./audit.js";
import { ThrottleStore } from "./throttle.js";
import { EventStore } from "./events.js";

const DAY_MS = 24 * 3_600_000;

export interface GcOptions {
  dryRun: boolean;
  /** Leave alone what was pushed, mounted or touched more recently than this. */
  graceMs: number;
  /** Upload sessions idle longer than this expire. */
  uploadTtlMs: number;
  /** AUDIT_RETENTION_DAYS: older audit events are deleted; 0 or absent keeps them. */
  auditRetentionDays?: number;
  /** EVENTS_RETENTION_DAYS: older events (and their deliveries) are deleted once no delivery of theirs is pending; 0 or absent keeps them. */
  eventRetentionDays?: number;
}

/** How one run ended: its report, or what it failed with. */
export type GcOutcome = { report: GcReport } | { error: unknown };

/**
 * Told of every run, the background's and the API's alike, after it ends (metrics count runs,
 * the server logs them). Called synchronously; an observer must not throw.
 */
export interface GcObserver {
  ran(options: GcOptions, outcome: GcOutcome, seconds: number): void;
}

export interface GcReport {
  dryRun: boolean;
  manifestsDeleted: number;
  blobsDeleted: number;
  /** Bytes of blob content freed (manifest payloads not counted). */
  bytesFreed: number;
  uploadsExpired: number;
  /**
   * Stored bytes that had no database row (a crash between writing and recording), and what the
   * content store's own writes left behind (ContentDriver.sweep: temp files, abandoned multipart uploads).
   */
  orphansRemoved: number;
  /** Audit events past their retention, deleted (not counted in a dry run). */
  auditEventsDeleted: number;
  /** Events past their retention, deleted with their deliveries (not counted in a dry run). */
  eventsDeleted: number;
  /** Up to 100 digests of what was (or would be) deleted, manifests first. */
  sample: string[];
  durationMs: number;
}

const BATCH = 500;
/** The advisory lock every replica's collector takes (any constant all replicas share). */
export const GC_LOCK_ID = 0x41524743; // "ARGC"

/** Another process (or this one) is collecting now: this run did nothing. */
const collecting = () => aborted("a garbage collection is already running (in this process or another replica); try again when it has ended");

export function isCollecting(err: unknown): boolean {
  return isDomainError(err, "aborted") && err.message.startsWith("a garbage collection is already running");
}
const MAX_ROUNDS = 50;
const SAMPLE = 100;

class DryRunRollback extends Error {}

/** A manifest nothing keeps: untagged, no index lists it, and its subject (if any) is gone. */
function danglingManifest(m: typeof manifests, cutoff: Date) {
  const parent = sql`(select 1 from ${manifestReferences} r join ${manifests} p on p.id = r.manifest_id
      where r.kind = 'manifest' and r.digest = ${m.digest} and p.repository_id = ${m.repositoryId} and p.id <> ${m.id})`;
  const subject = sql`(select 1 from ${manifests} s where s.repository_id = ${m.repositoryId} and s.digest = ${m.subjectDigest})`;
  return sql`${m.pushTime} < ${cutoff.toISOString()}::timestamptz
    and not exists (select 1 from tags t where t.manifest_id = ${m.id})
    and not exists ${parent}
    and (${m.subjectDigest} is null or not exists ${subject})`;
}

function danglingBlob(cutoff: Date) {
  return and(lt(blobs.pushTime, cutoff), notExists(sql`(select 1 from ${manifestReferences} r where r.digest = ${blobs.digest} and r.kind <> 'manifest')`));
}

/**
 * An upload session idle since before `cutoff` that no writer holds: a writer renewing its lease
 * also moves update_time, and a live lease is skipped besides, so a chunk in flight never loses
 * its session.
 */
function expiredUpload(cutoff: Date) {
  return sql`${uploads.updateTime} < ${cutoff.toISOString()}::timestamptz and (${uploads.writer} is null or ${uploads.writerUntil} < now())`;
}

export class GarbageCollector {
  private readonly observers: GcObserver[] = [];

  constructor(
    private readonly db: Database,
    private readonly content: ContentDriver,
    /** Absent: runs are not coordinated with other processes (one process, tests). */
    private readonly exclusively?: DatabaseHandle["exclusively"],
  ) {}

  observe(observer: GcObserver): void {
    this.observers.push(observer);
  }

  async run(options: GcOptions): Promise<GcReport> {
    const started = performance.now();
    const tell = (outcome: GcOutcome) => {
      const seconds = (performance.now() - started) / 1000;
      for (const observer of this.observers) observer.ran(options, outcome, seconds);
    };
    try {
      // One collector at a time across replicas: the others skip instead of queueing behind it.
      const outcome = this.exclusively
        ? await this.exclusively(GC_LOCK_ID, () => this.collect(options, started))
        : { ran: true as const, value: await this.collect(options, started) };
      if (!outcome.ran) throw collecting();
      const report = outcome.value;
      tell({ report });
      return report;
    } catch (err) {
      tell({ error: err });
      throw err;
    }
  }

  private async collect(options: GcOptions, started: number): Promise<GcReport> {
    const cutoff = new Date(Date.now() - options.graceMs);
    const report: GcReport = {
      dryRun: options.dryRun,
      manifestsDeleted: 0,
      blobsDeleted: 0,
      bytesFreed: 0,
      uploadsExpired: 0,
      orphansRemoved: 0,
      auditEventsDeleted: 0,
      eventsDeleted: 0,
      sample: [],
      durationMs: 0,
    };
    const note = (digest: string) => {
      if (report.sample.length < SAMPLE) report.sample.push(digest);
    };

    if (options.dryRun) {
      // Do the database part for real inside a transaction, count, and roll it all back.
      await guarded(() =>
        this.db
          .transaction(async (tx) => {
            report.manifestsDeleted = await this.deleteManifests(tx, cutoff, note);
            const doomed = await tx.select({ digest: blobs.digest, size: blobs.sizeBytes }).from(blobs).where(danglingBlob(cutoff));
            report.blobsDeleted = doomed.length;
            report.bytesFreed = doomed.reduce((sum, b) => sum + b.size, 0);
            doomed.forEach((b) => note(b.digest));
            const [expired] = await tx
              .select({ n: sql<number>`count(*)::int` })
              .from(uploads)
              .where(expiredUpload(new Date(Date.now() - options.uploadTtlMs)));
            report.uploadsExpired = expired?.n ?? 0;
            throw new DryRunRollback();
          })
          .catch((err: unknown) => {
            if (!(err instanceof DryRunRollback)) throw err;
          }),
      );
    } else {
      report.manifestsDeleted = await guarded(() => this.deleteManifests(this.db, cutoff, note));
      await this.deleteBlobs(cutoff, report, note);
      report.uploadsExpired = await this.expireUploads(new Date(Date.now() - options.uploadTtlMs));
      report.orphansRemoved = await this.removeOrphans(cutoff);
      report.auditEventsDeleted = await this.pruneAudit(options.auditRetentionDays ?? 0);
      const eventDays = options.eventRetentionDays ?? 0;
      if (eventDays > 0) report.eventsDeleted = await new EventStore(this.db).prune(new Date(Date.now() - eventDays * DAY_MS));
    }
    report.durationMs = Math.round(performance.now() - started);
    return report;
  }

  /** Audit events past their retention, and sign-in failures nobody counts any more (a day old). */
  private async pruneAudit(retentionDays: number): Promise<number> {
    await new ThrottleStore(this.db).prune(new Date(Date.now() - DAY_MS));
    return retentionDays > 0 ? pruneAuditEvents(this.db, new Date(Date.now() - retentionDays * DAY_MS)) : 0;
  }

  /**
   * Deletes dangling manifests in rounds: deleting an index frees its children, deleting a
   * subject frees its referrers. The condition is repeated in the DELETE so a manifest that a
   * concurrent push touched (push_time) is re-checked under its row lock and kept.
   */
  private async deleteManifests(db: Database, cutoff: Date, note: (d: string) => void): Promise<number> {
    let total = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const candidates = db.select({ id: manifests.id }).from(manifests).where(danglingManifest(manifests, cutoff)).limit(BATCH);
      const deleted = await db
        .delete(manifests)
        .where(and(sql`${manifests.id} in ${candidates}`, danglingManifest(manifests, cutoff)))
        .returning({ digest: manifests.digest });
      deleted.forEach((d) => note(d.digest));
      total += deleted.length;
      if (deleted.length === 0) break;
    }
    return total;
  }

  /**
   * Blobs one at a time: under the digest's exclusive lock, check again, delete the rows; then,
   * again under the lock and only if no row came back meanwhile, delete the bytes. A crash in
   * between leaves bytes without a row, which removeOrphans() finds later; never a row without bytes.
   */
  private async deleteBlobs(cutoff: Date, report: GcReport, note: (d: string) => void): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const candidates = await guarded(() => this.db.select({ digest: blobs.digest }).from(blobs).where(danglingBlob(cutoff)).limit(BATCH));
      let deletedThisRound = 0;
      for (const { digest } of candidates) {
        const size = await guarded(() =>
          this.db.transaction(async (tx) => {
            await lockDigestExclusive(tx, digest);
            const [still] = await tx
              .select({ size: blobs.sizeBytes })
              .from(blobs)
              .where(and(eq(blobs.digest, digest), danglingBlob(cutoff)));
            if (!still) return undefined;
            await tx.delete(repositoryBlobs).where(eq(repositoryBlobs.digest, digest));
            await tx.delete(blobs).where(eq(blobs.digest, digest));
            return still.size;
          }),
        );
        if (size === undefined) continue;
        await this.deleteBytesIfUnrecorded(digest);
        report.blobsDeleted++;
        report.bytesFreed += size;
        deletedThisRound++;
        note(digest);
      }
      if (candidates.length < BATCH || deletedThisRound === 0) break;
    }
  }

  private async deleteBytesIfUnrecorded(digest: string): Promise<boolean> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await lockDigestExclusive(tx, digest);
        const [row] = await tx.select({ digest: blobs.digest }).from(blobs).where(eq(blobs.digest, digest));
        if (row) return false;
        await this.content.delete(digest);
        return true;
      }),
    );
  }

  private async expireUploads(cutoff: Date): Promise<number> {
    let expired = 0;
    for (;;) {
      const rows = await guarded(() =>
        this.db
          .delete(uploads)
          .where(and(sql`${uploads.id} in (select id from ${uploads} where ${expiredUpload(cutoff)} limit ${BATCH})`, expiredUpload(cutoff)))
          .returning({ id: uploads.id }),
      );
      for (const row of rows) await this.content.abort(row.id);
      expired += rows.length;
      if (rows.length < BATCH) break;
    }
    // Upload bytes whose session row is gone (a crash, or a row deleted with its repository).
    for await (const upload of this.content.listUploads()) {
      if (upload.modifiedTime >= cutoff) continue;
      const [row] = await guarded(() => this.db.select({ id: uploads.id }).from(uploads).where(eq(uploads.id, upload.uploadId)));
      if (!row) {
        await this.content.abort(upload.uploadId);
        expired++;
      }
    }
    return expired;
  }

  private async removeOrphans(cutoff: Date): Promise<number> {
    let removed = (await this.content.sweep?.(cutoff))?.removed ?? 0;
    for await (const stored of this.content.list()) {
      if (stored.modifiedTime >= cutoff) continue;
      const [row] = await guarded(() => this.db.select({ digest: blobs.digest }).from(blobs).where(eq(blobs.digest, stored.digest)));
      if (!row && (await this.deleteBytesIfUnrecorded(stored.digest))) removed++;
    }
    return removed;
  }
}
