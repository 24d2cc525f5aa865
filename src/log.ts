import { writeSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.js";

/** JSON lines on stdout. Credentials never reach a log call; the redaction is a second fence. */
export function createLogger(level: LogLevel, destination: DestinationStream = new StdoutLines()): Logger {
  return pino(
    {
      level,
      base: { service: "artifact-service" },
      redact: { paths: ["password", "token", "credential", "*.password", "*.token", "*.credential"], censor: "[redacted]" },
    },
    destination,
  );
}

/**
 * Log lines written to stdout synchronously, never throwing and never blocking for good. pino's
 * default destination retries a failed write forever when it flushes at exit, so a process whose
 * reader went away (`npm start | head -3`) could not stop. Here a stdout that is gone (EPIPE,
 * EBADF, …) is given up on at once and the service goes on without logs; a full non-blocking pipe
 * (EAGAIN) is retried for a moment, then the line is dropped.
 */
export class StdoutLines implements DestinationStream {
  private gone = false;

  constructor(private readonly fd = 1) {}

  /** True once stdout is given up on. */
  get broken(): boolean {
    return this.gone;
  }

  write(line: string): void {
    if (this.gone) return;
    const bytes = Buffer.from(line);
    let offset = 0;
    let waitedMs = 0;
    while (offset < bytes.length) {
      try {
        offset += writeSync(this.fd, bytes, offset);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN" || waitedMs >= MAX_WAIT_MS) {
          if ((err as NodeJS.ErrnoException).code !== "EAGAIN") this.gone = true;
          return;
        }
        Atomics.wait(PAUSE, 0, 0, 1);
        waitedMs++;
      }
    }
  }
}

const MAX_WAIT_MS = 1000;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));
