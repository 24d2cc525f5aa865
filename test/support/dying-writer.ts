// A replica that appends to an upload and is then killed mid-chunk (test/oci-upload-writers.test.ts).
// Run as its own process: `node --import tsx dying-writer.ts` with a JSON job in argv[2]. It opens
// the shared database and content store, claims the upload with a short writer lease (a test-only
// store option) and appends what arrives on its stdin, which the test never closes: the chunk
// stalls until the test kills the process with SIGKILL, so nothing gets released or recorded.
import { createLogger } from "../../src/log.js";
import type { DatabaseConfig } from "../../src/config.js";
import { FilesystemDriver } from "../../src/content/filesystem.js";
import { openDatabase } from "../../src/db/database.js";
import { BlobStore } from "../../src/store/blobs.js";

export interface DyingWriterJob {
  database: DatabaseConfig;
  /** DATA_DIR/blobs of the service it plays a replica of. */
  blobsRoot: string;
  repositoryId: string;
  uploadId: string;
  writerLeaseMs: number;
}

const job = JSON.parse(process.argv[2]!) as DyingWriterJob;
const log = createLogger("silent");
const database = await openDatabase(job.database, log);
const content = new FilesystemDriver(job.blobsRoot);
const store = new BlobStore(database.db, content, { writerLeaseMs: job.writerLeaseMs });
const upload = await store.getUpload(job.repositoryId, job.uploadId);
process.stdout.write("appending\n");
try {
  await store.append(upload, upload.sizeBytes, process.stdin);
  process.stdout.write("appended\n");
} catch (err) {
  process.stdout.write(`failed: ${String(err)}\n`);
}
await database.close();
