// The databases a run measures against, as the environment the server process needs:
// PGlite in a fresh temp DATA_DIR; PostgreSQL at BENCH_DATABASE_URL or a throwaway cluster.
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { startThrowawayPostgres } from "../test/support/postgres.js";

export type DatabaseKind = "pglite" | "postgres";
export const DATABASE_KINDS: readonly DatabaseKind[] = ["pglite", "postgres"];

export interface DatabaseTarget {
  kind: DatabaseKind;
  /** For the report; never a password. */
  description: string;
  env: Record<string, string>;
  /** The PostgreSQL postmaster's pid when it runs here (its backends are its children). */
  postmasterPid?: number;
  close(): void;
}

export async function openTarget(kind: DatabaseKind, workDir: string): Promise<DatabaseTarget> {
  if (kind === "pglite") {
    // A fresh one per server: suites of one run share the work dir.
    const dataDir = mkdtempSync(join(workDir, "pglite-data-"));
    return { kind, description: "PGlite (embedded, in the server process)", env: { DATA_DIR: dataDir }, close() {} };
  }
  const given = process.env.BENCH_DATABASE_URL;
  if (given) {
    return { kind, description: "PostgreSQL at BENCH_DATABASE_URL", env: { DATABASE_URL: given, DATA_DIR: mkdtempSync(join(workDir, "data-")) }, close() {} };
  }
  const pg = await startThrowawayPostgres();
  return {
    kind,
    description: "PostgreSQL (throwaway local cluster, fsync=off, same machine)",
    env: { DATABASE_URL: pg.url, DATA_DIR: mkdtempSync(join(workDir, "data-")) },
    postmasterPid: Number(readFileSync(join(pg.dir, "data", "postmaster.pid"), "utf8").split("\n")[0]),
    close: () => pg.destroy(),
  };
}

/**
 * A new, empty database in the PostgreSQL of `target` (several servers of a run that must not share
 * data, one cluster): its DATABASE_URL, and drop() to remove it (forcing out what is still connected).
 */
export async function createDatabase(target: DatabaseTarget, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = target.env.DATABASE_URL;
  if (target.kind !== "postgres" || !admin) throw new Error("createDatabase: PostgreSQL only");
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`createDatabase: ${name} is not a plain database name`);
  const sql = postgres(admin, { max: 1, onnotice: () => undefined });
  try {
    await sql.unsafe(`create database ${name}`);
  } finally {
    await sql.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const sql = postgres(admin, { max: 1, onnotice: () => undefined });
      await sql.unsafe(`drop database if exists ${name} with (force)`).catch(() => undefined);
      await sql.end();
    },
  };
}
