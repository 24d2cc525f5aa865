// Says loudly what will not be tested on this machine, once per run; builds the web UI (dist/ui/)
// once for the suites that serve it, before any of them starts (two builds at once would race).
import { buildUi } from "./ui.js";

export default async function setup(): Promise<void> {
  if (process.env.TEST_TIER === "fast") {
    process.stderr.write("\nfast tier: unit suites and in-process calls on PGlite; `npm test` runs every protocol and both databases.\n\n");
  } else if (!process.env.TEST_DATABASE_URL) {
    process.stderr.write(
      "\n!!! TEST_DATABASE_URL is not set: every suite runs on PGlite only; the PostgreSQL runs are SKIPPED.\n" +
        '!!! .ci/run starts a throwaway PostgreSQL and sets it; locally: eval "$(npx tsx test/support/postgres.ts start)"\n\n',
    );
  }
  // Only when ui/ or gen/ changed since the last build (a tenth of a second otherwise).
  if (process.env.TEST_TIER !== "fast") await buildUi();
}
