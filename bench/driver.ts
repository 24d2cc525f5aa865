// GetTag's query four ways straight against PostgreSQL, no HTTP: what the store's query costs in
// Node CPU and in PostgreSQL CPU per call, and what a prepared statement would save.
//   tsx bench/driver.ts [--pool N] [--seconds S]      (BENCH_DATABASE_URL or a throwaway cluster)
// 32 calls in flight; tags are inserted with SQL (this measures the driver, not the API).
import { MemoryDriver } from "../src/content/memory.js";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { eq, sql as dsql } from "drizzle-orm";
import { pino } from "pino";
import type { Sql } from "postgres";
import { openDatabase } from "../src/db/database.js";
import { tags } from "../src/db/schema.js";
import { createStore } from "../src/store/index.js";
import { startThrowawayPostgres } from "../test/support/postgres.js";

const { values } = parseArgs({ options: { pool: { type: "string" }, seconds: { type: "string" } } });
const poolMax = Number(values.pool ?? 10);
const seconds = Number(values.seconds ?? 3);
const SELECT_TAG =
  "select id, name, version, create_time, update_time, repository_id, digest, media_type, size_bytes, push_time from tags where id = $1 limit 1";

/** CPU ticks of a PostgreSQL postmaster's backends (its children); NaN when it is not local. */
function postgresTicks(postmaster: number | undefined): number {
  if (postmaster === undefined) return NaN;
  let ticks = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

const given = process.env.BENCH_DATABASE_URL;
const pg = given ? undefined : await startThrowawayPostgres();
try {
  const url = given ?? pg!.url;
  const postmaster = pg ? Number(readFileSync(`${pg.dir}/data/postmaster.pid`, "utf8").split("\n")[0]) : undefined;
  const handle = await openDatabase({ kind: "postgres", url, timeZone: "UTC", poolMax, connectTimeoutMs: 5_000 }, pino({ level: "silent" }));
  const client = (handle.db as unknown as { $client: Sql }).$client;
  const suffix = Math.random().toString(36).slice(2, 8);
  const [registry] = await client<{ id: string }[]>`insert into registries (name, kind) values (${`driver-${suffix}`}, 'hosted') returning id`;
  const [namespace] = await client<{ id: string }[]>`insert into namespaces (registry_id, name) values (${registry!.id}, 'n') returning id`;
  const [repository] = await client<{ id: string }[]>`insert into repositories (namespace_id, name) values (${namespace!.id}, 'r') returning id`;
  const ids = (
    await client<{ id: string }[]>`insert into tags (repository_id, name, digest)
      select ${repository!.id}, 't-' || lpad(i::text, 6, '0'), 'sha256:' || md5(i::text) || md5(i::text)
      from generate_series(1, 10000) i returning id`
  ).map((r) => r.id);

  const store = await createStore(handle.db, new MemoryDriver());
  const prepared = handle.db
    .select()
    .from(tags)
    .where(eq(tags.id, dsql.placeholder("id")))
    .limit(1)
    .prepare("driver_get_tag");
  const variants: [string, (id: string) => Promise<unknown>][] = [
    ["store.tags.get (drizzle, as the service)", (id) => store.tags.get(id)],
    ["drizzle .prepare() + placeholder", (id) => prepared.execute({ id })],
    ["postgres.js unsafe(), prepare: false", (id) => client.unsafe(SELECT_TAG, [id])],
    ["postgres.js unsafe(), prepare: true", (id) => client.unsafe(SELECT_TAG, [id], { prepare: true })],
  ];
  process.stdout.write(`pool ${poolMax}, 32 in flight, ${seconds} s each after a warm-up round\n`);
  for (const round of ["warm-up", "measured"]) {
    for (const [name, query] of variants) {
      let calls = 0;
      const end = performance.now() + seconds * 1000;
      const cpu = process.cpuUsage();
      const ticks = postgresTicks(postmaster);
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (performance.now() < end) {
            await query(ids[Math.floor(Math.random() * ids.length)]!);
            calls++;
          }
        }),
      );
      const elapsed = (performance.now() - started) / 1000;
      const used = process.cpuUsage(cpu);
      const pgMicros = ((postgresTicks(postmaster) - ticks) * 10_000) / calls;
      if (round === "measured") {
        process.stdout.write(
          `${name.padEnd(42)} ${(calls / elapsed).toFixed(0).padStart(6)} q/s   Node ${((used.user + used.system) / calls).toFixed(0).padStart(4)} µs/q   PostgreSQL ${Number.isFinite(pgMicros) ? pgMicros.toFixed(0).padStart(4) : "   –"} µs/q\n`,
        );
      }
    }
  }
  await handle.close();
} finally {
  pg?.destroy();
}
