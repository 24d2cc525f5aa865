import { pino, type Logger } from "pino";
import type { LogLevel } from "./config.js";

/** JSON lines on stdout. Credentials never reach a log call; the redaction is a second fence. */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: "artifact-service" },
    redact: { paths: ["password", "token", "credential", "*.password", "*.token", "*.credential"], censor: "[redacted]" },
  });
}
