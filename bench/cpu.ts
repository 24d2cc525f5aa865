// CPU use during a row, from /proc: how busy the server process was (100% = one core, the
// most a single Node thread can use) and how busy the whole machine was. Linux only; elsewhere NaN.
import { readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

function processTicks(pid: number): number {
  // Fields after the ")" that ends the command name: utime is the 14th field overall, stime the 15th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
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
  /** Whole machine, percent of all cores. */
  machinePct: number;
}

export async function measureCpu<T>(pid: number, during: () => Promise<T>): Promise<{ value: T; cpu: CpuUse }> {
  let before: { p: number; m: { busy: number; total: number }; t: number } | undefined;
  try {
    before = { p: processTicks(pid), m: machineTicks(), t: performance.now() };
  } catch {
    before = undefined;
  }
  const value = await during();
  if (!before) return { value, cpu: { serverPct: NaN, machinePct: NaN } };
  const seconds = (performance.now() - before.t) / 1000;
  const m = machineTicks();
  return {
    value,
    cpu: {
      serverPct: ((processTicks(pid) - before.p) / TICKS_PER_SECOND / seconds) * 100,
      machinePct: ((m.busy - before.m.busy) / (m.total - before.m.total)) * 100,
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
