// CPU use during a row, from /proc (Linux; elsewhere NaN): the server process, the database's
// processes (a local PostgreSQL), and the whole machine. CPU time per call is the figure that
// other load on the machine disturbs least.
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

function stat(pid: number): { ppid: number; ticks: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the ")" that ends the command name, from field 3 (state) on.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/** A process and its children (PostgreSQL: the postmaster and its backends; cluster workers). */
export function processTree(root: number): number[] {
  return [...treeTicks(root).keys()];
}

function treeTicks(root: number): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const s = stat(Number(entry));
      if (Number(entry) === root || s.ppid === root) ticks.set(Number(entry), s.ticks);
    } catch {
      // gone meanwhile
    }
  }
  return ticks;
}

function machineTicks(): { busy: number; total: number } {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

export interface CpuUse {
  /** Server process, percent of one core. */
  serverPct: number;
  /** Database processes (when known), percent of one core. */
  databasePct: number;
  /** Whole machine, percent of all cores. */
  machinePct: number;
}

export async function measureCpu<T>(serverPid: number, databasePid: number | undefined, during: () => Promise<T>): Promise<{ value: T; cpu: CpuUse }> {
  const snapshot = () => ({
    server: stat(serverPid).ticks,
    database: databasePid === undefined ? undefined : treeTicks(databasePid),
    machine: machineTicks(),
    at: performance.now(),
  });
  let before: ReturnType<typeof snapshot> | undefined;
  try {
    before = snapshot();
  } catch {
    before = undefined;
  }
  const value = await during();
  if (!before) return { value, cpu: { serverPct: NaN, databasePct: NaN, machinePct: NaN } };
  const after = snapshot();
  const seconds = (after.at - before.at) / 1000;
  const pct = (ticks: number) => (ticks / TICKS_PER_SECOND / seconds) * 100;
  let databaseTicks = NaN;
  if (before.database && after.database) {
    // Only processes alive at both ends: the pool's connections live through a row.
    databaseTicks = 0;
    for (const [pid, t] of after.database) databaseTicks += t - (before.database.get(pid) ?? t);
  }
  return {
    value,
    cpu: {
      serverPct: pct(after.server - before.server),
      databasePct: pct(databaseTicks),
      machinePct: ((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * 100,
    },
  };
}

/** How busy the machine is over `ms` while we send nothing: other sessions' work, autovacuum… */
export async function backgroundBusyPct(ms = 1000): Promise<number> {
  try {
    const a = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, ms));
    const b = machineTicks();
    return ((b.busy - a.busy) / (b.total - a.total)) * 100;
  } catch {
    return NaN;
  }
}

/** Processes to watch: a pid alone, or with `tree` its children too (a PostgreSQL postmaster). */
export type Watched = Record<string, { pid: number; tree?: boolean } | undefined>;

/** CPU of each watched process (% of one core) and of the machine (% of all cores) while `during` runs. */
export async function measureCpuOf<T>(
  watched: Watched,
  during: () => Promise<T>,
): Promise<{ value: T; pct: Record<string, number>; machinePct: number; seconds: number }> {
  const ticksOf = (w: { pid: number; tree?: boolean }): Map<number, number> => {
    try {
      return w.tree ? treeTicks(w.pid) : new Map([[w.pid, stat(w.pid).ticks]]);
    } catch {
      return new Map();
    }
  };
  const snapshot = () => ({
    each: Object.fromEntries(Object.entries(watched).map(([k, w]) => [k, w ? ticksOf(w) : new Map<number, number>()])),
    machine: machineTicks(),
    at: performance.now(),
  });
  const before = snapshot();
  const value = await during();
  const after = snapshot();
  const seconds = (after.at - before.at) / 1000;
  const pct: Record<string, number> = {};
  for (const [k, w] of Object.entries(watched)) {
    if (!w) continue;
    let ticks = 0;
    // A child that appeared meanwhile (a new pool connection's backend) counts from zero; one that
    // ended meanwhile is lost.
    for (const [pid, t] of after.each[k]!) ticks += t - (before.each[k]!.get(pid) ?? (w.tree ? 0 : t));
    pct[k] = (ticks / TICKS_PER_SECOND / seconds) * 100;
  }
  const machinePct = ((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * 100;
  return { value, pct, machinePct, seconds };
}

/** CPU seconds of this process's waited-for children, e.g. skopeo or curl (cutime + cstime of /proc/self/stat). */
export function childrenCpuSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields from state (3) on: cutime is field 16, cstime 17 (1-based in proc(5)), i.e. 13 and 14 here.
  return (Number(fields[13]) + Number(fields[14])) / TICKS_PER_SECOND;
}
