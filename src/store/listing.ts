// One keyset-paginated list for every resource: filters, optional name search, one sort key
// plus the id as tie-breaker, LIMIT n+1. Never OFFSET, so page 1000 costs what page 1 costs.
// Each query shape (order, direction, which filters, first page or not) is built once as a
// prepared statement: drizzle spends more time building a query than PostgreSQL spends on a page.
// total_size is counted with the first page and carried in the page token. What a caller may
// see (its readable scope, docs/identity.md) is one more condition of the same query, so paging
// and total_size count only that. A resource listed through a view (src/store/views.ts) comes
// with its parents' ids and its full name, and may be searched and sorted on those.
import { createHash } from "node:crypto";
import { and, asc, Column, desc, eq, getTableColumns, is, sql, type Placeholder, type SQL } from "drizzle-orm";
import type { PgColumn, PgTable } from "drizzle-orm/pg-core";
import type { Database } from "../db/database.js";
import { invalidArgument, notFound } from "../domain/errors.js";
import { hasControlCharacter } from "../domain/text.js";
import type { HotCache } from "./hot-cache.js";
import type { PageTokens } from "./page-token.js";
import { selectView, viewFields, type View } from "./views.js";
import { VISIBILITY_SQL, visibilityParameters } from "./visibility.js";

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
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

/**
 * A filter: equality on a column, a comparison (`cast` for values that are not text), or any
 * condition on the value's placeholder.
 */
type ColumnFilter = PgColumn | { column: PgColumn; op: "=" | ">=" | "<"; cast?: "timestamptz" | "uuid" } | { where: (value: Placeholder) => SQL };

/**
 * Who may see what, as the ids a caller's role bindings name (joined into the query's
 * parameters). Absent from a list call: everything is visible.
 */
export interface Visibility {
  registries: readonly string[];
  namespaces: readonly string[];
  account?: string;
}

/** The visibility parameters as SQL arrays, for a ListSpec's `visible` condition. */
export interface VisibilitySql {
  registries: SQL;
  namespaces: SQL;
  account: SQL;
}

/** A sort key: a column of the table (time columns hold Dates), or an expression of the view the rows carry as `property`. */
type SortKey = PgColumn | { expression: SQL; property: string };

/** How one table is listed. */
export interface ListSpec {
  /** The resource's name in page-token fingerprints ("tags"). */
  resource: string;
  table: PgTable;
  id: PgColumn;
  /** The rows with their parents joined in (their ids, the full name); absent: the table's rows. */
  view?: View;
  /** The conditions read the view's joined tables, so the count joins them too (else it counts the table alone). */
  countThroughView?: boolean;
  /** The column or view expression `query` searches; a resource without one refuses a query. */
  name?: PgColumn | SQL;
  /** API sort key → what it sorts on. */
  sortable: Record<string, SortKey>;
  /** The order of an empty order_by (default "name"). */
  defaultOrder?: string;
  /** Names are unique in the whole table ("global"), within a parent ("parent"), or not at all. */
  uniqueName: "global" | "parent" | "none";
  /** The parent filter, when the resource has a parent. */
  parent?: { column: PgColumn; parentId: PgColumn; noun: string };
  /** Further filters by name (e.g. a registry's kind). */
  filters?: Record<string, ColumnFilter>;
  /** The rows a caller with a Visibility may see. */
  visible?: (v: VisibilitySql) => SQL;
  /**
   * Keeps the count of a parent's rows (a first page's `total_size`) in the read cache, when the
   * parent is a repository: every change to its rows notifies the repository (src/store/hot-cache.ts),
   * so a kept count is dropped by the change that makes it wrong. Counting a repository's 10,000
   * tags is half the CPU of a first page on PGlite.
   */
  parentCountCache?: HotCache;
}

/** The filter values of one call. */
export interface ListFilter {
  parent?: string;
  values?: Record<string, string | undefined>;
  /** Only what these bindings let the caller see (undefined: everything). */
  visibility?: Visibility;
}

interface Shape {
  order: string;
  descending: boolean;
  parent: boolean;
  filters: string[];
  search: boolean;
  cursor: boolean;
  visible: boolean;
}

