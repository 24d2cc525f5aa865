// Says loudly what will not be tested on this machine, once per run; builds the web UI (dist/ui/)
// once for the suites that serve it, before any of them starts (two builds at once would race);
// starts one throwaway S3-compatible store (Swift's s3api) for every suite that needs one, each
// in buckets of its own, instead of one per file (~15 s of two cores each).
import { missingSwiftPackages, startSwift, type ThrowawaySwift } from "./swift.js";
import { buildUi } from "./ui.js";

export default async function setup(): Promise<() => Promise<void>> {
  if (process.env.TEST_TIER === "fast") {
    process.stderr.write("\nfast tier: unit suites and in-process calls on PGlite; `npm test` runs every protocol and both databases.\n\n");
  } else if (!process.env.TEST_DATABASE_URL) {
    process.stderr.write(
      "\n!!! TEST_DATABASE_URL is not set: every suite runs on PGlite only; the PostgreSQL runs are SKIPPED.\n" +
        '!!! .ci/run starts a throwaway PostgreSQL and sets it; locally: eval "$(npx tsx test/support/postgres.ts start)"\n\n',
    );
  }
  let swift: ThrowawaySwift | undefined;
  const wantsS3 = process.env.TEST_TIER !== "fast" && !process.env.S3_TEST_ENDPOINT && missingSwiftPackages().length === 0;
  // Only when ui/ or gen/ changed since the last build (a tenth of a second otherwise).
  await Promise.all([
    process.env.TEST_TIER !== "fast" ? buildUi() : undefined,
    wantsS3
      ? startSwift().then((started) => {
          swift = started;
          // Test files run in forked processes, which inherit these (test/support/swift.ts s3TestServer()).
          process.env.S3_TEST_ENDPOINT = started.endpoint;
          process.env.S3_TEST_REGION = started.region;
          process.env.S3_TEST_ACCESS_KEY_ID = started.accessKeyId;
          process.env.S3_TEST_SECRET_ACCESS_KEY = started.secretAccessKey;
        })
      : undefined,
  ]);
  return async () => {
    await swift?.stop();
  };
}
