// A small tmpfs is a real full disk: the kernel answers ENOSPC, nothing is mocked. Mounting needs
// root (CI runs as root); suites that need it skip loudly without it.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FILLER = ".filler";
let mountable: string | undefined | null = null;

/** Why a tmpfs cannot be mounted here, or undefined when it can (tried once per process). */
function mountProblem(): string | undefined {
  if (mountable !== null) return mountable;
  const dir = mkdtempSync(join(tmpdir(), "tmpfs-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "pipe" });
    execFileSync("umount", [dir], { stdio: "pipe" });
    mountable = undefined;
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    mountable = stderr || (err instanceof Error ? err.message : String(err));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return mountable;
}

/** True when a tmpfs can be mounted; otherwise warns, naming the reason, and returns false. */
export function canMountTmpfs(suite: string): boolean {
  const problem = mountProblem();
  if (problem === undefined) return true;
  console.warn(`\n!!! ${suite}: SKIPPED, cannot mount a tmpfs (a real full disk needs root or CAP_SYS_ADMIN): ${problem}\n`);
  return false;
}

/** A tmpfs mounted on a directory: resize it, fill it, free it. */
export class Tmpfs {
  private constructor(readonly dir: string) {}

  /**
   * Mounts a tmpfs of `bytes` on `dir` (created when missing; what it held is hidden until
   * unmount). `inodes` caps the files and directories it can hold.
   */
  static mount(dir: string, bytes: number, inodes?: number): Tmpfs {
    mkdirSync(dir, { recursive: true });
    const options = [`size=${bytes}`, ...(inodes === undefined ? [] : [`nr_inodes=${inodes}`])].join(",");
    execFileSync("mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir], { stdio: "pipe" });
    unmountWhenProcessEnds(dir);
    return new Tmpfs(dir);
  }

  /** Bytes free for new data. */
  get freeBytes(): number {
    const s = statfsSync(this.dir);
    return s.bavail * s.bsize;
  }

  /** Inodes free for new files and directories. */
  get freeInodes(): number {
    return statfsSync(this.dir).ffree;
  }

  /** Grows (or shrinks) the file system in place; its files stay. */
  resize(bytes: number, inodes?: number): void {
    const options = ["remount", `size=${bytes}`, ...(inodes === undefined ? [] : [`nr_inodes=${inodes}`])].join(",");
    execFileSync("mount", ["-o", options, this.dir], { stdio: "pipe" });
  }

  /** Takes all free space but `leaveBytes` with a filler file (free() gives it back). */
  fill(leaveBytes = 0): void {
    const fd = openSync(join(this.dir, FILLER), "a");
    const chunk = Buffer.alloc(64 * 1024);
    try {
      for (let want = this.freeBytes - leaveBytes; want > 0; want = this.freeBytes - leaveBytes) {
        writeSync(fd, chunk, 0, Math.min(chunk.length, want));
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
    } finally {
      closeSync(fd);
    }
  }

  /** Takes all free inodes but `leave` with empty files (free() gives them back). */
  fillInodes(leave = 0): void {
    const dir = join(this.dir, `${FILLER}-inodes`);
    mkdirSync(dir, { recursive: true });
    try {
      for (let i = 0; this.freeInodes > leave; i++) closeSync(openSync(join(dir, String(i)), "w"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
    }
  }

  /** Removes what fill() and fillInodes() took. */
  free(): void {
    rmSync(join(this.dir, FILLER), { force: true });
    rmSync(join(this.dir, `${FILLER}-inodes`), { recursive: true, force: true });
  }

  unmount(): void {
    try {
      execFileSync("umount", [this.dir], { stdio: "pipe" });
    } catch {
      // Still busy (a process holds a file open): detach it now, the kernel frees it later.
      execFileSync("umount", ["-l", this.dir], { stdio: "pipe" });
    }
  }
}

/** Like removeWhenProcessEnds (reaper.ts): a test process that dies must not leave a mount behind. */
function unmountWhenProcessEnds(dir: string): void {
  const script = `trap '' INT TERM HUP; read -r _ || true; umount -l -- "$0" 2>/dev/null || true`;
  const child = spawn("sh", ["-c", script, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
}
