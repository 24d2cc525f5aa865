// The embedded database three ways, no HTTP: GetTag and ListTags through the store (as the service
// calls them), 32 calls in flight, on PGlite in the calling thread (as before issue 16), on its
// worker thread with PGlite's query() per statement, and on the worker with prepared statements
// (the service now); and PostgreSQL as the service opens it, the reference (at BENCH_DATABASE_URL
// or a throwaway cluster). What each costs the event-loop thread (its busy time per call: what
// HTTP, JSON and every other request wait for) and the process (all threads; PostgreSQL's own
// backends not counted), and the latency.
//   npx tsx bench/pglite.ts [--seconds S] [--rounds N] [--tags N] [--pulled N] [--calls GetTag,ListTags] [--variants in-thread,worker-query,worker-prepared,postgres]
// --pulled N: that many of the tags (spread evenly) have been pulled by name (a row in tag_pulls each).
// Every variant's answers are checked before it is timed (the tag asked for; the first page's 100
// names, its total and its token; the deep page's first name), and every timed answer is checked
// again for its id or its length. Tags are inserted with SQL (this measures the database path).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { sql, type SQL } from "drizzle-orm";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { pino } from "pino";
import { openDatabase, type Database } from "../src/db/database.js";
import { PgliteWorkerClient } from "../src/db/pglite-worker.js";
import * as schema from "../src/db/schema.js";
import { MemoryDriver } from "../src/content/memory.js";
import { migrationsFolder } from "../src/paths.js";
import { createStore } from "../src/store/index.js";
import type { TagStore } from "../src/store/tags.js";
import { createDatabase, openTarget } from "./databases.js";

const VARIANTS = ["in-thread", "worker-query", "worker-prepared", "postgres"] as const;
type Variant = (typeof VARIANTS)[number];
const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    rounds: { type: "string" },
    tags: { type: "string" },
    pulled: { type: "string" },
    variants: { type: "string" },
    calls: { type: "string" },
  },
});
const seconds = Number(values.seconds ?? 5);
const rounds = Number(values.rounds ?? 3);
const tagCount = Number(values.tags ?? 10_000);
const pulled = Number(values.pulled ?? 0);
if (!Number.isInteger(pulled) || pulled < 0 || pulled > tagCount) throw new Error(`--pulled: a whole number from 0 to --tags (got ${values.pulled})`);
/** Every pullStep-th tag by name has been pulled. */
const pullStep = pulled === 0 ? 0 : Math.floor(tagCount / pulled);
const variants = (values.variants ?? VARIANTS.join(",")).split(",") as Variant[];
for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`--variants: ${v} is not one of ${VARIANTS.join(", ")}`);
/** Only the calls whose names start with one of these (GetTag, "ListTags p1", ListTags). */
const only = values.calls?.split(",");
const IN_FLIGHT = 32;
const PAGE = 100;
const DEEP = Math.min(90, Math.floor(tagCount / PAGE) - 1);

const describe: Record<Variant, string> = {
  "in-thread": "PGlite in the event-loop thread (before)",
  "worker-query": "worker thread, PGlite query() per statement",
  "worker-prepared": "worker thread, prepared statements (now)",
  postgres: "PostgreSQL (reference; its backends' CPU not counted)",
};

