// Memory of a process while something runs: resident set size from /proc/<pid>/status. The peak
// comes from VmHWM after resetting it (writing 5 to /proc/<pid>/clear_refs, Linux ≥ 4.0, needs
// the right to) and from sampling every few milliseconds, whichever is higher.
import { readFileSync, writeFileSync } from "node:fs";

const MiB = 1024 * 1024;

function status(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

export interface RssUse {
  /** Before the work started, MiB. */
  beforeMiB: number;
  /** Highest seen during the work, MiB. */
  peakMiB: number;
  growthMiB: number;
}

export async function measureRss<T>(pid: number, during: () => Promise<T>, intervalMs = 20): Promise<{ value: T; rss: RssUse }> {
  let hwmReset = false;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    hwmReset = true;
  } catch {
    // not allowed: sampling only
  }
  const before = status(pid, "VmRSS");
  let peak = before;
  const sample = () => {
    try {
      peak = Math.max(peak, status(pid, "VmRSS"));
    } catch {
      // the process ended; the caller will notice
    }
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const value = await during();
    sample();
    if (hwmReset) {
      try {
        peak = Math.max(peak, status(pid, "VmHWM"));
      } catch {
        // ended
      }
    }
    return { value, rss: { beforeMiB: before / MiB, peakMiB: peak / MiB, growthMiB: (peak - before) / MiB } };
  } finally {
    clearInterval(timer);
  }
}
