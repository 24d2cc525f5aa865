// The content store: one entry point for the rest of the service.
import { join } from "node:path";
import type { Config } from "../config.js";
import type { ContentDriver } from "./driver.js";
import { FilesystemDriver } from "./filesystem.js";

export { FilesystemDriver } from "./filesystem.js";
export { MemoryDriver } from "./memory.js";

/**
 * The configured content store, ready: the filesystem's directories created, the bucket
 * answering with the credentials given. A bad DATA_DIR or S3_* setting fails at start-up,
 * with a message naming it, not at the first push.
 */
export async function createContentDriver(config: Pick<Config, "dataDir"> & Partial<Pick<Config, "content">>): Promise<ContentDriver> {
  const content = config.content ?? { kind: "filesystem" };
  if (content.kind === "s3") {
    // Loaded only when configured: the AWS SDK is a second of start-up the default store does not need.
    const { S3Driver } = await import("./s3.js");
    const driver = new S3Driver(content.s3, { partSize: content.partSize, partConcurrency: content.partConcurrency, presignSeconds: content.redirectSeconds });
    await driver.init().catch((err: unknown) => {
      const where = `bucket ${JSON.stringify(content.s3.bucket)}${content.s3.endpoint ? ` at ${content.s3.endpoint}` : ""}`;
      throw new Error(`CONTENT_STORE=s3: ${where} does not answer (${describe(err)}); check S3_ENDPOINT, S3_REGION, S3_BUCKET and the credentials`, {
        cause: err,
      });
    });
    return driver;
  }
  const driver = new FilesystemDriver(join(config.dataDir, "blobs"), { label: "DATA_DIR/blobs" });
  await driver.init();
  return driver;
}

function describe(err: unknown): string {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return [e.name, e.code, status ? `HTTP ${status}` : undefined].filter(Boolean).join(", ") || "no answer";
}
