// Opens the database the configuration names, applies migrations, and hands out one typed
// drizzle handle. PGlite and PostgreSQL share the schema, the migrations and the store code.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { PGlite } from "@electric-sql/pglite";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { migrate as migratePostgres } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import type { Logger } from "pino";
import type { DatabaseConfig, SslMode } from "../config.js";
import { describeDatabase } from "../config.js";
import { migrationsFolder } from "../paths.js";
import { lockDataDir, type DataDirLock } from "./data-dir-lock.js";
import { preloadPgliteAssets } from "./pglite-assets.js";
import { startFailure } from "./pglite-failures.js";
import { PgliteWorkerClient } from "./pglite-worker.js";
import * as schema from "./schema.js";

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface DatabaseHandle {
  db: Database;
  kind: "pglite" | "postgres";
  /** Throws when the database does not answer. */
  ping(): Promise<void>;
  /**
   * Hears the notices sent on `channel` (NOTIFY; sent when the sending transaction commits).
   * `onState(true)` once LISTEN is in place; `onState(false)` as soon as the listening connection
   * is lost, fails its heartbeat or is not up yet: notices sent meanwhile are lost. It reconnects by
   * itself and says `onState(true)` again once listening. PGlite runs in this process: its LISTEN
   * is never lost.
   */
  listen(channel: string, onNotice: (payload: string) => void, onState: (listening: boolean) => void): Promise<Subscription>;
  /**
   * Runs `task` while holding the cluster-wide lock `lockId`, or returns `{ ran: false }` at once
   * when another process (a replica) or task holds it. PostgreSQL: a session advisory lock on a
   * connection of its own, so a holder that dies lets go with its connection. PGlite belongs to
   * one process: the lock is this process's.
   */
  exclusively<T>(lockId: number, task: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }>;
  close(): Promise<void>;
}

export interface Subscription {
  close(): Promise<void>;
}

/** How often the listening connection of PostgreSQL is asked whether it still answers, and how long it gets. */
const LISTEN_HEARTBEAT_MS = 2_000;
const LISTEN_RETRY_MAX_MS = 5_000;
/** The listening connection's application_name (pg_stat_activity shows it; tests find it there). */
export const LISTEN_APPLICATION_NAME = "artifact-service-listen";

// Any constant works as long as every replica uses the same one.
const MIGRATION_LOCK_ID = 0x41525446; // "ARTF"

export async function openDatabase(config: DatabaseConfig, log: Logger): Promise<DatabaseHandle> {
  log.info({ database: describeDatabase(config) }, "opening database");
  return config.kind === "pglite" ? openPglite(config.dataDir, log) : openPostgres(config, log);
}

/**
 * dataDir "memory://" keeps everything in memory (tests). The instance runs on a worker thread of
 * its own (pglite-worker.ts), so a query does not stop this thread. A failure to start on a full
 * disk says so; a PANIC while running (a full disk) stops the instance, and every later query then
 * fails with a clear error instead of hanging the process (see pglite-failures.ts).
 */
export async function openPglite(dataDir: string, log: Logger): Promise<DatabaseHandle> {
  const inMemory = dataDir.startsWith("memory://");
  const fresh = !inMemory && !existsSync(join(dataDir, "PG_VERSION"));
  if (fresh) log.info({ dataDir }, "first start: creating the embedded PGlite cluster, this takes a few seconds");
  const started = performance.now();
  let lock: DataDirLock | undefined;
  let client: PgliteWorkerClient;
  try {
    if (!inMemory) {
      mkdirSync(dataDir, { recursive: true });
      lock = lockDataDir(dataDir);
    }
    client = await PgliteWorkerClient.open({
      dataDir,
      migrationsFolder,
      // Compiled once per process and shared with each worker (a worker compiling its own took
      // seconds of CPU per open, every test's database included).
      assets: await preloadPgliteAssets().catch(() => ({})),
      onStop: (stopped) => log.error({ panic: stopped.panic }, stopped.message),
    });
  } catch (err) {
    lock?.release();
    throw inMemory ? err : await startFailure(dataDir, err);
  }
  log.info({ ms: Math.round(performance.now() - started) }, "embedded database ready");
  // drizzle-orm/pglite calls query, exec and transaction, which the worker's client has.
  const db = drizzlePglite({ client: client as unknown as PGlite, schema });
  let closed = false;
  const held = new Set<number>();
  return {
    db,
    kind: "pglite",
    async exclusively(lockId, task) {
      if (held.has(lockId)) return { ran: false };
      held.add(lockId);
      try {
        return { ran: true, value: await task() };
      } finally {
        held.delete(lockId);
      }
    },
    async ping() {
      if (client.stopped) throw client.stopped;
      if (closed || client.closed) throw new Error("embedded database is closed");
      await client.query("select 1");
    },
    async listen(channel, onNotice, onState) {
      // The worker listens and posts each notice here; a notice comes only after its transaction commits.
      const unlisten = await client.listen(channel, onNotice);
      onState(true);
      return {
        async close() {
          onState(false);
          if (!closed && !client.closed && !client.stopped) await unlisten().catch(() => undefined);
        },
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await client.close();
      } finally {
        lock?.release();
      }
    },
  };
}

