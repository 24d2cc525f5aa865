// One keyset-paginated list for every resource: filter, optional name search, one sort key
// plus the id as tie-breaker, LIMIT n+1. Never OFFSET, so page 1000 costs what page 1 costs.
import { and, asc, desc, eq, getTableColumns, sql, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import { invalidArgument, notFound } from "../domain/errors.js";
import type { Database } from "../db/database.js";
import type { PageTokens } from "./page-token.js";

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 1000;
const MAX_QUERY = 255;

export interface ListRequest {
  pageSize: number;
  pageToken: string;
  orderBy: string;
  query: string;
}

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  totalSize: number;
}

/** How one table is listed: its sortable columns (by their API names) and its filters. */
export interface ListSpec {
  table: PgTable;
  id: PgColumn;
  name: PgColumn;
  /** API sort key → column; "name" must be among them. Time columns hold Dates. */
  sortable: Record<string, PgColumn>;
  /** Only the children of this parent, when set. */
  parent?: ParentFilter;
  /** Other conditions every row must meet (kind…), already validated. */
  filters?: (SQL | undefined)[];
  /** The values of those conditions, so a token cannot be replayed with other filters. */
  filterKey?: string;
}

export interface ParentFilter {
  /** The listed table's column holding the parent id. */
  column: PgColumn;
  value: string;
  /** The parent table's id column, to tell "no children" from "no such parent". */
  parentId: PgColumn;
  noun: string;
}

export function resolvePageSize(pageSize: number): number {
  if (pageSize < 0) throw invalidArgument(`page_size: must not be negative (got ${pageSize})`);
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

function parseOrderBy(orderBy: string, sortable: Record<string, PgColumn>): { key: string; descending: boolean } {
  const match = /^\s*([a-z_]+)(?:\s+(asc|desc))?\s*$/i.exec(orderBy);
  const key = match ? match[1]!.toLowerCase() : orderBy.trim() === "" ? "name" : "";
  if (!(key in sortable)) {
    throw invalidArgument(
      `order_by: expected one of ${Object.keys(sortable).join(", ")}, optionally followed by " desc" (got "${orderBy.slice(0, 60)}")`,
    );
  }
  return { key, descending: match?.[2]?.toLowerCase() === "desc" };
}

function likePattern(query: string): string {
  if (query.length > MAX_QUERY) throw invalidArgument(`query: must be at most ${MAX_QUERY} characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(query)) throw invalidArgument("query: must not contain control characters");
  return `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export async function listPage<Row extends { id: string }>(
  db: Database,
  tokens: PageTokens,
  resource: string,
  spec: ListSpec,
  request: ListRequest,
): Promise<Page<Row>> {
  const pageSize = resolvePageSize(request.pageSize);
  const order = parseOrderBy(request.orderBy, spec.sortable);
  const column = spec.sortable[order.key]!;
  const isTime = column.dataType === "date";
  const filters = [...(spec.filters ?? [])];
  if (spec.parent) filters.push(eq(spec.parent.column, spec.parent.value));
  if (request.query !== "") filters.push(sql`${spec.name} ilike ${likePattern(request.query)}`);
  const where = and(...filters);

  const fingerprint = `${resource}|${spec.parent?.value ?? ""}|${spec.filterKey ?? ""}|${request.query}|${order.key}|${order.descending ? "desc" : "asc"}`;
  let cursorCondition: SQL | undefined;
  if (request.pageToken !== "") {
    const cursor = tokens.decode(fingerprint, request.pageToken);
    const value = isTime ? sql`${new Date(Number(cursor.value)).toISOString()}::timestamptz` : sql`${String(cursor.value)}`;
    cursorCondition = order.descending
      ? sql`(${column}, ${spec.id}) < (${value}, ${cursor.id}::uuid)`
      : sql`(${column}, ${spec.id}) > (${value}, ${cursor.id}::uuid)`;
  }

  const direction = order.descending ? desc : asc;
  const [rows, total] = await Promise.all([
    db
      .select()
      .from(spec.table)
      .where(and(where, cursorCondition))
      .orderBy(direction(column), direction(spec.id))
      .limit(pageSize + 1) as Promise<Row[]>,
    db.select({ n: sql<number>`count(*)::int` }).from(spec.table).where(where),
  ]);

  let nextPageToken = "";
  if (rows.length > pageSize) {
    rows.length = pageSize;
    const last = rows[pageSize - 1]! as Record<string, unknown> & { id: string };
    const sortValue = last[propertyOf(spec.table, column)];
    nextPageToken = tokens.encode(fingerprint, {
      value: sortValue instanceof Date ? sortValue.getTime() : String(sortValue),
      id: last.id,
    });
  }
  // An empty page for a parent that does not exist is a typo, not an empty parent.
  if (rows.length === 0 && spec.parent) await requireParent(db, spec.parent);
  return { items: rows, nextPageToken, totalSize: total[0]?.n ?? 0 };
}

async function requireParent(db: Database, parent: ParentFilter): Promise<void> {
  const found = await db
    .select({ one: sql`1` })
    .from(parent.parentId.table)
    .where(eq(parent.parentId, parent.value))
    .limit(1);
  if (found.length === 0) throw notFound(`${parent.noun} ${parent.value} not found`);
}

// drizzle rows are keyed by the TypeScript property, columns know only their SQL name.
function propertyOf(table: PgTable, column: PgColumn): string {
  for (const [key, value] of Object.entries(getTableColumns(table))) if (value === column) return key;
  throw new Error(`column ${column.name} is not in its table`);
}
