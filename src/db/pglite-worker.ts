// The embedded database (PGlite) on a worker thread of its own. PGlite runs PostgreSQL compiled to
// WebAssembly, synchronously, on whatever thread calls it: in the server's thread, every query
// stopped HTTP, JSON and everything else for as long as it ran (a ListTags page and its count
// take several ms there), and 32 clients queued behind one another. Here the instance lives in a
// worker; the server's thread sends each statement as a message and goes on with other requests.
//
// `PgliteWorkerClient` is what drizzle-orm/pglite needs of a PGlite (query with params and
// options, exec, transaction) plus listen/unlisten, ping and close. Ordering and isolation are
// PGlite's own, inside the worker: its one connection runs one statement at a time, and an open
// transaction holds its mutex, so statements from outside wait until it ends (as before).
//
// The worker's code is plain CommonJS evaluated from a string:
// no file to locate from src/ under tsx or vitest or from dist/, and Node 20's workers do not run
// TypeScript loaders. It requires PGlite and drizzle by the absolute paths the main thread
// resolved.
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { QueryOptions, Results } from "@electric-sql/pglite";
import { EmbeddedDatabaseStopped } from "./pglite-failures.js";

// PostgreSQL's abort (a PANIC: a full disk leaves no room for a write-ahead log segment) is seen
// by Emscripten's onAbort in the worker; from then on every call is refused before it enters the
// dead instance (entering it again spins for ever in PGlite's message loop), and the main thread
// is told at once. The PANIC's text comes from stderr. See pglite-failures.ts.
const WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const { PGlite, types, parse, protocol } = require(workerData.modules.pglite);
const { drizzle } = require(workerData.modules.drizzle);
const { migrate } = require(workerData.modules.migrator);

let stopped = false;
let panic;
const post = (m) => parentPort.postMessage(m);

class Stopped extends Error {}

const abortWatch = {
  name: "abort-watch",
  // Emscripten calls onAbort before it throws "Aborted()" out of the instance.
  setup: async (_pg, emscriptenOpts) => ({
    emscriptenOpts: {
      ...emscriptenOpts,
      onAbort: () => {
        if (stopped) return;
        stopped = true;
        post({ type: "stopped", panic });
      },
    },
  }),
};
function onStderr(text) {
  // "2026-01-01 00:00:00.000 UTC [42] PANIC:  could not write to file …": keep the last one.
  const at = text.indexOf("PANIC:");
  if (at >= 0) panic = text.slice(at).replace(/\s+/g, " ").trim().slice(0, 500);
  return false;
}
function guard(pg) {
  // Every query, transaction statement and protocol message enters the instance here.
  const enter = pg.execProtocolRawSync.bind(pg);
  pg.execProtocolRawSync = (message) => {
    if (stopped) throw new Stopped();
    return enter(message);
  };
  // The call that hit the PANIC gets it as a plain database error: it becomes the stop too.
  const insteadWhenStopped = (err) => {
    throw stopped ? new Stopped() : err;
  };
  const execProtocol = pg.execProtocol.bind(pg);
  pg.execProtocol = (message, options) => execProtocol(message, options).catch(insteadWhenStopped);
  const execProtocolStream = pg.execProtocolStream.bind(pg);
  pg.execProtocolStream = (message, options) => execProtocolStream(message, options).catch(insteadWhenStopped);
}

// drizzle-orm/pglite reads dates, times and intervals (and their arrays) as PostgreSQL's text and
// maps them itself; its parsers cannot cross threads, so the same ones are applied here.
const asText = (value) => value;
const DRIZZLE_PARSERS = {};
for (const oid of [types.TIMESTAMP, types.TIMESTAMPTZ, types.INTERVAL, types.DATE, 1231, 1115, 1185, 1187, 1182]) DRIZZLE_PARSERS[oid] = asText;
// PGlite's parsers with drizzle's over them, built at the first query (PGlite has added its array
// types' parsers by then; it changes them again only when asked to, which nothing here does).
let drizzleMerged;
const drizzleParsers = () => (drizzleMerged ??= { ...pg.parsers, ...DRIZZLE_PARSERS });

function describeError(err) {
  if (err instanceof Stopped || stopped) return { stopped: true };
  const out = { isError: err instanceof Error, name: err && err.name, message: err && err.message !== undefined ? String(err.message) : String(err), stack: err && err.stack, fields: {} };
  if (err && typeof err === "object") {
    // PostgreSQL's fields (code, constraint, detail, ...) and Emscripten's errno; not PGlite's copy of the query parameters.
    for (const [k, v] of Object.entries(err)) {
      if (k === "params" || k === "query" || k === "queryOptions") continue;
      if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") out.fields[k] = v;
    }
  }
  return out;
}

