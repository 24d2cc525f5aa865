// The drizzle schema and migrations/ never disagree, the journal is in order (drizzle skips
// a migration older than the newest applied one), and replicas migrating at once all start.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { tmpdir } from "node:os";
import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { openPglite } from "../src/db/database.js";
import { migrationsFolder, packageRoot } from "../src/paths.js";
import { startServer } from "../src/server.js";
import { createScratchDatabase, postgresConfig, quietLog } from "./support/database.js";
import { testConfig } from "./support/server.js";

interface Journal {
  entries: { idx: number; when: number; tag: string }[];
}

describe("migrations/", () => {
  it("matches the drizzle schema (drizzle-kit generates nothing new)", () => {
    const cacheDir = join(packageRoot, "node_modules", ".cache");
    const scratch = mkdtempSync(join(existsSync(cacheDir) ? cacheDir : packageRoot, "migrations-drift-"));
    try {
      cpSync(migrationsFolder, scratch, { recursive: true });
      const out = execFileSync(
        join(packageRoot, "node_modules/.bin/drizzle-kit"),
        ["generate", "--dialect", "postgresql", "--schema", "./src/db/schema.ts", "--out", relative(packageRoot, scratch)],
        { cwd: packageRoot, encoding: "utf8" },
      );
      expect(out).toContain("No schema changes");
      expect(readdirSync(scratch).sort()).toEqual(readdirSync(migrationsFolder).sort());
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it("has a journal in order whose every entry has its SQL file and snapshot", () => {
    const journal = JSON.parse(readFileSync(join(migrationsFolder, "meta/_journal.json"), "utf8")) as Journal;
    expect(journal.entries.length).toBeGreaterThan(0);
    journal.entries.forEach((entry, i) => {
      expect(entry.idx).toBe(i);
      expect(entry.tag.startsWith(String(i).padStart(4, "0") + "_")).toBe(true);
      if (i > 0) expect(entry.when).toBeGreaterThan(journal.entries[i - 1]!.when);
      expect(existsSync(join(migrationsFolder, `${entry.tag}.sql`))).toBe(true);
      expect(existsSync(join(migrationsFolder, "meta", `${entry.tag.slice(0, 4)}_snapshot.json`))).toBe(true);
    });
    const sqlFiles = readdirSync(migrationsFolder).filter((f) => f.endsWith(".sql"));
    expect(sqlFiles.length).toBe(journal.entries.length);
  });

  it("applies once on PGlite and finds nothing to do on the next start, keeping the data", async () => {
    const dir = mkdtempSync(join(tmpdir(), "artifact-pglite-"));
    try {
      const first = await openPglite(dir, quietLog);
      await first.db.execute("insert into settings (key, value) values ('probe', 'kept')");
      await first.close();
      const second = await openPglite(dir, quietLog);
      const rows = await second.db.execute("select value from settings where key = 'probe'");
      const applied = await second.db.execute("select count(*)::int as n from drizzle.__drizzle_migrations");
      await second.close();
      expect(JSON.stringify(rows)).toContain("kept");
      expect(JSON.stringify(applied)).toContain(`"n":${readdirSync(migrationsFolder).filter((f) => f.endsWith(".sql")).length}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)("lets three servers migrate one empty PostgreSQL at once", async () => {
    const scratch = await createScratchDatabase();
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), "artifact-race-")));
    try {
      const servers = await Promise.all(dirs.map((dir) => startServer(testConfig(dir, { database: postgresConfig(scratch.url, 2) }), quietLog)));
      const sql = postgres(scratch.url, { max: 1, onnotice: () => {} });
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from drizzle.__drizzle_migrations`;
      await sql.end();
      await Promise.all(servers.map((s) => s.close()));
      expect(row?.n).toBe(readdirSync(migrationsFolder).filter((f) => f.endsWith(".sql")).length);
    } finally {
      await scratch.drop();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    }
  });
});
