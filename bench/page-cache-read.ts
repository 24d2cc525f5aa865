// How fast a file just written reads back from the page cache, with and without the writer
// allocating memory while it wrote (bench/README.md, "Issue 16, December 2, second sitting").
// On this virtual machine the kernel's copy out of the page cache runs several times faster into
// and out of memory a process has been churning through than out of pages it has not: the warm
// `/v2/` read after a cold pull-through showed it, and this shows it with nothing of the service.
//
//   npx tsx bench/page-cache-read.ts [--mib 512] [--chunk-kib 1024] [--seconds 4]

import { mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { mib: { type: "string", default: "512" }, "chunk-kib": { type: "string", default: "1024" }, seconds: { type: "string", default: "4" } },
});
const size = Number(values.mib) << 20;
const chunk = Number(values["chunk-kib"]) << 10;
const seconds = Number(values.seconds);
const PIECE = 1 << 20;

/** Writes `size` bytes and fsyncs; with `churn`, 64 KiB buffers are allocated and dropped as it goes (as undici's chunks are). */
async function write(path: string, churn: boolean): Promise<void> {
  const file = await open(path, "w");
  const fixed = Buffer.alloc(PIECE, 3);
  let recent: Buffer[] = [];
  try {
    for (let position = 0; position < size; position += PIECE) {
      let piece = fixed;
      if (churn) {
        for (let i = 0; i < 16; i++) recent.push(Buffer.alloc(64 << 10, 3));
        piece = Buffer.concat(recent.slice(-16));
        if (recent.length > 256) recent = [];
      }
      await file.write(piece, 0, PIECE, position);
    }
    await file.sync();
  } finally {
    await file.close();
  }
}

/** Reads the file through two buffers used in turn, as the service's warm blob read does. */
async function read(path: string): Promise<{ mbps: number; kernelMs: number }> {
  const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  const file = await open(path, "r");
  const cpu = process.cpuUsage();
  const started = performance.now();
  try {
    for (let position = 0, turn = 0; position < size; turn++) {
      const { bytesRead } = await file.read(buffers[turn % 2]!, 0, Math.min(chunk, size - position), position);
      if (bytesRead === 0) throw new Error(`${path} ended at ${position}`);
      position += bytesRead;
    }
  } finally {
    await file.close();
  }
  const elapsed = (performance.now() - started) / 1000;
  return { mbps: size / 1e6 / elapsed, kernelMs: process.cpuUsage(cpu).system / 1000 };
}

const dir = mkdtempSync(join(tmpdir(), "page-cache-read-"));
try {
  for (const churn of [false, true]) {
    const path = join(dir, churn ? "churned" : "quiet");
    await write(path, churn);
    const readings: string[] = [];
    const until = performance.now() + seconds * 1000;
    while (performance.now() < until) {
      const { mbps, kernelMs } = await read(path);
      readings.push(`${mbps.toFixed(0)} MB/s (${kernelMs.toFixed(0)} ms kernel)`);
    }
    console.log(`written ${churn ? "while allocating 64 KiB buffers" : "allocating nothing"}, read in ${chunk >> 10} KiB pieces: ${readings.join(", ")}`);
    rmSync(path);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
