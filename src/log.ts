// The one logger of the service: JSON lines on stdout, and one way errors are written.
//
// Every error is logged as `log.x({ err }, "…")`; the `err` serializer below is the only code that
// turns an error into log fields. It keeps what an operator needs (type, message, code,
// constraint, where it was thrown, its causes) and drops what must not be written: the SQL
// parameters a database error carries (drizzle's "params:" line, the driver's `params`,
// `parameters` and `detail`, which repeats the offending value) and credentials (user info in
// URLs, Authorization values, signed-URL query parameters). Fields are picked, never copied
// wholesale, so a new field on some library's error cannot leak.
import { writeSync } from "node:fs";
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "./config.js";

/** JSON lines on stdout. Credentials never reach a log call; the redaction is a second fence. */
export function createLogger(level: LogLevel, destination: DestinationStream = new StdoutLines()): Logger {
  return pino(
    {
      level,
      base: { service: "artifact-service" },
      serializers: { err: serializeError },
      redact: { paths: ["password", "token", "credential", "*.password", "*.token", "*.credential"], censor: "[redacted]" },
    },
    destination,
  );
}

/** An error as the log shows it. */
export interface LoggedError {
  type: string;
  message: string;
  code?: string | number;
  /** The database constraint a violation names (no values). */
  constraint?: string;
  /** DomainError: its kind and reason. */
  kind?: string;
  reason?: string;
  /** The `at …` lines only: a stack's first lines repeat the message, parameters and all. */
  stack?: string;
  cause?: LoggedError;
}

const MAX_MESSAGE = 2000;
const MAX_STACK_LINES = 10;
const MAX_CAUSES = 3;

function serializeError(err: unknown): LoggedError {
  return serialize(err, 0);
}

function serialize(err: unknown, depth: number): LoggedError {
  if (typeof err !== "object" || err === null) return { type: typeof err, message: redactSecrets(String(err)).slice(0, 500) };
  const e = err as Record<string, unknown>;
  const logged: LoggedError = {
    type: err instanceof Error ? err.constructor.name || err.name : "object",
    message: typeof e.message === "string" ? redactSecrets(e.message.split("\nparams:")[0]!).slice(0, MAX_MESSAGE) : "",
  };
  if (typeof e.code === "string" || typeof e.code === "number") logged.code = e.code;
  const constraint = e.constraint ?? e.constraint_name;
  if (typeof constraint === "string") logged.constraint = constraint;
  if (typeof e.kind === "string") logged.kind = e.kind;
  if (typeof e.reason === "string") logged.reason = e.reason;
  if (typeof e.stack === "string") {
    const at = e.stack
      .split("\n")
      .filter((line) => /^\s+at /.test(line))
      .slice(0, MAX_STACK_LINES);
    if (at.length > 0) logged.stack = redactSecrets(at.join("\n"));
  }
  if (e.cause !== undefined && depth < MAX_CAUSES) logged.cause = serialize(e.cause, depth + 1);
  return logged;
}

/** Credentials that text about a request may carry, replaced by [redacted]. */
function redactSecrets(text: string): string {
  return (
    text
      // scheme://user:password@host
      .replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi, "$1[redacted]@")
      // Authorization header values
      .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/g, "$1 [redacted]")
      // signed or token-bearing URLs (S3 presigned redirects, token endpoints)
      .replace(
        /([?&](?:access_token|refresh_token|token|password|secret|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s"']+/gi,
        "$1[redacted]",
      )
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
