// What a full disk does to the embedded database, made plain.
//
// PGlite runs PostgreSQL inside a WebAssembly instance. When PostgreSQL PANICs (a full disk
// leaves no room for a new write-ahead log segment: "could not write to file pg_wal/xlogtemp…"),
// the instance aborts (stderr says "Aborted()"); the query that hit it gets the PANIC, and the
// next call into the instance spins for ever inside PGlite's message loop, blocking the event
// loop: every request, health probe and signal of the process hangs (seen with PGlite 0.5). The
// files on disk are intact: after freeing space, the next start recovers from the log.
// So: watch for the abort, and from then on refuse every call before it reaches the instance
// (the watch lives with the instance, on its worker thread: pglite-worker.ts).
//
// At start-up, PGlite reports a full disk as an Emscripten errno object (no message) or as
// "PGlite failed to initialize properly"; the start-up failure here says what is wrong instead.
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";

/** Free space below this, a failed start is put down to the disk (a new cluster takes about 40 MB, a log segment 16 MB). */
const NEARLY_FULL_BYTES = 64 * 1024 * 1024;

/** Every call into an embedded database whose WebAssembly instance stopped. */
export class EmbeddedDatabaseStopped extends Error {
  constructor(
    message: string,
    /** The disk filled up (the PANIC said "No space left on device"). */
    readonly diskFull: boolean,
    /** PostgreSQL's last PANIC line, for the operator's log. */
    readonly panic: string | undefined,
  ) {
    super(message);
    this.name = "EmbeddedDatabaseStopped";
  }
}

/**
 * The error to report when the embedded database in `dataDir` failed to start: a full disk
 * when the disk is (nearly) full, else what PGlite said, in words (it may throw an errno object
 * without a message).
 */
export async function startFailure(dataDir: string, err: unknown): Promise<Error> {
  const free = await freeBytes(dataDir);
  if (free !== undefined && free < NEARLY_FULL_BYTES) {
    return new Error(
      `the embedded database cannot start: the disk holding ${dataDir} (under DATA_DIR) has ${free} bytes free ` +
        `(${(free / 2 ** 20).toFixed(1)} MiB); free space there (a new database needs about 40 MiB) and start again`,
      { cause: err },
    );
  }
  return new Error(`the embedded database cannot start: ${describe(err)}`, { cause: err });
}

/** Free bytes (for an unprivileged user) on the file system that holds `path`, or its nearest existing parent. */
async function freeBytes(path: string): Promise<number | undefined> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const s = await statfs(p);
      return s.bavail * s.bsize;
    } catch {
      if (dirname(p) === p) return undefined;
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  const errno = (err as { errno?: unknown } | undefined)?.errno;
  // Emscripten's file system throws { name: "ErrnoError", errno } with its own errno numbers.
  if (typeof errno === "number") return `file system error (Emscripten errno ${errno})`;
  return String(err);
}