type PostgresConfig = Extract<DatabaseConfig, { kind: "postgres" }>;

/** postgres.js without custom types (its own default type argument is the same empty object type). */
type PgOptions = postgres.Options<Record<never, never>>;

function postgresOptions(config: PostgresConfig, max: number): PgOptions {
  return {
    max,
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    ssl: config.sslMode ? sslOption(config.sslMode) : undefined,
    connection: { TimeZone: config.timeZone, application_name: "artifact-service" },
    // While the database is unreachable, calls fail in about this long instead of postgres.js's 30 s.
    connect_timeout: config.connectTimeoutMs / 1000,
    onnotice: () => {},
  };
}

function sslOption(mode: SslMode): PgOptions["ssl"] {
  switch (mode) {
    case "disable":
      return false;
    case "verify-ca":
      // Chain verified, host name not: what libpq means by verify-ca.
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    default:
      return mode;
  }
}

function connect(config: PostgresConfig, max: number): postgres.Sql {
  const options = postgresOptions(config, max);
  return config.url ? postgres(config.url, options) : postgres(options);
}

export async function openPostgres(config: PostgresConfig, log: Logger): Promise<DatabaseHandle> {
  await migrateUnderLock(config, log);
  const client = connect(config, config.poolMax);
  // Health pings get a connection of their own: they ask "does the database answer?", which a pool
  // busy with slow queries must not turn into "no".
  const pinger = connect(config, 1);
  const db = drizzlePostgres({ client: config.prepareStatements === false ? client : preparing(client), schema });
  return {
    db,
    kind: "postgres",
    async ping() {
      await pinger`select 1`;
    },
    listen: postgresNotices(config, log),
    async exclusively(lockId, task) {
      const holder = connect(config, 1);
      try {
        const [row] = await holder<{ locked: boolean }[]>`select pg_try_advisory_lock(${lockId}) as locked`;
        if (!row?.locked) return { ran: false };
        try {
          return { ran: true, value: await task() };
        } finally {
          await holder`select pg_advisory_unlock(${lockId})`.catch(() => undefined);
        }
      } finally {
        // Ending the session lets go of the lock in any case.
        await holder.end({ timeout: 5 });
      }
    },
    async close() {
      await Promise.all([client.end({ timeout: 5 }), pinger.end({ timeout: 1 })]);
    },
  };
}

/**
 * drizzle runs every query that was not built with `.prepare()` with postgres.js's
 * `prepare: false` (drizzle-orm#6096): two round trips per query and a fresh parse and plan in
 * PostgreSQL each time. Our SQL never inlines values, so the set of statement texts is small and
 * fixed; this view of the client asks postgres.js to prepare them all (it keeps one prepared
 * statement per text per connection), transactions included. DB_PREPARE_STATEMENTS=false turns
 * it off for poolers that cannot keep prepared statements (PgBouncer in transaction mode).
 */
function preparing<T extends object>(sql: T): T {
  type Body = (inner: object) => unknown;
  const wrapBody = (args: unknown[]) => {
    const body = args.pop() as Body;
    return [...args, (inner: object) => body(preparing(inner))];
  };
  return new Proxy(sql, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function") return value;
      if (property === "unsafe") {
        return (query: string, params?: unknown[], options?: Record<string, unknown>) =>
          (value as (...a: unknown[]) => unknown).call(target, query, params, { ...options, prepare: true });
      }
      if (property === "begin" || property === "savepoint") {
        return (...args: unknown[]) => (value as (...a: unknown[]) => unknown).apply(target, wrapBody(args));
      }
      return value;
    },
  });
}

interface NoticeSubscriber {
  onNotice: (payload: string) => void;
  onState: (listening: boolean) => void;
}

const quoteChannel = (channel: string) => `"${channel.replace(/"/g, '""')}"`;

/**
 * One connection per process that LISTENs on every channel someone subscribed to (the read cache's,
 * the events outbox's): lost (closed by the server, the network, a heartbeat that did not come back
 * in time) → every subscriber hears onState(false), then a new connection after a backoff LISTENs
 * on them all again. `listen` resolves once its LISTEN is in place or has failed (it keeps retrying
 * either way). The connection closes when the last subscription does.
 */
