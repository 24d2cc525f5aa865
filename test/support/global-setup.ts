// Says loudly what will not be tested on this machine, once per run.
export default function setup(): void {
  if (process.env.TEST_TIER === "fast") {
    process.stderr.write("\nfast tier: unit suites and in-process calls on PGlite; `npm test` runs every protocol and both databases.\n\n");
  } else if (!process.env.TEST_DATABASE_URL) {
    process.stderr.write(
      "\n!!! TEST_DATABASE_URL is not set: every suite runs on PGlite only; the PostgreSQL runs are SKIPPED.\n" +
        '!!! .ci/run starts a throwaway PostgreSQL and sets it; locally: eval "$(npx tsx test/support/postgres.ts start)"\n\n',
    );
  }
}
