// Cleans up after a test process, however it ends. Vitest stops its fork workers with SIGTERM,
// where process "exit" handlers never run; a child shell that waits for its stdin pipe to close
// (which happens on any exit, even SIGKILL) does the work instead: it removes a temp dir, and
// (reapGroupsWhenProcessEnds) kills the process groups of the daemons a test started.
import { spawn } from "node:child_process";

const REAPER = `trap '' INT TERM HUP; read -r _ || true; rm -rf -- "$0"`;

/** Removes `dir` when this process ends. */
export function removeWhenProcessEnds(dir: string): void {
  const child = spawn("sh", ["-c", REAPER, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  // Neither the child nor its pipe may keep this process alive.
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
}

// Daemons a test starts (Swift's servers, nginx) each run in a process group of their own (spawn
// with `detached: true`), so their workers can be ended with them. $0 = a dir. The watchdog reads
// process-group ids from stdin, one a line ("forget" drops them all); when stdin closes (the owner
// is done, or this process ended in any way) it SIGKILLs each group left and removes the dir.
const GROUP_REAPER = `trap '' INT TERM HUP
groups=
while read -r line; do
  case "$line" in
    forget) groups= ;;
    *) groups="$groups $line" ;;
  esac
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
rm -rf -- "$0"
`;

export interface GroupReaper {
  /** Kill this process group (a detached child's pid) if this process ends before forget(). */
  track(pgid: number): void;
  /** The groups are stopped: let the watchdog end, removing the dir, without killing anything. */
  release(): void;
}

/** Kills the tracked process groups and removes `dir` when this process ends, however it ends. */
export function reapGroupsWhenProcessEnds(dir: string): GroupReaper {
  const child = spawn("sh", ["-c", GROUP_REAPER, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  child.unref();
  const stdin = child.stdin as unknown as NodeJS.WritableStream & { unref(): void; on(event: "error", f: () => void): void };
  stdin.unref();
  stdin.on("error", () => {
    // the watchdog is gone: nothing to tell it
  });
  const tracked: number[] = [];
  return {
    track(pgid) {
      tracked.push(pgid);
      trackGroup(pgid);
      stdin.write(`${pgid}\n`);
    },
    release() {
      for (const g of tracked) liveGroups.delete(g);
      stdin.write("forget\n");
      stdin.end();
    },
  };
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;
function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Belt and braces with the watchdog: a normal exit kills the groups synchronously.
  process.once("exit", () => {
    for (const g of liveGroups) signalGroup(g, "SIGKILL");
  });
}

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // no such group (any more)
  }
}

/** SIGTERM to every process group (SIGCONT first: a stopped one would hold it), SIGKILL to what is left after `graceMs`. */
export async function killGroups(pgids: number[], graceMs = 5000): Promise<void> {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const alive = (g: number) => signalGroup(g, 0);
  for (const g of pgids) signalGroup(g, "SIGCONT");
  for (const g of pgids) signalGroup(g, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (pgids.some(alive) && Date.now() < deadline) await sleep(50);
  for (const g of pgids) signalGroup(g, "SIGKILL");
  // A leader that is our child stays a zombie (and its group "exists") until Node reaps it.
  const reaped = Date.now() + 2000;
  while (pgids.some(alive) && Date.now() < reaped) await sleep(20);
}
