// `npm run gc -- [--dry-run] [--json] [--url http://127.0.0.1:8080]` (`--help`): asks the running service to
// collect garbage and prints what was (or would be) freed. It goes through the API rather
// than the database because the embedded database belongs to the one server process. It signs
// in with an API token read from a file (--token-file; by default the first start's
// DATA_DIR/admin-token when it is there), never from the command line.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatDuration } from "../client/keep-rule.js";
import { createArtifactClient } from "../client/node.js";
import { humanBytes } from "./artifact/output.js";
import { loadConfig, loadDotEnv } from "../config.js";

const HELP = `Usage: npm run gc -- [options]

Asks the running service to collect garbage: untagged manifests nothing refers to, blobs no
manifest refers to, expired uploads. Content pushed within the grace period (GC_GRACE_MS) is
kept whatever refers to it, so pushes in flight never lose content.

Options:
  --dry-run          report what would be deleted, delete nothing
  --json             print the report as JSON (for scripts)
  --url URL          the service (default: http://<HTTP_HOST>:<HTTP_PORT> from the environment)
  --token-file FILE  an administrator's API token (default: DATA_DIR/admin-token when present)
  -h, --help         this text

Exit status: 0 done, 1 refused or failed (the reason on stderr), 2 bad usage.
`;

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        "dry-run": { type: "boolean", default: false },
        url: { type: "string" },
        json: { type: "boolean", default: false },
        "token-file": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    process.stderr.write(`gc: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  loadDotEnv();
  const config = loadConfig();
  const host = config.http.host === "0.0.0.0" || config.http.host === "::" ? "127.0.0.1" : config.http.host;
  const baseUrl = values.url ?? `http://${host.includes(":") ? `[${host}]` : host}:${config.http.port}`;
  const tokenFile = values["token-file"] ?? join(config.dataDir, "admin-token");
  const token = values["token-file"] !== undefined || existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined;
  // An empty file is no token (anonymous), as before.
  const client = createArtifactClient(baseUrl, { token: token || undefined }).garbageCollection;
  const r = await client.runGarbageCollection({ dryRun: values["dry-run"] });
  const graceSeconds = Number(r.gracePeriod?.seconds ?? 0n);
  if (values.json) {
    // The report's fields as numbers, and nothing else (no message internals).
    const report = {
      dryRun: r.dryRun,
      manifestsDeleted: Number(r.manifestsDeleted),
      blobsDeleted: Number(r.blobsDeleted),
      bytesFreed: Number(r.bytesFreed),
      uploadsExpired: Number(r.uploadsExpired),
      orphansRemoved: Number(r.orphansRemoved),
      graceSeconds,
      durationMs: Number(r.durationMs),
      sampleDigests: r.sampleDigests,
    };
    process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    return;
  }
  const verb = r.dryRun ? "would delete" : "deleted";
  process.stdout.write(
    [
      `garbage collection at ${baseUrl}${r.dryRun ? " (dry run: nothing deleted)" : ""}`,
      `  manifests ${verb}: ${r.manifestsDeleted}`,
      `  blobs ${verb}:     ${r.blobsDeleted} (${humanBytes(r.bytesFreed)})`,
      `  uploads expired:   ${r.uploadsExpired}`,
      `  orphans removed:   ${r.orphansRemoved}`,
      `  kept: anything pushed in the last ${formatDuration(graceSeconds * 1000)} (grace period, GC_GRACE_MS)`,
      `  took ${r.durationMs} ms`,
      ...r.sampleDigests.map((d) => `    ${d}`),
    ].join("\n") + "\n",
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`gc: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
