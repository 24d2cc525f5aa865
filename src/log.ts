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
import { isatty } from "node:tty";
import { pino, type DestinationStream, type Logger } from "pino";
import type { LogFormat, LogLevel } from "./config.js";

/** JSON lines on stdout. Credentials never reach a log call; the redaction is a second fence. */
export function createLogger(level: LogLevel, destination: DestinationStream = new StdoutLines(1, "json")): Logger {
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
  private readonly pretty: boolean;

  /** `format` auto: readable lines when the descriptor is a terminal, JSON otherwise. */
  constructor(
    private readonly fd = 1,
    format: LogFormat = "json",
  ) {
    this.pretty = format === "pretty" || (format === "auto" && isatty(fd));
  }

  /** True once stdout is given up on. */
  get broken(): boolean {
    return this.gone;
  }

  write(line: string): void {
    if (this.gone) return;
    const bytes = Buffer.from(this.pretty ? prettyLine(line) : line);
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

const LEVELS: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
/** Fields every line has, or that the readable line shows in its own place. */
const SHOWN = new Set(["level", "time", "msg", "service", "pid", "hostname", "worker", "err"]);

/**
 * A JSON log line as a person reads it in a terminal: time, level, worker, message, then the other
 * fields as key=value (strings quoted only when they must be), and an error's type, message and
 * stack below. The same fields as the JSON line, nothing dropped but the constant ones.
 */
export function prettyLine(json: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof record.time === "number" ? new Date(record.time).toISOString().slice(11, 23) : "";
  const level = LEVELS[record.level as number] ?? String(record.level);
  const worker = record.worker === undefined ? "" : ` [${asText(record.worker)}]`;
  const fields = Object.entries(record)
    .filter(([key]) => !SHOWN.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`);
  let text = `${time} ${level}${worker} ${asText(record.msg ?? "")}${fields.length ? `  ${fields.join(" ")}` : ""}`;
  for (let err = record.err as LoggedError | undefined, depth = 0; err; err = err.cause, depth++) {
    text += `\n    ${depth ? "caused by " : ""}${err.type}: ${err.message}${err.code !== undefined ? ` (${err.code})` : ""}`;
    if (err.stack) text += `\n${err.stack.replace(/^\s*/gm, "      ")}`;
  }
  return `${text}\n`;
}

function asText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}
