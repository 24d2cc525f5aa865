// Issue 15's measure: a retention run over 100,000 tags, its time and peak memory, dry and real,
// on PGlite and PostgreSQL. The store runs in this process (no HTTP: the run is the store's work;
// RunRetention adds one message per page). Rows are seeded in bulk with SQL: --repositories
// repositories of --tags-per-repository tags each, every tag its own manifest, pushed 6 hours
// apart. The policy, set on the registry: keep any_of(most_recent(50), pushed_within(7d)), untagged
// manifests after a day; so each repository keeps 50 tags and loses the rest with their manifests.
//
//   npx tsx bench/retention.ts [--db pglite|postgres] [--repositories 100] [--tags-per-repository 1000]
//
// The dry run is paged as RunRetention pages it (5000 deletions a page, each page dropped after
// counting, as a client would); the real run is the scheduled one (RetentionRunner.runAll).
// Memory: this process's resident set (PGlite's engine runs on a thread of it), sampled every
// 20 ms and from VmHWM (bench/rss.ts). PostgreSQL is BENCH_DATABASE_URL or a throwaway cluster.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "drizzle-orm";
import { FilesystemDriver } from "../src/content/filesystem.js";
import { openPglite, openPostgres, type DatabaseHandle } from "../src/db/database.js";
import { createLogger } from "../src/log.js";
import { createStore } from "../src/store/index.js";
import { postgresConfig } from "../test/support/database.js";
import { createDatabase, openTarget, type DatabaseKind } from "./databases.js";
import { measureRss } from "./rss.js";

const { values: args } = parseArgs({
  options: {
    db: { type: "string", default: "pglite" },
    repositories: { type: "string", default: "100" },
    "tags-per-repository": { type: "string", default: "1000" },
  },
});
const KIND = args.db as DatabaseKind;
const REPOSITORIES = Number(args.repositories);
const PER_REPOSITORY = Number(args["tags-per-repository"]);
if (!["pglite", "postgres"].includes(KIND) || !(REPOSITORIES > 0) || !(PER_REPOSITORY > 0)) {
  console.error("usage: npx tsx bench/retention.ts [--db pglite|postgres] [--repositories N] [--tags-per-repository N]");
  process.exit(2);
}
const KEEP = 50;
const log = createLogger("warn");
const say = (line: string) => process.stdout.write(`${line}\n`);

const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

async function open(workDir: string): Promise<{ handle: DatabaseHandle; close(): Promise<void> }> {
  if (KIND === "pglite") {
    const handle = await openPglite(join(workDir, "pglite"), log);
    return { handle, close: () => handle.close() };
  }
  const target = await openTarget("postgres", workDir);
  const scratch = await createDatabase(target, `bench_retention_${process.pid}`);
  const handle = await openPostgres(postgresConfig(scratch.url), log);
  return {
    handle,
    async close() {
      await handle.close();
      await scratch.drop();
      target.close();
    },
  };
}

