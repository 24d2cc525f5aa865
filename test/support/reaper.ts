// Removes a temp dir when this process ends, however it ends. Vitest stops its fork workers with
// SIGTERM, where process "exit" handlers never run; a child shell that waits for its stdin pipe to
// close (which happens on any exit, even SIGKILL) does the removal instead.
import { spawn } from "node:child_process";

const REAPER = `trap '' INT TERM HUP; read -r _ || true; rm -rf -- "$0"`;

export function removeWhenProcessEnds(dir: string): void {
  const child = spawn("sh", ["-c", REAPER, dir], { stdio: ["pipe", "ignore", "ignore"], detached: true });
  // Neither the child nor its pipe may keep this process alive.
  child.unref();
  (child.stdin as unknown as { unref(): void }).unref();
}
