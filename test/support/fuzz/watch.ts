// What the server does besides answering: the errors it logs (an unexpected error is a bug by the
// service's own definition) and the events that would end a real server process (an unhandled
// rejection or an uncaught exception: Node's default is to exit). The server runs inside the test
// worker, so while the fuzzer runs this takes over the worker's handlers for those two events,
// records them against the requests in flight, and gives the handlers back afterwards.
import type { Logger } from "pino";
import { createLogger } from "../../../src/log.js";

export interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  /** The whole line, for matching and reports. */
  text: string;
}

/** A logger for the server under test that keeps its warnings and errors in memory. */
export class LogSink {
  private lines: LogLine[] = [];
  // The service's own logger (its err serializer included), so a report shows what an operator would see.
  readonly logger: Logger = createLogger("warn", {
    write: (line: string) => {
      const parsed = JSON.parse(line) as { level: number; msg?: string; requestId?: string };
      this.lines.push({ level: parsed.level, msg: parsed.msg ?? "", requestId: parsed.requestId, text: line.trim() });
    },
  });

  /** Error lines (level 50 and up) logged since the last call. */
  takeErrors(): LogLine[] {
    const errors = this.lines.filter((l) => l.level >= 50);
    this.lines = [];
    return errors;
  }
}

export interface ProcessEvent {
  kind: "unhandledRejection" | "uncaughtException";
  error: unknown;
  text: string;
}

export class ProcessWatch {
  private events: ProcessEvent[] = [];
  private saved: Partial<Record<ProcessEvent["kind"], ((...args: unknown[]) => void)[]>> = {};
  private readonly handlers = {
    unhandledRejection: (reason: unknown) => this.record("unhandledRejection", reason),
    uncaughtException: (error: unknown) => this.record("uncaughtException", error),
  };

  start(): void {
    this.saved.unhandledRejection = process.listeners("unhandledRejection") as ((...args: unknown[]) => void)[];
    this.saved.uncaughtException = process.listeners("uncaughtException") as ((...args: unknown[]) => void)[];
    process.removeAllListeners("unhandledRejection").on("unhandledRejection", this.handlers.unhandledRejection);
    process.removeAllListeners("uncaughtException").on("uncaughtException", this.handlers.uncaughtException);
  }

  stop(): void {
    process.off("unhandledRejection", this.handlers.unhandledRejection).off("uncaughtException", this.handlers.uncaughtException);
    for (const listener of this.saved.unhandledRejection ?? []) process.on("unhandledRejection", listener);
    for (const listener of this.saved.uncaughtException ?? []) process.on("uncaughtException", listener);
  }

  /** Events since the last call. */
  take(): ProcessEvent[] {
    const events = this.events;
    this.events = [];
    return events;
  }

  private record(kind: ProcessEvent["kind"], error: unknown): void {
    const text = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack?.split("\n").slice(1, 6).join("\n") ?? ""}` : String(error);
    this.events.push({ kind, error, text });
  }
}
