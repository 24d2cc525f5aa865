// Real databases for tests: PGlite in memory always, PostgreSQL when TEST_DATABASE_URL is set
// (each test file gets a database of its own, dropped at the end). No mocks.
import { randomBytes } from "node:crypto";
import { createLogger } from "../../src/log.js";
import postgres from "postgres";
import type { DatabaseConfig, LogLevel } from "../../src/config.js";
import { openPglite, openPostgres, type Database, type DatabaseHandle } from "../../src/db/database.js";

export type DatabaseKind = "pglite" | "postgres";

export const quietLog = createLogger((process.env.TEST_LOG ?? "silent") as LogLevel);

/**
 * The fast tier (`npm run test:fast`, TEST_TIER=fast): the service's logic in seconds — unit tests
 * and the behaviour suites called in-process on PGlite. `npm test` runs everything on every
 * protocol and both databases.
 */
export const fastTier = process.env.TEST_TIER === "fast";

/** The databases this run covers. */
export function databaseKinds(): DatabaseKind[] {
  return process.env.TEST_DATABASE_URL && !fastTier ? ["pglite", "postgres"] : ["pglite"];
}

/** A fresh, empty PostgreSQL database on the test cluster; returns its URL and a dropper. */
export async function createScratchDatabase(baseUrl = process.env.TEST_DATABASE_URL!): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `artifact_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const admin = postgres(baseUrl, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}

/** PostgreSQL settings for tests: as an operator would give them, with room for a loaded machine. */
export function postgresConfig(url: string, poolMax = 10): Extract<DatabaseConfig, { kind: "postgres" }> {
  return { kind: "postgres", url, timeZone: "UTC", poolMax, connectTimeoutMs: 5_000 };
}

/** A fresh database of `kind`; `poolMax` sizes the PostgreSQL pool (default 10, as the service's). */
export async function openTestDatabase(kind: DatabaseKind, options: { poolMax?: number } = {}): Promise<DatabaseHandle> {
  if (kind === "pglite") return openPglite("memory://", quietLog);
  const scratch = await createScratchDatabase();
  const handle = await openPostgres(postgresConfig(scratch.url, options.poolMax ?? 10), quietLog);
  return {
    ...handle,
    async close() {
      await handle.close();
      await scratch.drop();
    },
  };
}

/** Empties every catalog table between tests, keeping the schema and the settings. */
/**
 * Empties the catalog: a delete, not a truncate; `truncate … cascade` would empty every table that
 * refers to registries whole, role bindings included, and take the admin's global role with it;
 * the foreign keys' ON DELETE CASCADE removes only what belonged to the registries.
 */
export async function emptyCatalog(db: DatabaseHandle): Promise<void> {
  await db.db.execute("delete from registries");
}

/**
 * Holds the registries table until release(): an exclusive lock in an open transaction, so
 * every query on it waits (on PGlite, with its one connection, every query at all). Resolves
 * once the lock is taken.
 */
export async function holdRegistriesTable(db: Database): Promise<{ release(): Promise<void> }> {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let locked!: () => void;
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holder = db.transaction(async (tx) => {
    await tx.execute("lock table registries in access exclusive mode");
    locked();
    await gate;
  });
  await Promise.race([isLocked, holder]);
  return {
    async release() {
      release();
      await holder;
    },
  };
}
