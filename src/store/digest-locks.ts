// One advisory lock per digest, shared by everything that makes a blob reachable (a blob commit,
// a manifest push that references it) and taken exclusively by garbage collection while it
// deletes the blob. So GC never deletes bytes that a concurrent push is about to rely on: the race
// the GitLab Container Registry leaves open (its GC deletes the stored object, then the row, and a
// push linking the same blob in between keeps a row whose bytes are gone) is closed here.
import { sql } from "drizzle-orm";
import type { Database } from "../db/database.js";

const key = (digest: string) => sql`hashtextextended(${digest}, 0)`;

/** Shared locks, in digest order (a fixed order cannot deadlock), until the transaction ends. */
export async function lockDigestsShared(tx: Database, digests: Iterable<string>): Promise<void> {
  for (const digest of [...new Set(digests)].sort()) {
    await tx.execute(sql`select pg_advisory_xact_lock_shared(${key(digest)})`);
  }
}

/** The exclusive lock garbage collection holds while it decides about and deletes one blob. */
export async function lockDigestExclusive(tx: Database, digest: string): Promise<void> {
  await tx.execute(sql`select pg_advisory_xact_lock(${key(digest)})`);
}
