// The content store: one entry point for the rest of the service.
import { join } from "node:path";
import type { Config } from "../config.js";
import type { ContentDriver } from "./driver.js";
import { FilesystemDriver } from "./filesystem.js";

export { FilesystemDriver } from "./filesystem.js";
export { MemoryDriver } from "./memory.js";

/** The configured content store, with its directories created (so a bad DATA_DIR fails at start-up). */
export async function createContentDriver(config: Pick<Config, "dataDir">): Promise<ContentDriver> {
  const driver = new FilesystemDriver(join(config.dataDir, "blobs"), { label: "DATA_DIR/blobs" });
  await driver.init();
  return driver;
}
