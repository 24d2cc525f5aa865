// Memory of a process while something runs: resident set size from /proc/<pid>/status. The peak
// comes from VmHWM after resetting it (writing 5 to /proc/<pid>/clear_refs, Linux ≥ 4.0, needs
// the right to) and from sampling every few milliseconds, whichever is higher.
import { readFileSync, writeFileSync } from "node:fs";
import { processTree } from "./cpu.js";

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

/**
 * `tree`: the process and its children (a cluster primary and its workers), summed; the peak is
 * then the sum of each process's own peak, an upper bound of their simultaneous peak.
 */
export async function measureRss<T>(
  pid: number,
  during: () => Promise<T>,
  options: { tree?: boolean; intervalMs?: number } = {},
): Promise<{ value: T; rss: RssUse }> {
  const pids = options.tree ? processTree(pid) : [pid];
  const resettable = pids.filter((p) => {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, "5");
      return true;
    } catch {
      return false; // not allowed: sampling only
    }
  });
  const sum = (field: "VmRSS" | "VmHWM", of: number[]) =>
    of.reduce((total, p) => {
      try {
        return total + status(p, field);
      } catch {
        return total; // the process ended; the caller will notice
      }
    }, 0);
  const before = sum("VmRSS", pids);
  let peak = before;
  const sample = () => {
    peak = Math.max(peak, sum("VmRSS", pids));
  };
  const timer = setInterval(sample, options.intervalMs ?? 20);
  try {
    const value = await during();
    sample();
    if (resettable.length === pids.length) peak = Math.max(peak, sum("VmHWM", pids));
    return { value, rss: { beforeMiB: before / MiB, peakMiB: peak / MiB, growthMiB: (peak - before) / MiB } };
  } finally {
    clearInterval(timer);
  }
}
