// Entry point: configuration, then the primary process that owns the ports and supervises the
// server processes (src/cluster.ts), or, in a process the primary forked, one of those servers.
import { isClusterWorker, runPrimary, runWorker } from "./cluster.js";
import { ConfigError, loadConfig, loadDotEnv } from "./config.js";
import { createLogger, StdoutLines } from "./log.js";

async function main(): Promise<void> {
  const usedDotEnv = loadDotEnv();
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`artifact-service: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, new StdoutLines(1, config.logFormat));
  if (isClusterWorker()) return runWorker(config, log);
  if (usedDotEnv) log.info("read settings from .env (the environment wins where both are set)");
  runPrimary(config, log);
}

main().catch((err: unknown) => {
  process.stderr.write(`artifact-service: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
