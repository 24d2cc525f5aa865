// Diagnostic RPCs: GetTag's query run other ways than the store runs it, each answering the same
// Tag through the same conversion, so that a row beside GetTag shows what one choice costs:
//   GetTagDrizzlePrepared  drizzle, built once with .prepare() and a placeholder
//   GetTagSqlUnprepared    the driver directly, the statement parsed on every call (what drizzle
//                          does with postgres.js for unnamed queries: drizzle-orm#6096)
//   GetTagSqlPrepared      the driver directly, a named statement kept per connection
// Bench-only, like the ceiling; not part of the product API.
import { eq, sql } from "drizzle-orm";
import type { ConnectRouter } from "@connectrpc/connect";
import type { PGlite } from "@electric-sql/pglite";
import type { Sql } from "postgres";
import { tagToProto } from "../src/api/convert.js";
import { requireId } from "../src/api/validate.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { tags } from "../src/db/schema.js";
import { notFound } from "../src/domain/errors.js";
import type { TagView } from "../src/store/index.js";
import { selectView, tagView } from "../src/store/views.js";
import { diagnosticMethods } from "./services.js";

// The tag with its parents' ids and its full name, as the store's view reads it (src/store/views.ts).
const SELECT_TAG = `select t.id, t.name, t.version, t.create_time, t.update_time, t.repository_id, t.digest, t.media_type, t.size_bytes, t.push_time,
  t.manifest_id, p.namespace_id, n.registry_id, (r.name || '/' || n.name || '/' || p.name || ':' || t.name) as full_name,
  (select tp.last_pull_time from tag_pulls tp where tp.tag_id = t.id) as last_pull_time
  from tags t join repositories p on p.id = t.repository_id join namespaces n on n.id = p.namespace_id join registries r on r.id = n.registry_id
  where t.id = $1 limit 1`;

interface SqlTagRow {
  id: string;
  name: string;
  version: number;
  create_time: Date | string;
  update_time: Date | string;
  repository_id: string;
  digest: string;
  media_type: string;
  size_bytes: string | number | bigint;
  push_time: Date | string;
  manifest_id: string | null;
  namespace_id: string;
  registry_id: string;
  full_name: string;
  last_pull_time: Date | string | null;
}

// drizzle turns off the driver's timestamp parsing (it parses them itself), so they come as text.
const toDate = (v: Date | string) => (v instanceof Date ? v : new Date(v));

const fromSql = (r: SqlTagRow): TagView => ({
  id: r.id,
  name: r.name,
  version: r.version,
  createTime: toDate(r.create_time),
  updateTime: toDate(r.update_time),
  repositoryId: r.repository_id,
  digest: r.digest,
  mediaType: r.media_type,
  sizeBytes: Number(r.size_bytes),
  pushTime: toDate(r.push_time),
  manifestId: r.manifest_id,
  namespaceId: r.namespace_id,
  registryId: r.registry_id,
  fullName: r.full_name,
  lastPullTime: r.last_pull_time === null ? null : toDate(r.last_pull_time),
});

function one(rows: TagView[], id: string) {
  if (rows.length === 0) throw notFound(`tag ${id} not found`);
  return tagToProto(rows[0]!);
}

async function driverQuery(handle: DatabaseHandle, id: string, prepare: boolean): Promise<SqlTagRow[]> {
  const client = (handle.db as unknown as { $client: unknown }).$client;
  if (handle.kind === "pglite") return (await (client as PGlite).query<SqlTagRow>(SELECT_TAG, [id])).rows;
  return (await (client as Sql).unsafe(SELECT_TAG, [id], { prepare })) as unknown as SqlTagRow[];
}

/** `database` is asked for at call time: routes are built before the server opens its database. */
export function diagnosticRoutes(database: () => DatabaseHandle) {
  return (router: ConnectRouter): void => {
    let prepared: { execute(values: { id: string }): Promise<unknown> } | undefined;
    const preparedGet = () =>
      (prepared ??= selectView(database().db, tagView)
        .where(eq(tags.id, sql.placeholder("id")))
        .limit(1)
        .prepare("bench_get_tag"));

    router.rpc(diagnosticMethods.GetTagDrizzlePrepared, async (req) => {
      const id = requireId("id", req.id);
      return one((await preparedGet().execute({ id })) as TagView[], id);
    });
    router.rpc(diagnosticMethods.GetTagSqlUnprepared, async (req) => {
      const id = requireId("id", req.id);
      return one((await driverQuery(database(), id, false)).map(fromSql), id);
    });
    router.rpc(diagnosticMethods.GetTagSqlPrepared, async (req) => {
      const id = requireId("id", req.id);
      return one((await driverQuery(database(), id, true)).map(fromSql), id);
    });
  };
}