let pg;
const transactions = new Map();
const listeners = new Map();
let nextTransaction = 0;
const ROLLBACK = new Error("rollback");

function on(m) {
  if (m.tx === undefined) return pg;
  const open = transactions.get(m.tx);
  if (!open) throw new Error("transaction " + m.tx + " is not open");
  return open.tx;
}

function begin() {
  return new Promise((entered, failed) => {
    const id = ++nextTransaction;
    const open = { tx: undefined, finish: undefined, done: undefined };
    let inside = false;
    open.done = pg.transaction((tx) => {
      inside = true;
      open.tx = tx;
      transactions.set(id, open);
      entered(id);
      return new Promise((resolve, reject) => {
        open.finish = (commit) => (commit ? resolve() : reject(ROLLBACK));
      });
    });
    open.done.then(
      () => transactions.delete(id),
      (err) => {
        transactions.delete(id);
        if (!inside) failed(err);
      },
    );
  });
}

async function end(m) {
  const open = transactions.get(m.tx);
  if (!open) throw new Error("transaction " + m.tx + " is not open");
  open.finish(m.commit);
  try {
    await open.done;
  } catch (err) {
    if (err !== ROLLBACK || m.commit) throw err;
  }
}

// Prepared statements. PGlite's query() sends Parse, Describe, Bind, Describe, Execute and Sync
// as six calls into the instance, and PostgreSQL parses and plans the text every time. The store's
// SQL never inlines values, so its texts are few: each is parsed once as a named statement (its
// parameter types and row description kept here), and then each call is one Bind + Execute + Sync,
// one call into the instance; PostgreSQL keeps the plan. Only plain DML and queries: transaction
// control and settings keep PGlite's own path.
const PREPARABLE = /^\s*(select|insert|update|delete|with)\b/i;
const MAX_STATEMENTS = 1000;
const statements = new Map();
let named = 0;
const { serialize } = protocol;