interface Opened {
  db: Database;
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** The database of a variant; `dir` is a fresh directory of its own. */
async function open(variant: Variant, dir: string): Promise<Opened> {
  if (variant === "postgres") {
    const target = await openTarget("postgres", dir);
    const database = await createDatabase(target, `bench_pglite_${process.pid}`);
    const handle = await openDatabase(
      { kind: "postgres", url: database.url, timeZone: "UTC", poolMax: 10, connectTimeoutMs: 5_000 },
      pino({ level: "silent" }),
    );
    return {
      db: handle.db,
      // What autovacuum would do soon after the seed.
      settle: async () => void (await handle.db.execute(sql`vacuum analyze`)),
      close: async () => {
        await handle.close();
        await database.drop();
        target.close();
      },
    };
  }
  if (variant === "in-thread") {
    const client = await PGlite.create(join(dir, "pglite"));
    const db = drizzle({ client, schema });
    await migrate(db, { migrationsFolder });
    return { db, settle: () => Promise.resolve(), close: () => client.close() };
  }
  const client = await PgliteWorkerClient.open({
    dataDir: join(dir, "pglite"),
    migrationsFolder,
    assets: {},
    prepare: variant === "worker-prepared",
    maintain: variant === "worker-prepared",
    onStop: (stopped) => {
      throw stopped;
    },
  });
  return {
    db: drizzle({ client: client as unknown as PGlite, schema }),
    // What the worker would do by itself within a minute of the seed.
    settle: () => (variant === "worker-prepared" ? client.maintain() : Promise.resolve()),
    close: () => client.close(),
  };
}

const tagName = (i: number) => `t-${String(i).padStart(6, "0")}`;

async function seed(db: Database): Promise<{ repositoryId: string; ids: string[] }> {
  const one = async (q: SQL) => {
    // PGlite's driver answers { rows }, postgres.js the rows themselves.
    const result: unknown = await db.execute(q);
    return Array.isArray(result) ? (result as { id: string }[]) : (result as { rows: { id: string }[] }).rows;
  };
  const [registry] = await one(sql`insert into registries (name, kind) values ('bench', 'hosted') returning id`);
  const [namespace] = await one(sql`insert into namespaces (registry_id, name) values (${registry!.id}, 'n') returning id`);
  const [repository] = await one(sql`insert into repositories (namespace_id, name) values (${namespace!.id}, 'r') returning id`);
  const rows = await one(sql`insert into tags (repository_id, name, digest)
      select ${repository!.id}, 't-' || lpad(i::text, 6, '0'), 'sha256:' || md5(i::text) || md5(i::text)
      from generate_series(1, ${tagCount}) i returning id`);
  if (pullStep > 0)
    await one(sql`insert into tag_pulls (tag_id, last_pull_time)
        select id, now() from (select id, row_number() over (order by name) as n from tags) t where n % ${pullStep} = 0 and n / ${pullStep} <= ${pulled} returning tag_id as id`);
  return { repositoryId: repository!.id, ids: rows.map((r) => r.id) };
}

type Call = () => Promise<void>;

/** The calls, each checked once in full here; the timed ones check what is cheap to check. */
async function calls(tags: TagStore, repositoryId: string, ids: string[]): Promise<Record<string, Call>> {
  const request = (pageToken = "") => ({ pageSize: PAGE, pageToken, orderBy: "", query: "" });
  const first = await tags.list(request(), { repositoryId });
  const want = Array.from({ length: PAGE }, (_, i) => tagName(i + 1)).join();
  if (first.items.map((t) => t.name).join() !== want || first.totalSize !== tagCount || !first.nextPageToken)
    throw new Error(`ListTags page 1: wrong answer (${first.items.length} items, total ${first.totalSize})`);
  const wantPulled = pullStep === 0 ? 0 : Math.min(Math.floor(PAGE / pullStep), pulled);
  const gotPulled = first.items.filter((t) => t.lastPullTime !== null).length;
  if (gotPulled !== wantPulled) throw new Error(`ListTags page 1: ${gotPulled} tags with a last pull time, expected ${wantPulled}`);
  let token = first.nextPageToken;
  for (let page = 2; page < DEEP; page++) token = (await tags.list(request(token), { repositoryId })).nextPageToken;
  const deep = await tags.list(request(token), { repositoryId });
  if (deep.items[0]?.name !== tagName((DEEP - 1) * PAGE + 1) || deep.items.length !== PAGE || deep.totalSize !== tagCount)
    throw new Error(`ListTags page ${DEEP}: wrong answer (first ${deep.items[0]?.name})`);
  const probe = ids[ids.length >> 1]!;
  const got = await tags.get(probe);
  if (got.id !== probe || got.name !== tagName((ids.length >> 1) + 1)) throw new Error(`GetTag: wrong answer (${got.name})`);
  return {
    GetTag: async () => {
      const id = ids[Math.floor(Math.random() * ids.length)]!;
      if ((await tags.get(id)).id !== id) throw new Error("GetTag: wrong tag");
    },
    "ListTags p1 ×100": async () => {
      if ((await tags.list(request(), { repositoryId })).items.length !== PAGE) throw new Error("ListTags p1: short page");
    },
    [`ListTags p${DEEP} ×100`]: async () => {
      if ((await tags.list(request(token), { repositoryId })).items.length !== PAGE) throw new Error("ListTags deep: short page");
    },
  };
}

interface Row {
  variant: Variant;
  call: string;
  perSecond: number;
  p50: number;
  p99: number;
  /** Event-loop thread busy per call, µs. */
  loop: number;
  /** Process CPU (all threads) per call, µs. */
  cpu: number;
}

async function measure(call: Call, ms: number): Promise<Omit<Row, "variant" | "call">> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await call();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const busy = performance.eventLoopUtilization(elu).active;
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  return {
    perSecond: (n / elapsed) * 1000,
    p50: latencies[Math.floor(n * 0.5)]!,
    p99: latencies[Math.min(n - 1, Math.floor(n * 0.99))]!,
    loop: (busy * 1000) / n,
    cpu: (used.user + used.system) / n,
  };
}

const results: Row[] = [];
for (const variant of variants) {
  const dir = mkdtempSync(join(tmpdir(), "bench-pglite-"));
  try {
    const opened = await open(variant, dir);
    try {
      const { repositoryId, ids } = await seed(opened.db);
      await opened.settle();
      const store = await createStore(opened.db, new MemoryDriver());
      const checked = await calls(store.tags, repositoryId, ids);
      for (const [name, call] of Object.entries(checked).filter(([name]) => only === undefined || only.some((c) => name.startsWith(c)))) {
        await measure(call, 1000); // warm-up
        for (let round = 0; round < rounds; round++) results.push({ variant, call: name, ...(await measure(call, seconds * 1000)) });
        process.stderr.write(`bench/pglite: ${variant} ${name} done\n`);
      }
    } finally {
      await opened.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const f = (x: number, d = 0) => x.toFixed(d);
const lines = [
  `${tagCount} tags in one repository (${pulled} of them pulled), ${IN_FLIGHT} calls in flight, ${rounds} × ${seconds} s per row; median round (range of req/s)`,
  "",
  "| PGlite | call | req/s | p50 ms | p99 ms | event-loop thread µs/call | process CPU µs/call |",
  "|---|---|--:|--:|--:|--:|--:|",
];
for (const variant of variants) {
  for (const call of [...new Set(results.filter((r) => r.variant === variant).map((r) => r.call))]) {
    const rows = results.filter((r) => r.variant === variant && r.call === call);
    const mid = rows.find((r) => r.perSecond === median(rows.map((x) => x.perSecond)))!;
    const range = `${f(Math.min(...rows.map((r) => r.perSecond)))}–${f(Math.max(...rows.map((r) => r.perSecond)))}`;
    lines.push(`| ${describe[variant]} | ${call} | ${f(mid.perSecond)} (${range}) | ${f(mid.p50, 1)} | ${f(mid.p99, 1)} | ${f(mid.loop)} | ${f(mid.cpu)} |`);
  }
}
process.stdout.write(`${lines.join("\n")}\n`);