type Prepared = { execute(values: Record<string, unknown>): Promise<unknown[]> };

function resolvePageSize(pageSize: number): number {
  if (pageSize < 0) throw invalidArgument(`page_size: must not be negative (got ${pageSize})`);
  if (pageSize === 0) return DEFAULT_PAGE_SIZE;
  return Math.min(pageSize, MAX_PAGE_SIZE);
}

function parseOrderBy(orderBy: string, sortable: Record<string, SortKey>, defaultOrder: string): { key: string; descending: boolean } {
  const given = orderBy.trim() === "" ? defaultOrder : orderBy;
  const match = /^\s*([a-z_]+)(?:\s+(asc|desc))?\s*$/i.exec(given);
  const key = match ? match[1]!.toLowerCase() : "";
  if (!(key in sortable)) {
    throw invalidArgument(`order_by: expected one of ${Object.keys(sortable).join(", ")}, optionally followed by " desc" (got "${orderBy.slice(0, 60)}")`);
  }
  return { key, descending: match?.[2]?.toLowerCase() === "desc" };
}

/** A short, stable name for a visibility in page-token fingerprints (a token is bound to who asked). */
function visibilityKey(v: Visibility | undefined): string {
  if (!v) return "";
  return createHash("sha256")
    .update(JSON.stringify([[...v.registries].sort(), [...v.namespaces].sort(), v.account ?? ""]))
    .digest("base64url")
    .slice(0, 16);
}

const isColumn = (key: SortKey): key is PgColumn => is(key, Column);

