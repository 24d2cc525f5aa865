// The service on embedded PGlite in $DATA_DIR, as a process of its own, for tests that drive its
// database where no request can (a switch to a new write-ahead log segment) and that must survive
// the process hanging. Logs JSON lines on stdout like the service; prints
// {"harness":"ready","http":<port>} once listening; on stdin, "switch-wal" runs
// `select pg_switch_wal()` and answers {"harness":"switched"}. SIGTERM stops it gracefully.
import { join } from "node:path";
import { createInterface } from "node:readline";
import { sql } from "drizzle-orm";
import { openPglite } from "../../src/db/database.js";
import { createLogger } from "../../src/log.js";
import { startServer } from "../../src/server.js";
import { testConfig } from "./server.js";

const say = (message: object) => process.stdout.write(`${JSON.stringify({ harness: true, ...message })}\n`);

const dataDir = process.env.DATA_DIR;
if (!dataDir) throw new Error("DATA_DIR must be set");
const log = createLogger("info");
const database = await openPglite(join(dataDir, "pglite"), log);
const server = await startServer(testConfig(dataDir, { logLevel: "info", healthCheckIntervalMs: 200 }), log, { database });
process.on("SIGTERM", () => {
  server.close().then(
    () => database.close().then(() => process.exit(0)),
    () => process.exit(1),
  );
});
say({ ready: true, http: server.http.port });

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== "switch-wal") continue;
  try {
    await database.db.execute(sql`select pg_switch_wal()`);
    say({ switched: true });
  } catch (err) {
    say({ switched: false, error: err instanceof Error ? err.message : String(err) });
  }
}
