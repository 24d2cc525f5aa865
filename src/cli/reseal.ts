// `npm run reseal -- [--dry-run] [--json]`: after a SECRET_KEY rotation, seals every stored
// upstream credential that is still under a key of SECRET_KEY_PREVIOUS (or in the first format)
// under SECRET_KEY, so the old key can be dropped. It needs the keys, so it reads the service's
// settings and works on the database directly, never through the API.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { createLogger } from "../log.js";
import { loadConfig, loadDotEnv } from "../config.js";
import { openDatabase, type DatabaseHandle } from "../db/database.js";
import { resealCredentials, type ResealReport } from "../key-rotation.js";
import { resolveSecretKey, Sealer } from "../secrets.js";
import { CredentialStore } from "../store/credentials.js";

const USAGE = `Usage: npm run reseal -- [--dry-run] [--json]
       node dist/src/cli/reseal.js [--dry-run] [--json]

Seals every stored upstream credential and webhook secret that is under a key of
SECRET_KEY_PREVIOUS (or in the first, key-less format) under SECRET_KEY, so that the old keys can
be removed. Reads the service's
settings (environment, then .env) and works on its database directly. On PostgreSQL it is safe
while the service runs; the embedded PGlite database belongs to one process: stop the service first.

Options:
  --dry-run  report what would be re-sealed, change nothing
  --json     print the report as JSON
  --help     print this text

Exit status: 0 every stored credential is (or would be) under SECRET_KEY; 1 some are not: no
configured key opens them (they are listed), or they kept changing while this ran (run it again);
2 usage, configuration or database error.
`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: { "dry-run": { type: "boolean", default: false }, json: { type: "boolean", default: false }, help: { type: "boolean", default: false } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`, { cause: err });
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  loadDotEnv();
  const config = loadConfig();
  if (config.database.kind === "pglite") {
    if (!existsSync(join(config.database.dataDir, "PG_VERSION"))) {
      process.stdout.write(`no embedded database in ${config.database.dataDir}: nothing to re-seal (is DATA_DIR right?)\n`);
      return 0;
    }
  }
  const sealing = resolveSecretKey({ secretKey: config.secretKey, embedded: config.database.kind === "pglite", dataDir: config.dataDir });
  if (!sealing) throw new Error("SECRET_KEY is not set: there is no key to seal under (set it, and the old key in SECRET_KEY_PREVIOUS)");
  const sealer = new Sealer({ sealing, previous: config.previousSecretKeys });

  // Logs (opening, migrations) go to stderr, quietly; the report is stdout's.
  const log = createLogger("warn", pino.destination(2));
  let database: DatabaseHandle;
  try {
    database = await openDatabase(config.database, log);
  } catch (err) {
    throw new Error(`cannot open the database: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    const report = await resealCredentials(new CredentialStore(database.db), sealer, { dryRun: values["dry-run"] });
    process.stdout.write(values.json ? JSON.stringify(report, null, 2) + "\n" : describe(report));
    return report.unopenable.length + report.contended.length > 0 ? 1 : 0;
  } finally {
    await database.close();
  }
}

function describe(r: ResealReport): string {
  const names = (list: string[]) => list.map((n) => `    ${n}\n`).join("");
  return (
    `credentials ${r.dryRun ? "that would be " : ""}re-sealed under SECRET_KEY (key id ${r.keyId})${r.dryRun ? " (dry run: nothing changed)" : ""}\n` +
    `  ${r.dryRun ? "would re-seal" : "re-sealed"}:     ${r.resealed.length}\n${names(r.resealed)}` +
    `  already current: ${r.alreadyCurrent.length}\n` +
    `  cannot be opened: ${r.unopenable.length}${r.unopenable.length > 0 ? " (put their key in SECRET_KEY_PREVIOUS, or set their credentials again)" : ""}\n${names(r.unopenable)}` +
    (r.contended.length > 0 ? `  changed while re-sealing, left as they are (run again): ${r.contended.length}\n${names(r.contended)}` : "")
  );
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`reseal: ${err instanceof Error ? err.message : String(err)}\n`);
    // Whatever stopped it (usage, settings, the database), nothing was judged: 2, not 1.
    process.exit(2);
  },
);
