// The catalog's rows as the API shows them: each with its parents' ids and its full name
// (`local/team`, `local/team/app`, `local/team/app:1.0`), read in the same query as the row
// (inner joins on primary keys), so a name always belongs to the row it came with. Lists, gets,
// lookups by name and searches all read these views; searches also match and sort on the names.
// What a row may lack (a tag never pulled) is an optional join, not a subquery per row: PostgreSQL
// plans a correlated subquery over a small table as a sequential scan run again for every row
// (a page of 100 tags took 2–3× as long once a few hundred tags had been pulled), while a join's
// inner side is planned as an index lookup per row (docs/design-notes.md, "Optional joins").
import { and, Column, eq, getTableColumns, is, SQL, sql } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Database } from "../db/database.js";
import { namespaces, registries, repositories, tagPulls, tags } from "../db/schema.js";
import { notFound } from "../domain/errors.js";
import type { Visibility, VisibilitySql } from "./listing.js";
import { VISIBILITY_SQL, visibilityParameters } from "./visibility.js";

/** A column a view gains: a joined table's column, or an expression whose values are used as they come (text, numbers). */
export type ViewColumn = PgColumn | SQL;

/**
 * A table joined into a view, on a key of the joined table (at most one row per row of the view).
 * `optional`: a left join, whose columns are null where it has no row. An optional join only adds
 * fields: nothing filters or sorts on them, so a count of the view's rows leaves it out.
 */
export interface ViewJoin {
  table: PgTable;
  on: SQL;
  optional?: boolean;
}

/** A table with its parents joined in, and the columns it gains from them. */
export interface View {
  table: PgTable;
  id: PgColumn;
  joins: ViewJoin[];
  columns: Record<string, ViewColumn>;
}

/** A field of a view's rows: what is selected, its column's type, and how a value read as JSON becomes the row's. */
export interface ViewField {
  expression: PgColumn | SQL;
  /** The SQL type of the column the field is (or is read as); absent for an expression used as it comes. */
  sqlType?: string;
  /** Absent: the value as JSON gives it (text, numbers, booleans, json). */
  fromJson?: (value: unknown) => unknown;
}

/** Every field of a view's rows (the table's columns, then the view's), by property name. */
export function viewFields(view: View): Record<string, ViewField> {
  const fields: Record<string, ViewField> = {};
  const column = (c: PgColumn): ViewField => ({
    expression: c,
    sqlType: c.getSQLType(),
    // A timestamp comes as ISO text, which the column's own mapping makes a Date.
    fromJson: c.dataType === "date" ? (value) => c.mapFromDriverValue(value) : undefined,
  });
  for (const [key, c] of Object.entries(getTableColumns(view.table))) fields[key] = column(c);
  for (const [key, c] of Object.entries(view.columns)) {
    fields[key] = is(c, Column) ? column(c) : { expression: c };
  }
  return fields;
}

// Names are "C"-collated columns: the concatenations sort byte-wise too.
const namespaceFullName = sql<string>`(${registries.name} || '/' || ${namespaces.name})`;
export const repositoryFullName = sql<string>`(${registries.name} || '/' || ${namespaces.name} || '/' || ${repositories.name})`;
export const tagFullName = sql<string>`(${registries.name} || '/' || ${namespaces.name} || '/' || ${repositories.name} || ':' || ${tags.name})`;

const registryOfNamespace = { table: registries, on: eq(registries.id, namespaces.registryId) };
const namespaceOfRepository = { table: namespaces, on: eq(namespaces.id, repositories.namespaceId) };

export const registryView: View = { table: registries, id: registries.id, joins: [], columns: {} };

export const namespaceView: View = {
  table: namespaces,
  id: namespaces.id,
  joins: [registryOfNamespace],
  columns: { fullName: namespaceFullName },
};

export const repositoryView: View = {
  table: repositories,
  id: repositories.id,
  joins: [namespaceOfRepository, registryOfNamespace],
  columns: { registryId: namespaces.registryId, fullName: repositoryFullName },
};

export const tagView: View = {
  table: tags,
  id: tags.id,
  joins: [
    { table: repositories, on: eq(repositories.id, tags.repositoryId) },
    namespaceOfRepository,
    registryOfNamespace,
    // Its own table (src/store/pull-times.ts), with a row once the tag is pulled by name.
    { table: tagPulls, on: eq(tagPulls.tagId, tags.id), optional: true },
  ],
  columns: {
    namespaceId: repositories.namespaceId,
    registryId: namespaces.registryId,
    fullName: tagFullName,
    lastPullTime: tagPulls.lastPullTime,
  },
};

export type NamespaceView = typeof namespaces.$inferSelect & { fullName: string };
export type RepositoryView = typeof repositories.$inferSelect & { registryId: string; fullName: string };
export type TagView = typeof tags.$inferSelect & { namespaceId: string; registryId: string; fullName: string; lastPullTime: Date | null };

/**
 * `select <the view's columns> from <table> join <parents>`, to be completed with where/order/limit.
 * `aliased`: each column named by its property, for a subquery whose rows are read by name (a list
 * page read as JSON, src/store/listing.ts).
 */
export function selectView(db: Database, view: View, options: { aliased?: boolean } = {}) {
  const fields = Object.fromEntries(
    Object.entries(viewFields(view)).map(([key, field]) => [key, options.aliased ? sql`${field.expression}`.as(key) : field.expression]),
  );
  let query = db.select(fields).from(view.table).$dynamic();
  for (const join of view.joins) query = join.optional ? query.leftJoin(join.table, join.on) : query.innerJoin(join.table, join.on);
  return query;
}

/** One row of a view by id (inside a transaction: pass `tx`); undefined when it is gone. */
export async function viewById<Row>(db: Database, view: View, id: string): Promise<Row | undefined> {
  const [row] = await selectView(db, view).where(eq(view.id, id)).limit(1);
  return row as Row | undefined;
}

/** Get-by-id of a view as a statement built once (Get calls are the hottest path). */
export function viewGetterById<Row>(db: Database, view: View, noun: string): (id: string) => Promise<Row> {
  const query = selectView(db, view)
    .where(eq(view.id, sql.placeholder("id")))
    .limit(1)
    .prepare(`${noun}_view_by_id`);
  return async (id) => {
    const rows = (await query.execute({ id })) as Row[];
    if (rows.length === 0) throw notFound(`${noun} ${id} not found`);
    return rows[0]!;
  };
}

/**
 * One row of a view found by name: `where` compares columns with placeholders, whose values each
 * call gives. With a Visibility, only a row the caller may see is found (`visible`), so a name it
 * may not read is found no more than one that does not exist. Both statements are built once.
 */
export function viewFinder<Row>(
  db: Database,
  view: View,
  name: string,
  where: SQL,
  visible: (v: VisibilitySql) => SQL,
): (values: Record<string, unknown>, visibility?: Visibility) => Promise<Row | undefined> {
  const everyone = selectView(db, view).where(where).limit(1).prepare(name);
  const caller = selectView(db, view)
    .where(and(where, visible(VISIBILITY_SQL)))
    .limit(1)
    .prepare(`${name}_visible`);
  return async (values, visibility) => {
    const rows = visibility ? await caller.execute({ ...values, ...visibilityParameters(visibility) }) : await everyone.execute(values);
    return rows[0] as Row | undefined;
  };
}