async function prepared(m, options) {
  const conn = on(m);
  if (m.tx !== undefined && conn.closed) return undefined;
  // The same locks as PGlite's query: outside a transaction, wait for any open one to end.
  const run = (fn) => (m.tx === undefined ? pg._runExclusiveTransaction(() => pg.runExclusive(fn)) : pg.runExclusive(fn));
  return run(async () => {
    let statement = statements.get(m.sql);
    if (!statement) {
      if (statements.size >= MAX_STATEMENTS) return undefined;
      const name = "pglite_s" + ++named;
      // A text PostgreSQL refuses fails here as it would in PGlite's query() (inside a transaction
      // that then is aborted, so running it again would only say that).
      const messages = await pg.execProtocolStream(
        concat([serialize.parse({ name, text: m.sql }), serialize.describe({ type: "S", name }), serialize.sync()]),
        { syncToFs: false },
      );
      statement = {
        name,
        paramTypes: parse.parseDescribeStatementResults(messages),
        rowDescription: messages.find((x) => x.name === "rowDescription"),
      };
      statements.set(m.sql, statement);
    }
    const values = (m.params || []).map((param, i) => {
      if (param === null || param === undefined) return null;
      const serializer = pg.serializers[statement.paramTypes[i]];
      return serializer ? serializer(param) : param.toString();
    });
    let messages;
    try {
      messages = await pg.execProtocolStream(concat([serialize.bind({ statement: statement.name, values }), serialize.execute({}), serialize.sync()]), { syncToFs: false });
    } catch (err) {
      // A table changed under the statement (tests' DDL): forget it, and outside a transaction let
      // PGlite's path run the text afresh.
      if (err && err.code === "0A000" && /cached plan/.test(err.message)) {
        statements.delete(m.sql);
        // Inside a transaction the error has aborted it: the caller hears why.
        if (m.tx === undefined) return undefined;
      }
      throw err;
    }
    if (!pg.isInTransaction()) await pg.syncToFs();
    // parseResults copies its parsers and the options' into a new object on every call when
    // options carry parsers: 0.1 ms for PGlite's ~320 each time. drizzle's are merged in once.
    const parsers = options.parsers === DRIZZLE_PARSERS ? drizzleParsers() : pg.parsers;
    return parse.parseResults(statement.rowDescription ? [statement.rowDescription, ...messages] : messages, parsers, { rowMode: options.rowMode })[0];
  });
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// PGlite runs PostgreSQL in single-user mode: no autovacuum. Without ANALYZE the planner has no
// statistics (a page of 100 tags out of 10,000 was a sequential scan and a sort: 5 ms here against
// 1.3 ms on the index), and without VACUUM dead rows of updated tags pile up for ever. So the
// worker does what autovacuum would, coarsely: ANALYZE once the database is open, and VACUUM
// (ANALYZE) after every MAINTAIN_ROWS rows written, at most once per MAINTAIN_EVERY_MS. It queues
// behind the statements already waiting, as any statement does.
const MAINTAIN_ROWS = 1000;
const MAINTAIN_EVERY_MS = 60_000;
let written = 0;
let maintainedAt = 0;
let maintaining = false;

let timer;

function wrote(result) {
  if (!workerData.maintain || !result || !result.affectedRows) return;
  written += result.affectedRows;
  if (written < MAINTAIN_ROWS || maintaining || timer) return;
  // Writes that stop short of the next round still get it, once the interval has passed.
  timer = setTimeout(() => {
    timer = undefined;
    void maintain("vacuum (analyze)");
  }, Math.max(0, maintainedAt + MAINTAIN_EVERY_MS - Date.now()));
  timer.unref();
}

let maintenance = Promise.resolve();

function maintain(command) {
  if (timer) clearTimeout(timer);
  timer = undefined;
  maintenance = maintenance.then(() => runMaintenance(command));
  return maintenance;
}

async function runMaintenance(command) {
  maintaining = true;
  written = 0;
  try {
    await pg.exec(command);
  } catch (err) {
    // Not a reason to fail anything: the next round tries again.
    post({ type: "log", message: "embedded database maintenance (" + command + ") failed: " + (err && err.message) });
  } finally {
    maintaining = false;
    maintainedAt = Date.now();
  }
}

async function handle(m) {
  switch (m.op) {
    case "query": {
      const options = m.rowMode ? { rowMode: m.rowMode } : {};
      if (m.drizzle) options.parsers = DRIZZLE_PARSERS;
      let result;
      if (workerData.prepare && PREPARABLE.test(m.sql)) result = await prepared(m, options);
      if (result === undefined && process.env.PG_DEBUG) post({ type: "log", message: "fallback " + m.sql.slice(0, 50) });
      result ??= await on(m).query(m.sql, m.params, options);
      wrote(result);
      return result;
    }
    case "exec":
      return on(m).exec(m.sql);
    case "begin":
      return begin();
    case "end":
      return end(m);
    case "listen":
      if (!listeners.has(m.channel)) listeners.set(m.channel, await pg.listen(m.channel, (payload) => post({ type: "notify", channel: m.channel, payload })));
      return undefined;
    case "unlisten": {
      const stop = listeners.get(m.channel);
      listeners.delete(m.channel);
      if (stop) await stop();
      return undefined;
    }
    case "maintain":
      return maintain("vacuum (analyze)");
    case "close":
      if (timer) clearTimeout(timer);
      await maintenance;
      if (!stopped && !pg.closed) await pg.close();
      return undefined;
    default:
      throw new Error("unknown operation " + m.op);
  }
}

(async () => {
  try {
    pg = await PGlite.create(workerData.dataDir, { ...workerData.assets, extensions: { abortWatch }, onStderr });
    guard(pg);
    await migrate(drizzle({ client: pg }), { migrationsFolder: workerData.migrationsFolder });
    // A statement's plan is made once and kept (until ANALYZE or DDL changes what it read), not
    // made again for every call: under "auto" PostgreSQL costs a page's generic plan with LIMIT $n
    // as a tenth of the table, finds a custom plan cheaper, and plans every call of every list
    // (40% of the thread on a page of 100 tags). The store reads by key and in keyset pages on
    // indexed columns, whose best plan does not depend on the values (docs/design-notes.md).
    await pg.exec("set plan_cache_mode = force_generic_plan");
  } catch (err) {
    if (pg && !stopped) await pg.close().catch(() => undefined);
    post({ type: "failed", error: describeError(err) });
    return;
  }
  parentPort.on("message", (m) => {
    let work;
    try {
      work = handle(m);
    } catch (err) {
      work = Promise.reject(err);
    }
    work.then(
      (result) => post({ id: m.id, ok: true, result }),
      (error) => post({ id: m.id, ok: false, error: describeError(error) }),
    );
  });
  post({ type: "ready" });
  // An embedded database opened from disk may hold tables never analyzed (before this code ran);
  // one in memory starts empty.
  if (workerData.maintain && !workerData.dataDir.startsWith("memory://")) void maintain("analyze");
})();
`;

interface WireError {
  stopped?: boolean;
  isError?: boolean;
  name?: string;
  message?: string;
  stack?: string;
  fields?: Record<string, unknown>;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: WireError };
type Event =
  | Reply
  | { type: "ready" }
  | { type: "failed"; error: WireError }
  | { type: "stopped"; panic?: string }
  | { type: "log"; message: string }
  | { type: "notify"; channel: string; payload: string };

type Request =
  | { op: "query"; sql: string; params?: unknown[]; rowMode?: string; drizzle?: boolean; tx?: number }
  | { op: "exec"; sql: string; tx?: number }
  | { op: "begin" }
  | { op: "end"; tx: number; commit: boolean }
  | { op: "listen" | "unlisten"; channel: string }
  | { op: "maintain" }
  | { op: "close" };

export interface OpenOptions {
  dataDir: string;
  migrationsFolder: string;
  /** Compiled ahead (pglite-assets.ts); the worker loads its own without them. */
  assets: object;
  /** Once, when the instance stopped (its abort); every later call fails with `stopped`. */
  onStop: (stopped: EmbeddedDatabaseStopped) => void;
  /** Maintenance that failed (it does not fail any call). */
  onLog?: (message: string) => void;
  /** Named prepared statements for queries (default); false: PGlite's query() each time (bench/pglite.ts compares). */
  prepare?: boolean;
  /** ANALYZE at start and VACUUM (ANALYZE) after writes (default); false: never (bench/pglite.ts compares). */
  maintain?: boolean;
}

/** The error a failed start or call reported, as the main thread's Error (PostgreSQL's fields kept: code, constraint, ...). */
function revive(e: WireError): unknown {
  const fields = e.fields ?? {};
  if (!e.isError) return { ...fields, message: e.message };
  const err = Object.assign(new Error(e.message ?? "embedded database error"), fields);
  if (e.name) err.name = e.name;
  if (e.stack) err.stack = e.stack;
  return err;
}

function stoppedError(panic: string | undefined): EmbeddedDatabaseStopped {
  const diskFull = panic !== undefined && /no space left on device|disk quota/i.test(panic);
  const message = diskFull
    ? "the embedded database stopped because the disk holding DATA_DIR is full: free space there, then restart the service (committed data is kept)"
    : "the embedded database stopped after a fatal error: restart the service (committed data is kept)";
  return new EmbeddedDatabaseStopped(message, diskFull, panic);
}

/** What drizzle-orm/pglite uses of a PGlite connection, for both the database and an open transaction. */
interface Connection {
  query<T>(sql: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>>;
  exec(sql: string, options?: QueryOptions): Promise<Results[]>;
}

class WorkerTransaction implements Connection {
  closed = false;

  constructor(
    private readonly client: PgliteWorkerClient,
    readonly id: number,
  ) {}

  query<T>(sql: string, params?: unknown[], options?: QueryOptions): Promise<Results<T>> {
    return this.client.query<T>(sql, params, options, this);
  }

  exec(sql: string): Promise<Results[]> {
    return this.client.exec(sql, undefined, this);
  }

  /** PGlite's tx.rollback(): ends the transaction now; its callback's result is then discarded. */
  async rollback(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end(this, false);
  }
}

export class PgliteWorkerClient implements Connection {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly channels = new Map<string, Set<(payload: string) => void>>();
  private nextId = 0;
  private stoppedWith: EmbeddedDatabaseStopped | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly onStop: (stopped: EmbeddedDatabaseStopped) => void,
  ) {}

  /** Starts the worker, opens the database in it and applies the migrations; rejects with what failed there. */
  static open(options: OpenOptions): Promise<PgliteWorkerClient> {
    const require = createRequire(import.meta.url);
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        dataDir: options.dataDir,
        migrationsFolder: options.migrationsFolder,
        assets: options.assets,
        prepare: options.prepare ?? true,
        maintain: options.maintain ?? true,
        modules: {
          pglite: require.resolve("@electric-sql/pglite"),
          drizzle: require.resolve("drizzle-orm/pglite"),
          migrator: require.resolve("drizzle-orm/pglite/migrator"),
        },
      },
    });
    const client = new PgliteWorkerClient(worker, options.onStop);
    return new Promise((resolve, reject) => {
      let started = false;
      worker.on("message", (m: Event) => {
        if ("id" in m) return client.settle(m);
        switch (m.type) {
          case "ready":
            started = true;
            worker.unref();
            return resolve(client);
          case "failed":
            void worker.terminate();
            return reject(revive(m.error));
          case "stopped":
            return client.stop(stoppedError(m.panic));
          case "log":
            return options.onLog?.(m.message);
          case "notify":
            for (const callback of client.channels.get(m.channel) ?? []) callback(m.payload);
            return;
        }
      });
      worker.on("error", (err) => {
        if (!started) reject(err);
        else client.lost(err);
      });
      worker.on("exit", (code) => {
        if (!started) reject(new Error(`the embedded database's worker thread exited (${code}) before the database opened`));
        else client.lost(new Error(`exit code ${code}`));
      });
    });
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Set once the instance stopped (its abort). */
  get stopped(): EmbeddedDatabaseStopped | undefined {
    return this.stoppedWith;
  }

  query<T>(sql: string, params?: unknown[], options?: QueryOptions, tx?: WorkerTransaction): Promise<Results<T>> {
    // drizzle passes the same parsers on every call (dates and intervals as text): the worker has them.
    return this.call({ op: "query", sql, params, rowMode: options?.rowMode, drizzle: options?.parsers !== undefined, tx: tx?.id }) as Promise<Results<T>>;
  }

  exec(sql: string, _options?: QueryOptions, tx?: WorkerTransaction): Promise<Results[]> {
    return this.call({ op: "exec", sql, tx: tx?.id }) as Promise<Results[]>;
  }

  /** PGlite's transaction(): BEGIN, the callback, COMMIT (ROLLBACK when it throws); nothing else runs meanwhile. */
  async transaction<T>(callback: (tx: WorkerTransaction) => Promise<T>): Promise<T> {
    const tx = new WorkerTransaction(this, (await this.call({ op: "begin" })) as number);
    let result: T;
    try {
      result = await callback(tx);
    } catch (err) {
      if (!tx.closed) {
        tx.closed = true;
        await this.end(tx, false).catch(() => undefined);
      }
      throw err;
    }
    if (!tx.closed) {
      tx.closed = true;
      await this.end(tx, true);
    }
    return result;
  }

  /** @internal ends a transaction (COMMIT or ROLLBACK) */
  async end(tx: WorkerTransaction, commit: boolean): Promise<void> {
    await this.call({ op: "end", tx: tx.id, commit });
  }

  /** PGlite's listen(): `callback` gets each notification's payload, on this thread. */
  async listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>> {
    let callbacks = this.channels.get(channel);
    if (!callbacks) {
      callbacks = new Set();
      this.channels.set(channel, callbacks);
    }
    callbacks.add(callback);
    try {
      if (callbacks.size === 1) await this.call({ op: "listen", channel });
    } catch (err) {
      callbacks.delete(callback);
      throw err;
    }
    return () => this.unlisten(channel, callback);
  }

  async unlisten(channel: string, callback?: (payload: string) => void): Promise<void> {
    const callbacks = this.channels.get(channel);
    if (!callbacks) return;
    if (callback) callbacks.delete(callback);
    else callbacks.clear();
    if (callbacks.size > 0) return;
    this.channels.delete(channel);
    await this.call({ op: "unlisten", channel });
  }

  /** VACUUM (ANALYZE) now, as the worker does on its own after writes (bench/pglite.ts, to start every run alike). */
  async maintain(): Promise<void> {
    await this.call({ op: "maintain" });
  }

  /** Closes the database (a stopped instance cannot be: it is left alone) and ends the worker. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.stoppedWith) await this.send({ op: "close" });
      } finally {
        await this.worker.terminate();
      }
    })();
    return this.closing;
  }

  private call(request: Request): Promise<unknown> {
    if (this.stoppedWith) return Promise.reject(this.stoppedWith);
    if (this.closing) return Promise.reject(new Error("embedded database is closed"));
    return this.send(request);
  }

  private send(request: Request): Promise<unknown> {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      // A call in flight keeps the process alive, as a query on an in-thread PGlite does; an idle worker does not.
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  private settle(reply: Reply): void {
    const call = this.pending.get(reply.id);
    if (!call) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) call.resolve(reply.result);
    else call.reject(reply.error.stopped ? (this.stoppedWith ?? stoppedError(undefined)) : revive(reply.error));
  }

  private stop(stopped: EmbeddedDatabaseStopped): void {
    if (this.stoppedWith) return;
    this.stoppedWith = stopped;
    this.onStop(stopped);
  }

  /** The worker died: that is a stop too (nothing can reach the database any more), unless it was closing. */
  private lost(err: Error): void {
    if (!this.closing) {
      const stopped = new EmbeddedDatabaseStopped(
        `the embedded database stopped: its worker thread ended (${err.message}); restart the service (committed data is kept)`,
        false,
        undefined,
      );
      this.stop(stopped);
    }
    for (const call of this.pending.values()) call.reject(this.stoppedWith ?? new Error("embedded database is closed"));
    this.pending.clear();
  }
}