async function seed(db: DatabaseHandle["db"]): Promise<string> {
  const [registry] = rowsOf<{ id: string }>(await db.execute(sql`insert into registries (name, kind) values ('bench', 'hosted') returning id`));
  const [namespace] = rowsOf<{ id: string }>(
    await db.execute(sql`insert into namespaces (registry_id, name) values (${registry!.id}::uuid, 'team') returning id`),
  );
  await db.execute(
    sql`insert into repositories (namespace_id, name) select ${namespace!.id}::uuid, 'app-' || g from generate_series(1, ${REPOSITORIES}::int) g`,
  );
  // One manifest per tag, pushed 6 hours apart (the newest 6 hours ago).
  await db.execute(sql`insert into manifests (repository_id, digest, media_type, payload, total_size_bytes, push_time)
    select r.id, 'sha256:' || encode(sha256(convert_to(r.id::text || ':' || g, 'UTF8')), 'hex'), 'application/vnd.oci.image.manifest.v1+json',
      convert_to('{}', 'UTF8'), 1000 + g, now() - g * interval '6 hours'
    from repositories r cross join generate_series(1, ${PER_REPOSITORY}::int) g`);
  await db.execute(sql`insert into tags (repository_id, name, digest, media_type, size_bytes, push_time, manifest_id)
    select m.repository_id, 't-' || substr(m.digest, 8, 16), m.digest, m.media_type, m.total_size_bytes, m.push_time, m.id from manifests m`);
  await db.execute(sql`analyze`);
  return registry!.id;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), "bench-retention-"));
  const opened = await open(workDir);
  const handle = opened.handle;
  try {
    const store = await createStore(handle.db, new FilesystemDriver(join(workDir, "blobs")), { exclusively: (id, task) => handle.exclusively(id, task) });
    let started = performance.now();
    const registryId = await seed(handle.db);
    const total = REPOSITORIES * PER_REPOSITORY;
    say(`retention bench on ${KIND}: ${REPOSITORIES} repositories × ${PER_REPOSITORY} tags = ${total} tags (and as many manifests)`);
    say(`  seeded in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await store.retentionPolicies.create({
      scope: { kind: "registry", id: registryId },
      keep: { anyOf: [{ mostRecent: { count: KEEP } }, { pushedWithin: { ms: 7 * 86_400_000 } }] },
      untaggedGraceMs: 86_400_000,
      deleteImmutable: false,
      disabled: false,
      description: "bench",
    });

    const dry = await measureRss(
      process.pid,
      async () => {
        started = performance.now();
        let token = "";
        const counted = { pages: 0, tags: 0, manifests: 0 };
        do {
          const page = await store.retention.runPage({ dryRun: true, pageSize: 5000, pageToken: token || undefined });
          counted.pages++;
          counted.tags += page.stats.tagsDeleted;
          counted.manifests += page.stats.manifestsDeleted;
          token = page.nextPageToken;
        } while (token);
        return { ...counted, seconds: (performance.now() - started) / 1000 };
      },
      { intervalMs: 20 },
    );
    say(
      `  dry run:  ${dry.value.seconds.toFixed(1)} s, ${dry.value.pages} pages, would delete ${dry.value.tags} tags + ${dry.value.manifests} manifests; ` +
        `RSS ${dry.rss.beforeMiB.toFixed(0)} → peak ${dry.rss.peakMiB.toFixed(0)} MiB (+${dry.rss.growthMiB.toFixed(0)})`,
    );

    const real = await measureRss(
      process.pid,
      async () => {
        started = performance.now();
        const stats = await store.retention.runAll({ dryRun: false });
        return { stats, seconds: (performance.now() - started) / 1000 };
      },
      { intervalMs: 20 },
    );
    const s = real.value.stats;
    say(
      `  real run: ${real.value.seconds.toFixed(1)} s, deleted ${s.tagsDeleted} tags + ${s.manifestsDeleted} manifests (${s.skipped} skipped), ` +
        `${Math.round((s.tagsDeleted + s.manifestsDeleted) / real.value.seconds)} deletions/s; ` +
        `RSS ${real.rss.beforeMiB.toFixed(0)} → peak ${real.rss.peakMiB.toFixed(0)} MiB (+${real.rss.growthMiB.toFixed(0)})`,
    );
    const [left] = rowsOf<{ tags: number; manifests: number; audit: number; events: number }>(
      await handle.db.execute(sql`select (select count(*) from tags)::int as tags, (select count(*) from manifests)::int as manifests,
        (select count(*) from audit_events where action like 'retention.%')::int as audit,
        (select count(*) from events where type = 'dev.artifact.retention.deleted')::int as events`),
    );
    say(`  left: ${left!.tags} tags, ${left!.manifests} manifests (expected ${REPOSITORIES * KEEP} each); ${left!.audit} audit rows, ${left!.events} events`);
    if (left!.tags !== REPOSITORIES * KEEP || dry.value.tags !== s.tagsDeleted || dry.value.manifests !== s.manifestsDeleted) {
      throw new Error("the real run did not delete what the dry run listed");
    }
  } finally {
    await opened.close();
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();