function postgresNotices(config: PostgresConfig, log: Logger): DatabaseHandle["listen"] {
  const channels = new Map<string, Set<NoticeSubscriber>>();
  let current: postgres.Sql | undefined;
  /** The channels the current connection LISTENs on. */
  let listened = new Set<string>();
  let opening: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  let delayMs = 100;

  const everyone = () => [...channels.values()].flatMap((subs) => [...subs]);

  const lost = (sql: postgres.Sql, err?: unknown) => {
    if (current !== sql) return;
    current = undefined;
    listened = new Set();
    clearInterval(heartbeat);
    for (const sub of everyone()) sub.onState(false);
    void sql.end({ timeout: 0 }).catch(() => undefined);
    if (channels.size === 0) return;
    log.warn({ err, channels: [...channels.keys()], retryMs: delayMs }, "database notices lost (read cache, events): polling until listening again");
    retry = setTimeout(() => void connectNow(), delayMs);
    retry.unref();
    delayMs = Math.min(delayMs * 2, LISTEN_RETRY_MAX_MS);
  };

  // One connection at a time: a retry that comes due while one is open (or opening) does nothing.
  const connectNow = (): Promise<void> =>
    current
      ? (opening ?? Promise.resolve())
      : (opening ??= (async () => {
          clearTimeout(retry);
          const options = postgresOptions(config, 1);
          const listenOn: PgOptions = {
            ...options,
            max: 1,
            idle_timeout: undefined,
            max_lifetime: null,
            fetch_types: false,
            connection: { ...options.connection, application_name: LISTEN_APPLICATION_NAME },
            onnotify: (channel: string, payload: string) => {
              for (const sub of channels.get(channel) ?? []) sub.onNotice(payload);
            },
            onclose: () => lost(sql),
          } as PgOptions;
          const sql: postgres.Sql = config.url ? postgres(config.url, listenOn) : postgres(listenOn);
          current = sql;
          try {
            for (const channel of channels.keys()) {
              await sql.unsafe(`listen ${quoteChannel(channel)}`);
              listened.add(channel);
            }
          } catch (err) {
            lost(sql, err);
            return;
          }
          if (current !== sql) return;
          delayMs = 100;
          for (const sub of everyone()) sub.onState(true);
          heartbeat = setInterval(() => {
            const timer = setTimeout(() => lost(sql, new Error("heartbeat unanswered")), LISTEN_HEARTBEAT_MS);
            sql`select 1`.then(
              () => clearTimeout(timer),
              (err: unknown) => {
                clearTimeout(timer);
                lost(sql, err);
              },
            );
          }, LISTEN_HEARTBEAT_MS);
          heartbeat.unref();
        })().finally(() => (opening = undefined)));

  return async (channel, onNotice, onState) => {
    const sub: NoticeSubscriber = { onNotice, onState };
    onState(false);
    const subs = channels.get(channel) ?? new Set();
    channels.set(channel, subs.add(sub));
    await opening;
    if (!current) await connectNow();
    else if (!listened.has(channel)) {
      const sql = current;
      try {
        await sql.unsafe(`listen ${quoteChannel(channel)}`);
        listened.add(channel);
        if (current === sql) onState(true);
      } catch (err) {
        lost(sql, err);
      }
    } else onState(true);
    return {
      async close() {
        subs.delete(sub);
        onState(false);
        if (subs.size > 0) return;
        channels.delete(channel);
        const sql = current;
        if (channels.size === 0) {
          clearTimeout(retry);
          clearInterval(heartbeat);
          current = undefined;
          listened = new Set();
          await sql?.end({ timeout: 1 });
        } else if (sql && listened.delete(channel)) {
          await sql.unsafe(`unlisten ${quoteChannel(channel)}`).catch(() => undefined);
        }
      },
    };
  };
}

// Replicas starting together would race on CREATE TABLE; the advisory lock makes the
// second wait and then find nothing left to apply (drizzle-orm#874).
async function migrateUnderLock(config: PostgresConfig, log: Logger): Promise<void> {
  const client = connect(config, 1);
  try {
    const started = performance.now();
    await client`select pg_advisory_lock(${MIGRATION_LOCK_ID})`;
    try {
      await migratePostgres(drizzlePostgres({ client }), { migrationsFolder });
    } finally {
      await client`select pg_advisory_unlock(${MIGRATION_LOCK_ID})`;
    }
    log.info({ ms: Math.round(performance.now() - started) }, "database migrated");
  } finally {
    await client.end({ timeout: 5 });
  }
}
