// Entry point: configuration → database → app → listen; a clean stop on SIGTERM/SIGINT.
// With WORKERS > 1 this process becomes the primary of that many server processes (src/cluster.ts).
import { isClusterWorker, runPrimary, runWorker } from "./cluster.js";
import { ConfigError, loadConfig, loadDotEnv } from "./config.js";
import { createLogger } from "./log.js";
import { startServer, type RunningServer } from "./server.js";

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
  const log = createLogger(config.logLevel);
  if (isClusterWorker()) return runWorker(config, log);
  if (usedDotEnv) log.info("read settings from .env (the environment wins where both are set)");
  if (config.workers > 1) {
    runPrimary(config, log);
    return;
  }
  // Handlers first: a signal that arrives while the server starts (its "listening" line may be
  // out already) stops it once it is up, instead of killing the process mid-start.
  let server: RunningServer | undefined;
  let stopRequested = false;
  const close = (running: RunningServer) =>
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "error while shutting down");
        process.exit(1);
      },
    );
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "signal received");
    if (server) void close(server);
    else stopRequested = true;
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  server = await startServer(config, log);
  if (stopRequested) void close(server);
}

main().catch((err: unknown) => {
  process.stderr.write(`artifact-service: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
