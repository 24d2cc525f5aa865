// What every suite shares about running things: progress lines on stderr, and resources that are
// stopped whatever happens: by their owner when done, or by the signal handler on Ctrl-C (stops
// are idempotent, so both may run).
import { readFileSync } from "node:fs";

export const say = (line: string) => process.stderr.write(`bench: ${line}\n`);

const running = new Set<() => Promise<void> | void>();

export async function using<T, R>(start: () => Promise<T>, stop: (r: T) => Promise<void> | void, body: (r: T) => Promise<R>): Promise<R> {
  const resource = await start();
  const stopIt = () => stop(resource);
  running.add(stopIt);
  try {
    return await body(resource);
  } finally {
    running.delete(stopIt);
    await stopIt();
  }
}

/**
 * Resources started one after another and stopped together, newest first (and on Ctrl-C, as with
 * using()): for a run that needs many at once without nesting a using() per resource.
 */
export class Resources {
  private readonly stops: (() => Promise<void> | void)[] = [];

  async add<T>(start: () => Promise<T>, stop: (r: T) => Promise<void> | void): Promise<T> {
    const resource = await start();
    const stopIt = () => stop(resource);
    this.stops.push(stopIt);
    running.add(stopIt);
    return resource;
  }

  async stopAll(): Promise<void> {
    for (const stopIt of this.stops.splice(0).reverse()) {
      running.delete(stopIt);
      await Promise.resolve()
        .then(stopIt)
        .catch((err: unknown) => say(`a stop failed: ${String(err)}`));
    }
  }
}

export function stopEverythingOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      // Newest first: the server before its database, the database before the work dir.
      void (async () => {
        for (const stop of [...running].reverse())
          await Promise.resolve()
            .then(stop)
            .catch(() => {});
        process.exit(130);
      })();
    });
  }
}

/** The last lines of a log file, for an error message. */
export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}
