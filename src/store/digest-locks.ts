// One advisory lock per digest, shared by everything that makes a blob reachable (a blob commit,
// a manifest push that references it) and taken exclusively by garbage collection while it
// deletes the blob. So GC never deletes bytes that a concurrent push is about to rely on: the race
// the GitLab Container Registry leaves open (its GC deletes the stored object, then the row, and a
// push linking the same blob in between keeps a row whose bytes are gone) is closed here.
//
// The locks are buckets of digests, not one per digest: PostgreSQL keeps every lock a transaction
// holds in one shared table (max_locks_per_transaction × max_connections entries, ~6,400 by
// default), and a manifest naming 20,000 blobs took 20,000 locks and a round trip each, until the
// table was full and the push failed as "database unavailable" (found by a probe; on a real
// server it would fail other transactions too). With BUCKETS, a push takes at most that many
// locks, in one statement; two digests sharing a bucket only means a push may wait for GC's
// deletion of an unrelated blob, which takes milliseconds.
import { sql } from "drizzle-orm";
import type { Database } from "../db/database.js";

/** Locks at most one transaction holds for its digests. */
const BUCKETS = 1024;
/** The first key of the two-key advisory locks, a key space of its own (the one-key locks elsewhere never meet it): "DGST". */
const DIGEST_LOCKS = 0x44475354;

/**
 * A digest's bucket, from the first 32 bits of its hex, which are uniform. Every digest that
 * reaches a lock has passed the grammar (checkDigest: sha256 or sha512, lower-case hex).
 */
function bucketOf(digest: string): number {
  const at = digest.indexOf(":") + 1;
  return Number.parseInt(digest.slice(at, at + 8), 16) % BUCKETS;
}

/** Shared locks of the digests' buckets, in bucket order (a fixed order cannot deadlock), until the transaction ends. */
export async function lockDigestsShared(tx: Database, digests: Iterable<string>): Promise<void> {
  const buckets = [...new Set([...digests].map(bucketOf))].sort((a, b) => a - b);
  if (buckets.length === 0) return;
  if (buckets.length === 1) {
    await tx.execute(sql`select pg_advisory_xact_lock_shared(${DIGEST_LOCKS}::int4, ${buckets[0]}::int4)`);
    return;
  }
  // One statement: unnest yields the array in order, so the locks are taken in bucket order.
  await tx.execute(sql`select pg_advisory_xact_lock_shared(${DIGEST_LOCKS}::int4, b) from unnest(${`{${buckets.join(",")}}`}::int4[]) as b`);
}

/** The exclusive lock garbage collection holds while it decides about and deletes one blob. */
export async function lockDigestExclusive(tx: Database, digest: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${DIGEST_LOCKS}::int4, ${bucketOf(digest)}::int4)`);
}
