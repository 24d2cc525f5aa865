// `npm run gc -- [--dry-run] [--url http://127.0.0.1:8080]`: asks the running service to
// collect garbage and prints what was (or would be) freed. It goes through the API rather
// than the database because the embedded database belongs to the one server process. It signs
// in with an API token read from a file (--token-file; by default the first start's
// DATA_DIR/admin-token when it is there), never from the command line.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GarbageCollectionService } from "../../gen/artifact/v1/garbage_collection_pb.js";
import { loadConfig, loadDotEnv } from "../config.js";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "dry-run": { type: "boolean", default: false },
      url: { type: "string" },
      json: { type: "boolean", default: false },
      "token-file": { type: "string" },
    },
  });
  loadDotEnv();
  const config = loadConfig();
  const host = config.http.host === "0.0.0.0" || config.http.host === "::" ? "127.0.0.1" : config.http.host;
  const baseUrl = values.url ?? `http://${host.includes(":") ? `[${host}]` : host}:${config.http.port}`;
  const tokenFile = values["token-file"] ?? join(config.dataDir, "admin-token");
  const token = values["token-file"] !== undefined || existsSync(tokenFile) ? readFileSync(tokenFile, "utf8").trim() : undefined;
  const interceptors: Interceptor[] = token
    ? [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ]
    : [];
  const client = createClient(GarbageCollectionService, createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors }));
  const r = await client.runGarbageCollection({ dryRun: values["dry-run"] });
  if (values.json) {
    process.stdout.write(JSON.stringify(r, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v), 2) + "\n");
    return;
  }
  const verb = r.dryRun ? "would delete" : "deleted";
  process.stdout.write(
    [
      `garbage collection at ${baseUrl}${r.dryRun ? " (dry run: nothing deleted)" : ""}`,
      `  manifests ${verb}: ${r.manifestsDeleted}`,
      `  blobs ${verb}:     ${r.blobsDeleted} (${formatBytes(Number(r.bytesFreed))})`,
      `  uploads expired:   ${r.uploadsExpired}`,
      `  orphans removed:   ${r.orphansRemoved}`,
      `  took ${r.durationMs} ms`,
      ...r.sampleDigests.map((d) => `    ${d}`),
    ].join("\n") + "\n",
  );
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

main().catch((err: unknown) => {
  process.stderr.write(`gc: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
