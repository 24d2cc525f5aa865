// One process per embedded database: the lock beside it names its holder, a dead holder's lock
// is taken over at once on this host, and another host's lock only once it goes stale.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { lockDataDir } from "../src/db/data-dir-lock.js";
import { openPglite } from "../src/db/database.js";
import { isDomainError } from "../src/domain/errors.js";
import { quietLog } from "./support/database.js";

const root = mkdtempSync(join(tmpdir(), "artifact-lock-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = () => join(root, `db-${++n}`);

/** A pid that ran on this host and is gone. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]);
  return Number(child.stdout.toString());
}

describe("the embedded database's lock", () => {
  it("refuses a second holder, naming the directory and the holder; released, it can be taken again", () => {
    const d = dir();
    const first = lockDataDir(d);
    let refusal: unknown;
    try {
      lockDataDir(d);
    } catch (err) {
      refusal = err;
    }
    expect(isDomainError(refusal, "failed-precondition")).toBe(true);
    expect((refusal as Error).message).toContain(
      `the embedded database in ${d} is in use by another artifact-service process (pid ${process.pid} on ${hostname()}`,
    );
    expect((refusal as Error).message).toContain(`remove ${d}.lock`);
    first.release();
    expect(existsSync(`${d}.lock`)).toBe(false);
    lockDataDir(d).release();
  });

  it("takes over the lock of a process that is gone (a crashed worker's replacement)", () => {
    const d = dir();
    writeFileSync(`${d}.lock`, JSON.stringify({ pid: deadPid(), host: hostname(), since: "earlier" }));
    const lock = lockDataDir(d);
    expect(JSON.parse(readFileSync(`${d}.lock`, "utf8"))).toMatchObject({ pid: process.pid, host: hostname() });
    lock.release();
  });

  it("a pid of this host reused by another process is not the holder (its start time differs)", () => {
    const d = dir();
    writeFileSync(`${d}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), started: "1", since: "long ago" }));
    lockDataDir(d).release();
  });

  it("another host's lock holds while it is refreshed, and is taken over once it goes stale", () => {
    const d = dir();
    writeFileSync(`${d}.lock`, JSON.stringify({ pid: 1, host: "elsewhere.example", since: "now" }));
    expect(() => lockDataDir(d)).toThrow(/pid 1 on elsewhere\.example/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${d}.lock`, old, old);
    lockDataDir(d).release();
  });

  it("is taken by openPglite: a second open of the same directory fails before touching it", async () => {
    const d = dir();
    const db = await openPglite(d, quietLog);
    try {
      await expect(openPglite(d, quietLog)).rejects.toThrow(/is in use by another artifact-service process/);
      // The first one is unharmed.
      await expect(db.ping()).resolves.toBeUndefined();
    } finally {
      await db.close();
    }
    const again = await openPglite(d, quietLog);
    await again.close();
  });
});
