// The pieces of a cold pull-through, each alone (issue 16): `npx tsx bench/pull-pieces.ts [--blob-mib N]`.
// What each costs on this machine, to know where a cold pull's time can go: reading the blob from
// a docker-registry with the service's HTTP client (undici), sha256 on the event-loop thread (where the
// verifier hashes), the cache write (the filesystem driver, and bare writes with and without
// fsync), and sending the bytes to curl in network-sized chunks or in 1 MiB batches.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { request } from "undici";
import { FilesystemDriver } from "../src/content/filesystem.js";
import { pushImage } from "../test/support/skopeo.js";
import { cachedLargeImage } from "./big-image.js";
import { measureCpuOf } from "./cpu.js";
import { say } from "./lifecycle.js";
import { startPeerRegistry } from "./peer.js";
import { fmt, table } from "./report.js";
import { curlGet } from "./transfer.js";

const { values } = parseArgs({ options: { "blob-mib": { type: "string", default: "512" }, cache: { type: "string" } } });
const MiB = 1 << 20;
const blobMiB = Number(values["blob-mib"]);
const size = blobMiB * MiB;
const CHUNK = 64 * 1024;
const chunk = Buffer.alloc(CHUNK, 0x5a);
const rows: string[][] = [];

async function row(label: string, work: () => Promise<number | void>): Promise<void> {
  const { value, pct, seconds } = await measureCpuOf({ self: { pid: process.pid } }, work);
  const bytes = typeof value === "number" ? value : size;
  rows.push([label, fmt(bytes / seconds / 1e6, 0), fmt(seconds * 1000, 0), fmt(pct.self!, 0)]);
  say(`${label}: ${fmt(bytes / seconds / 1e6, 0)} MB/s`);
}

function* chunks(): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += CHUNK) yield chunk;
}

/** The same chunks as a body for the driver (it reads AsyncIterables). */
async function* body(): AsyncGenerator<Buffer> {
  yield* chunks();
}

async function main(): Promise<void> {
  const image = await cachedLargeImage(values.cache ?? join(import.meta.dirname, ".cache"), blobMiB);
  const layer = image.manifests[0]!.layers[0]!;
  const upstream = await startPeerRegistry();
  const dir = mkdtempSync(join(tmpdir(), "artifact-pull-pieces-"));
  try {
    await pushImage(image, upstream, "bench/big", "latest");
    const url = `${upstream.url}/v2/bench/big/blobs/${layer.digest}`;
    for (let i = 0; i < 2; i++) {
      await row("upstream read alone (undici, body discarded)", async () => {
        const res = await request(url);
        let n = 0;
        for await (const c of res.body) n += (c as Buffer).length;
        return n;
      });
    }
    await row("sha256 on the event-loop thread, 64 KiB chunks", async () => {
      const h = createHash("sha256");
      for (const c of chunks()) h.update(c);
      h.digest();
    });
    const driver = new FilesystemDriver(join(dir, "blobs"));
    await driver.init();
    const digest = `sha256:${createHash("sha256")
      .update(Buffer.concat(Array.from({ length: size / CHUNK }, () => chunk)))
      .digest("hex")}`;
    await row("cache write: FilesystemDriver.write, verifiedBody (no hash), fsync-behind + fsync", async () => {
      await driver.write(digest, body(), size, { verifiedBody: true });
    });
    await driver.delete(digest);
    await row("cache write: FilesystemDriver.write, hashing (the upload path's cost)", async () => {
      await driver.write(digest, body(), size);
    });
    for (const sync of [false, true]) {
      await row(`bare writes, 1 MiB writev batches, ${sync ? "then fsync" : "no fsync"}`, async () => {
        const file = await open(join(dir, `bare-${sync}`), "w");
        let batch: Buffer[] = [];
        let at = 0;
        for (const c of chunks()) {
          batch.push(c);
          if (batch.length * CHUNK >= MiB) {
            await file.writev(batch, at);
            at += batch.length * CHUNK;
            batch = [];
          }
        }
        if (sync) await file.sync();
        await file.close();
      });
    }
    for (const batched of [false, true]) {
      const server = http.createServer((_req, res) => {
        res.writeHead(200, { "content-length": String(size) });
        void (async () => {
          let batch: Buffer[] = [];
          for (const c of chunks()) {
            batch.push(c);
            if (batched && batch.length * CHUNK < MiB) continue;
            res.cork();
            let room = true;
            for (const b of batch) room = res.write(b);
            res.uncork();
            batch = [];
            if (!room) await new Promise((resolve) => res.once("drain", resolve));
          }
          res.end();
        })();
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as { port: number }).port;
      await row(`relay to curl from memory, ${batched ? "1 MiB writev batches" : "one write per 64 KiB chunk"}`, async () => {
        const t = await curlGet(`http://127.0.0.1:${port}/`);
        if (t.bytes !== size) throw new Error(`curl got ${t.bytes} bytes`);
        return t.bytes;
      });
      server.close();
    }
  } finally {
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  process.stdout.write(`\n${table(["piece", "MB/s", "ms", "CPU of this process"], rows, "lrrr")}\n`);
  process.exit(0);
}

void main();
