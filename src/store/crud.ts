// Get, update and delete by id, shared by the four catalog tables: the same optimistic
// concurrency (version = etag), the same not-found/aborted/failed-precondition answers.
import { and, eq, sql } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Database } from "../db/database.js";
import { aborted, failedPrecondition, notFound } from "../domain/errors.js";

export interface CatalogTable {
  table: PgTable;
  id: PgColumn;
  version: PgColumn;
  updateTime: PgColumn;
  /** "registry", "namespace"…: the word used in error messages. */
  noun: string;
}

/** The child table whose rows make a parent "non-empty". */
export interface Children {
  table: PgTable;
  parentId: PgColumn;
  /** Plural noun for messages: "namespaces". */
  nouns: string;
}

/** Largest row version: the column is a PostgreSQL integer. */
const MAX_VERSION = 2 ** 31 - 1;

/**
 * Etags are the row version in decimal. A malformed one, or one past any version a row can have,
 * can never match, so it is refused up front (and never reaches the integer column).
 */
function parseEtag(etag: string): number | undefined {
  if (etag === "") return undefined;
  return /^[1-9][0-9]{0,9}$/.test(etag) && Number(etag) <= MAX_VERSION ? Number(etag) : -1;
}

/**
 * Get-by-id as a statement built once: Get calls are the hottest path, and drizzle spends more
 * time building a query than PostgreSQL spends answering this one.
 */
export function getterById<Row>(db: Database, t: CatalogTable): (id: string) => Promise<Row> {
  const query = db
    .select()
    .from(t.table)
    .where(eq(t.id, sql.placeholder("id")))
    .limit(1)
    .prepare(`${t.noun}_by_id`);
  return async (id) => {
    const rows = (await query.execute({ id })) as Row[];
    if (rows.length === 0) throw notFound(`${t.noun} ${id} not found`);
    return rows[0]!;
  };
}

/** Explains why an update or delete matched no row: the row is gone, or its etag moved on. */
async function missOrStale(db: Database, t: CatalogTable, id: string): Promise<never> {
  const rows = await db.select({ version: t.version }).from(t.table).where(eq(t.id, id)).limit(1);
  if (rows.length === 0) throw notFound(`${t.noun} ${id} not found`);
  throw aborted(`${t.noun} ${id} was changed by someone else (etag is now "${String(rows[0]!.version)}"); read it again and retry`);
}

export async function updateById<Row>(db: Database, t: CatalogTable, id: string, patch: Record<string, unknown>, etag: string): Promise<Row> {
  const version = parseEtag(etag);
  const rows = (await db
    .update(t.table)
    .set({ ...patch, version: sql`${t.version} + 1`, updateTime: sql`now()` })
    .where(and(eq(t.id, id), version === undefined ? undefined : eq(t.version, version)))
    .returning()) as Row[];
  if (rows.length === 0) return missOrStale(db, t, id);
  return rows[0]!;
}

/**
 * Deletes one row. Unless `force`, a row that still has children is refused. The row is
 * locked first, so a child inserted concurrently either commits before the check (and is
 * seen) or waits for the delete and then fails on its foreign key; none is lost silently.
 */
export async function deleteById(
  db: Database,
  t: CatalogTable,
  id: string,
  options: {
    etag: string;
    force?: boolean;
    children?: Children;
    /** Runs in the delete's transaction (its audit event). */ then?: (tx: Database) => Promise<void>;
  },
): Promise<void> {
  const version = parseEtag(options.etag);
  await db.transaction(async (tx) => {
    const locked = await tx.select({ version: t.version }).from(t.table).where(eq(t.id, id)).for("update");
    if (locked.length === 0) throw notFound(`${t.noun} ${id} not found`);
    if (version !== undefined && locked[0]!.version !== version) {
      throw aborted(`${t.noun} ${id} was changed by someone else (etag is now "${String(locked[0]!.version)}"); read it again and retry`);
    }
    const children = options.children;
    if (children && !options.force) {
      const child = await tx
        .select({ one: sql`1` })
        .from(children.table)
        .where(eq(children.parentId, id))
        .limit(1);
      if (child.length > 0) {
        throw failedPrecondition(`${t.noun} ${id} still has ${children.nouns}; delete them first, or set force to delete it with everything in it`);
      }
    }
    await options.then?.(tx);
    await tx.delete(t.table).where(eq(t.id, id));
  });
}
