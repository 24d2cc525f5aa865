// The log destination never throws and never hangs when its reader is gone (EPIPE): the service
// must stop on a signal even when whatever read its stdout has exited (test/main.test.ts runs the
// whole scenario with `head -n 3`).
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createLogger, StdoutLines } from "../src/log.js";

const dir = mkdtempSync(join(tmpdir(), "artifact-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("writes whole lines, then gives up on a pipe whose reader closed, without throwing", () => {
  const fifo = join(dir, "pipe");
  execFileSync("mkfifo", [fifo]);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, "w");
  const lines = new StdoutLines(writer);
  const log = createLogger("info", lines);
  log.info({ n: 1 }, "first");
  const buffer = Buffer.alloc(4096);
  const read = readSync(reader, buffer);
  expect(JSON.parse(buffer.subarray(0, read).toString())).toMatchObject({ msg: "first", n: 1, service: "artifact-service" });
  expect(lines.broken).toBe(false);

  closeSync(reader);
  for (let i = 0; i < 100; i++) log.info({ i }, "into a broken pipe");
  expect(lines.broken).toBe(true);
  closeSync(writer);
});

it("gives up on a descriptor that is not open (EBADF) instead of throwing", () => {
  const lines = new StdoutLines(987654);
  expect(() => lines.write('{"msg":"nowhere"}\n')).not.toThrow();
  expect(lines.broken).toBe(true);
});
