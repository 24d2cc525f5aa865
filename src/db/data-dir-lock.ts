// One process per embedded database. PGlite takes no lock of its own: two processes opening the
// same directory both succeed and one's writes are lost without a word. Whatever opens it (the
// server, a CLI) takes this lock first: a file beside the database naming its holder.
//
// A holder on this host is alive exactly when its pid runs with the same start time (a crashed
// worker's lock is taken over at once by its replacement). A holder on another host (a volume
// shared between machines) cannot be asked: it touches the file every few seconds, and a file
// left untouched for STALE_MS is taken over.
import { readFileSync, unlinkSync, utimesSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { failedPrecondition } from "../domain/errors.js";

const REFRESH_MS = 5_000;
const STALE_MS = 30_000;

interface Holder {
  pid: number;
  host: string;
  /** The process's start time in clock ticks since boot (Linux), to tell a reused pid apart. */
  started?: string;
  since: string;
}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dir: string): DataDirLock {
  const file = `${dir}.lock`;
  const me: Holder = { pid: process.pid, host: hostname(), started: processStart(process.pid), since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, JSON.stringify(me) + "\n", { flag: "wx", mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = readHolder(file);
    if (isAlive(holder, file)) {
      const who = holder ? `pid ${holder.pid} on ${holder.host}, since ${holder.since}` : "its lock file is being written";
      throw failedPrecondition(
        `the embedded database in ${dir} is in use by another artifact-service process (${who}): ` +
          `stop it first, give this one another DATA_DIR, or use PostgreSQL for several processes. If no such process runs, remove ${file}`,
      );
    }
    // The holder is gone: its lock goes. Two processes may both get here; `wx` lets one win.
    if (attempt > 2) throw failedPrecondition(`cannot take the lock ${file}: it keeps changing hands`);
    try {
      unlinkSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  const timer = setInterval(() => {
    const now = new Date();
    try {
      utimesSync(file, now, now);
    } catch {
      // removed by hand: nothing to refresh
    }
  }, REFRESH_MS);
  timer.unref();
  return {
    release() {
      clearInterval(timer);
      const holder = readHolder(file);
      if (holder?.pid === me.pid && holder.host === me.host) {
        try {
          unlinkSync(file);
        } catch {
          // already gone
        }
      }
    },
  };
}

function readHolder(file: string): Holder | undefined {
  try {
    const holder = JSON.parse(readFileSync(file, "utf8")) as Partial<Holder>;
    return typeof holder.pid === "number" && typeof holder.host === "string" ? (holder as Holder) : undefined;
  } catch {
    // Half-written by a process that died at that instant, or not ours: the age decides.
    return undefined;
  }
}

function isAlive(holder: Holder | undefined, file: string): boolean {
  if (holder && holder.host === hostname()) {
    if (!pidRuns(holder.pid)) return false;
    const started = processStart(holder.pid);
    return holder.started === undefined || started === undefined || started === holder.started;
  }
  try {
    return Date.now() - statSync(file).mtimeMs < STALE_MS;
  } catch {
    return false;
  }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}