function likePattern(query: string): string {
  if (query.length > MAX_QUERY) throw invalidArgument(`query: must be at most ${MAX_QUERY} characters`);
  if (hasControlCharacter(query)) throw invalidArgument("query: must not contain control characters");
  return `%${query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export class Lister<Row extends { id: string }> {
  private readonly pages = new Map<string, Prepared>();
  private readonly counts = new Map<string, Prepared>();
  private readonly parentExists?: Prepared;
  private readonly property = new Map<PgColumn, string>();
  /** What is listed: the spec's view, or the table alone. */
  private readonly view: View;
  /** The fields whose values are read into something else than JSON gives (dates). */
  private readonly readers: [string, (value: unknown) => unknown][];

  constructor(
    private readonly db: Database,
    private readonly tokens: PageTokens,
    private readonly spec: ListSpec,
  ) {
    for (const [key, column] of Object.entries(getTableColumns(spec.table))) this.property.set(column, key);
    this.view = spec.view ?? { table: spec.table, id: spec.id, joins: [], columns: {} };
    this.readers = [];
    for (const [name, field] of Object.entries(viewFields(this.view))) {
      // JSON carries bytea as escaped text: such a column would need reading back, which no listed table has needed.
      if (field.sqlType === "bytea") throw new Error(`${spec.resource}: field ${name} is bytea, which a page read as JSON does not carry`);
      if (field.fromJson) this.readers.push([name, field.fromJson]);
    }
    for (const key of Object.values(spec.sortable)) {
      if (!isColumn(key) && !(spec.view && key.property in spec.view.columns))
        throw new Error(`${spec.resource}: sort key ${key.property} is not a column of its view`);
    }
    if (spec.parent) {
      this.parentExists = db
        .select({ one: sql`1` })
        .from(spec.parent.parentId.table)
        .where(eq(spec.parent.parentId, sql.placeholder("parent")))
        .limit(1)
        .prepare(`${spec.resource}_parent_exists`);
    }
  }

  async list(request: ListRequest, filter: ListFilter = {}): Promise<Page<Row>> {
    const pageSize = resolvePageSize(request.pageSize);
    const order = parseOrderBy(request.orderBy, this.spec.sortable, this.spec.defaultOrder ?? "name");
    const filters = Object.keys(this.spec.filters ?? {})
      .filter((f) => filter.values?.[f] !== undefined)
      .sort();
    const parent = filter.parent !== undefined && this.spec.parent !== undefined;
    const search = request.query !== "";
    if (search && !this.spec.name) throw invalidArgument(`query: ${this.spec.resource} cannot be searched by name`);
    const visibility = this.spec.visible ? filter.visibility : undefined;
    const values: Record<string, unknown> = { limit: pageSize + 1 };
    if (parent) values.parent = filter.parent;
    for (const f of filters) values[`f_${f}`] = filter.values![f];
    if (search) values.pattern = likePattern(request.query);
    if (visibility) Object.assign(values, visibilityParameters(visibility));

    // What selects the rows, and who may see them: in a page token's fingerprint (with the order)
    // and in the key of a kept count (without: a count does not depend on the order).
    const selection = [this.spec.resource, filter.parent ?? "", ...filters.map((f) => `${f}=${filter.values![f]}`), request.query];
    const viewer = visibilityKey(visibility);
    const fingerprint = [...selection, order.key, order.descending ? "desc" : "asc", viewer].join("|");
    let total: number;
    const cursor = request.pageToken === "" ? undefined : this.tokens.decode(fingerprint, request.pageToken);
    if (cursor) {
      values.cursorValue = typeof cursor.value === "number" ? new Date(cursor.value).toISOString() : cursor.value;
      values.cursorId = cursor.id;
      total = cursor.total;
    } else {
      const shapeKey = JSON.stringify([parent, filters, search, visibility !== undefined]);
      let count = this.counts.get(shapeKey);
      if (!count) {
        let from = this.db
          .select({ n: sql<number>`count(*)::int` })
          .from(this.spec.table)
          .$dynamic();
        if (this.spec.countThroughView) for (const join of this.spec.view!.joins) if (!join.optional) from = from.innerJoin(join.table, join.on);
        count = from
          .where(and(...this.conditions({ order: order.key, descending: false, parent, filters, search, cursor: false, visible: visibility !== undefined })))
          .prepare(`${this.spec.resource}_count`);
        this.counts.set(shapeKey, count);
      }
      total = await this.countOf(count, values, parent ? filter.parent : undefined, ["count", ...selection, viewer].join("|"));
    }

    const shape: Shape = {
      order: order.key,
      descending: order.descending,
      parent,
      filters,
      search,
      cursor: cursor !== undefined,
      visible: visibility !== undefined,
    };
    const rows = this.rowsOf(await this.pageQuery(shape).execute(values));

    let nextPageToken = "";
    if (rows.length > pageSize) {
      rows.length = pageSize;
      const last = rows[pageSize - 1]! as Record<string, unknown> & { id: string };
      const key = this.spec.sortable[order.key]!;
      const sortValue = last[isColumn(key) ? this.property.get(key)! : key.property];
      nextPageToken = this.tokens.encode(fingerprint, {
        value: sortValue instanceof Date ? sortValue.getTime() : String(sortValue),
        id: last.id,
        total,
      });
    }
    // An empty first page for a parent that does not exist is a typo, not an empty parent.
    if (rows.length === 0 && parent && !cursor) {
      const found = await this.parentExists!.execute({ parent: filter.parent });
      if (found.length === 0) throw notFound(`${this.spec.parent!.noun} ${filter.parent} not found`);
    }
    return { items: rows, nextPageToken, totalSize: total };
  }

  /**
   * Runs the count, or answers it from the read cache (ListSpec.parentCountCache) for a parent's
   * rows. The cache itself keeps and answers nothing while it is not active.
   */
  private async countOf(count: Prepared, values: Record<string, unknown>, parentId: string | undefined, key: string): Promise<number> {
    const cache = parentId === undefined ? undefined : this.spec.parentCountCache;
    const kept = cache?.get<number>(key);
    if (kept !== undefined) return kept;
    // Taken before the query: a change committed meanwhile keeps this answer out of the cache.
    const ticket = cache?.ticket();
    const [row] = (await count.execute(values)) as { n: number }[];
    const total = row?.n ?? 0;
    cache?.set(key, parentId!, total, 64 + key.length, ticket);
    return total;
  }

  /** Whether a page in this shape can sort by the name alone (it is unique there). */
  private nameAlone(shape: Shape): boolean {
    return shape.order === "name" && (this.spec.uniqueName === "global" || (this.spec.uniqueName === "parent" && shape.parent));
  }

  private sortExpression(order: string): PgColumn | SQL {
    const key = this.spec.sortable[order]!;
    return isColumn(key) ? key : key.expression;
  }

  private conditions(shape: Shape): (SQL | undefined)[] {
    const spec = this.spec;
    const conditions: (SQL | undefined)[] = [];
    if (shape.parent) conditions.push(eq(spec.parent!.column, sql.placeholder("parent")));
    for (const f of shape.filters) conditions.push(filterCondition(spec.filters![f]!, sql.placeholder(`f_${f}`)));
    if (shape.search) conditions.push(sql`${spec.name} ilike ${sql.placeholder("pattern")}`);
    if (shape.visible) conditions.push(spec.visible!(VISIBILITY_SQL));
    if (shape.cursor) {
      const key = spec.sortable[shape.order]!;
      const column = this.sortExpression(shape.order);
      const value = isColumn(key) && key.dataType === "date" ? sql`${sql.placeholder("cursorValue")}::timestamptz` : sql`${sql.placeholder("cursorValue")}`;
      const op = shape.descending ? sql`<` : sql`>`;
      conditions.push(
        this.nameAlone(shape) ? sql`${column} ${op} ${value}` : sql`(${column}, ${spec.id}) ${op} (${value}, ${sql.placeholder("cursorId")}::uuid)`,
      );
    }
    return conditions;
  }

  /**
   * The page's rows as one JSON array (text), in the page's order, each row an object of the
   * view's fields by property name. One value instead of a value per field and row: PGlite decodes
   * each value in JavaScript on its one thread, and a page of 100 tags' 15 fields cost it more
   * than finding them (docs/design-notes.md, "A page as one value").
   */
  private pageQuery(shape: Shape): Prepared {
    const key = JSON.stringify(shape);
    let query = this.pages.get(key);
    if (!query) {
      const direction = shape.descending ? desc : asc;
      const column = this.sortExpression(shape.order);
      // With a unique name, ordering by it alone lets PostgreSQL walk the (parent, name) unique index.
      const alone = this.nameAlone(shape);
      const orderBy = alone ? [direction(column)] : [direction(column), direction(this.spec.id)];
      const page = selectView(this.db, this.view, { aliased: true })
        .where(and(...this.conditions(shape)))
        .orderBy(...orderBy)
        .limit(sql.placeholder("limit"))
        .as("page");
      // The aggregate's own order: a subquery's is not promised to survive it.
      const sortKey = this.spec.sortable[shape.order]!;
      const inPage = (property: string) => sql`${sql.identifier("page")}.${sql.identifier(property)} ${sql.raw(shape.descending ? "desc" : "asc")}`;
      const aggregateOrder = [inPage(isColumn(sortKey) ? this.property.get(sortKey)! : sortKey.property)];
      if (!alone) aggregateOrder.push(inPage(this.property.get(this.spec.id)!));
      query = this.db
        .select({ rows: sql<string>`coalesce(json_agg(${sql.identifier("page")} order by ${sql.join(aggregateOrder, sql`, `)}), '[]')::text` })
        .from(page)
        .prepare(`${this.spec.resource}_page`);
      this.pages.set(key, query);
    }
    return query;
  }

  /** The rows of a page from pageQuery's JSON, each field read as the row has it (dates as Dates). */
  private rowsOf(result: unknown[]): Row[] {
    const [answer] = result as { rows: string }[];
    const rows = JSON.parse(answer!.rows) as Record<string, unknown>[];
    for (const row of rows) {
      for (const [name, read] of this.readers) {
        const value = row[name];
        if (value !== null && value !== undefined) row[name] = read(value);
      }
    }
    return rows as Row[];
  }
}

function filterCondition(filter: ColumnFilter, value: Placeholder): SQL {
  if (is(filter, Column)) return eq(filter, value);
  if ("where" in filter) return filter.where(value);
  const cast = filter.cast ? sql`${value}::${sql.raw(filter.cast)}` : sql`${value}`;
  return sql`${filter.column} ${sql.raw(filter.op)} ${cast}`;
}
