// Who writes an upload, and what a client that stops sending costs. One request at a time appends
// to an upload, holding a lease in the upload's row (not a database connection) while its body
// streams in; a second writer gets 416 with the offset. A body that delivers no byte for
// UPLOAD_IDLE_TIMEOUT_MS is cut (408, the connection closed) and its session resumes from the
// recorded offset. A thousand stalled uploads do not starve other clients, on PostgreSQL with a
// pool of 4 connections either. A writer whose process dies mid-chunk keeps the upload only until
// its lease runs out.
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { and, eq, inArray, isNotNull, sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { Config } from "../src/config.js";
import { FilesystemDriver } from "../src/content/filesystem.js";
import type { Database } from "../src/db/database.js";
import { uploads } from "../src/db/schema.js";
import { packageRoot } from "../src/paths.js";
import { startServer, type RunningServer } from "../src/server.js";
import { BlobStore } from "../src/store/blobs.js";
import { catalogClients, unique, type Clients } from "./support/clients.js";
import { ADMIN_BASIC } from "./support/credentials.js";
import { createScratchDatabase, type DatabaseKind, databaseKinds, openTestDatabase, postgresConfig, quietLog } from "./support/database.js";
import type { DyingWriterJob } from "./support/dying-writer.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { expectOciError, pathOf, RegistryClient, sha256, withDigest } from "./support/registry-client.js";
import { pullImage, pushImage } from "./support/skopeo.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";

/** UPLOAD_IDLE_TIMEOUT_MS of the replica that cuts stalled bodies. */
const IDLE_MS = 1000;
/** Stalled uploads held open at once in the starvation test. */
const STALLED = 1000;
const haveSkopeo = havePeers("test/oci-upload-writers.test.ts (skopeo part of the starvation test)", "skopeo");

interface Answered {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A request on a connection of its own whose head and `first` bytes go now, and the rest of the
 * body only when the test says so: a client that stalls. `closed` resolves when the connection is.
 */
function stalledRequest(baseUrl: string, method: string, path: string, headers: Record<string, string>, first: Buffer) {
  const url = new URL(baseUrl);
  const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers: { authorization: ADMIN_BASIC, ...headers }, agent: false });
  const closed = new Promise<void>((resolve) => req.once("socket", (socket) => socket.once("close", () => resolve())));
  const answered = new Promise<Answered>((resolve, reject) => {
    req.once("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.once("error", reject);
  });
  answered.catch(() => undefined);
  req.on("error", () => undefined);
  req.flushHeaders();
  if (first.length > 0) req.write(first);
  return {
    answered,
    closed,
    finish: (rest: Buffer) => {
      req.end(rest);
      return answered;
    },
    kill: () => req.destroy(),
  };
}

/** A chunk's headers: its Content-Range within the upload and its length. */
const chunk = (start: number, length: number) => ({ "content-range": `${start}-${start + length - 1}`, "content-length": String(length) });

/** The writer holding each upload's lease (null: none). */
async function writers(db: Database, uploadIds: string[]): Promise<Map<string, string | null>> {
  const rows = await db.select({ id: uploads.id, writer: uploads.writer }).from(uploads).where(inArray(uploads.id, uploadIds));
  return new Map(rows.map((r) => [r.id, r.writer]));
}

async function leased(db: Database, uploadIds: string[]): Promise<number> {
  const [row] = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(uploads)
    .where(and(inArray(uploads.id, uploadIds), isNotNull(uploads.writer)));
  return Number(row?.n ?? 0);
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Runs `work` over `items`, at most `width` at a time. */
async function inParallel<T, R>(items: T[], width: number, work: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!, i);
      }
    }),
  );
  return results;
}

const uploadIdOf = (location: string) => location.split("?")[0]!.split("/").pop()!;

describe.each(databaseKinds())("upload writers on %s", (kind) => {
  // Two replicas on one database and one content store: `server` with the default idle timeout
  // (a minute), `quick` cutting bodies that go silent for IDLE_MS. PostgreSQL gets a pool of 4.
  let server: TestServer;
  let quick: RunningServer;
  let reg: RegistryClient;
  let quickReg: RegistryClient;
  let quickUrl: string;
  let catalog: Clients;
  let gc: ReturnType<typeof createClient<typeof GarbageCollectionService>>;
  let hosted: string;
  const repo = () => `${hosted}/team/${unique("app").replace(/-/g, ".")}`;

  beforeAll(async () => {
    const database = await openTestDatabase(kind, { poolMax: 4 });
    server = await startTestServer(kind, { database });
    const base = testConfig(server.dataDir);
    quick = await startServer(testConfig(server.dataDir, { registry: { ...base.registry, uploadIdleTimeoutMs: IDLE_MS } }), quietLog, { database });
    reg = new RegistryClient(server.httpUrl);
    quickUrl = `http://127.0.0.1:${quick.http.port}`;
    quickReg = new RegistryClient(quickUrl);
    const transport = transports["connect+json over HTTP/1.1"]!(server.httpUrl);
    catalog = catalogClients(transport);
    gc = createClient(GarbageCollectionService, transport);
    hosted = unique("writers");
    await catalog.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  afterAll(async () => {
    await quick?.close();
    await server?.stop();
  });

  /** A new session holding `recorded` bytes of `blob`; returns its path. */
  async function session(client: RegistryClient, name: string, blob: Buffer, recorded: number): Promise<string> {
    const start = await client.req("POST", `/v2/${name}/blobs/uploads/`);
    expect(start.status, start.body.toString()).toBe(202);
    const location = pathOf(start.headers.get("location"));
    if (recorded > 0) {
      const first = await client.req("PATCH", location, { body: blob.subarray(0, recorded), headers: { "content-range": `0-${recorded - 1}` } });
      expect(first.status, first.body.toString()).toBe(202);
    }
    return location;
  }

  /** Sends the rest of `blob` from where the session stands, closes it, and reads the blob back. */
  async function resume(client: RegistryClient, name: string, location: string, blob: Buffer): Promise<void> {
    const status = await client.req("GET", location);
    expect(status.status).toBe(204);
    const offset = Number(/^0-(\d+)$/.exec(status.headers.get("range") ?? "")![1]) + 1;
    const rest = await client.req("PATCH", location, { body: blob.subarray(offset), headers: { "content-range": `${offset}-${blob.length - 1}` } });
    expect(rest.status, rest.body.toString()).toBe(202);
    const put = await client.req("PUT", withDigest(location, sha256(blob)));
    expect(put.status, put.body.toString()).toBe(201);
    expect((await client.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
  }

  it("a second writer while a chunk streams in gets 416 with the offset, a PUT too; the first chunk completes", async () => {
    const name = repo();
    const blob = randomBytes(256 * 1024);
    const location = await session(reg, name, blob, 1000);
    const uploadId = uploadIdOf(location);
    const rest = blob.subarray(1000);
    const first = stalledRequest(server.httpUrl, "PATCH", location, chunk(1000, rest.length), rest.subarray(0, 10));
    await waitFor(async () => (await writers(server.database.db, [uploadId])).get(uploadId) !== null, "the first writer's claim");

    const rival = await reg.req("PATCH", location, { body: randomBytes(rest.length), headers: { "content-range": `1000-${blob.length - 1}` } });
    expectOciError(rival, 416, "BLOB_UPLOAD_INVALID", /being written by another request/);
    expect(rival.headers.get("range")).toBe("0-999");
    expect(pathOf(rival.headers.get("location"))).toBe(location);
    // When to try again: by the time the writer's claim runs out (30 s) unless it renews it.
    const retryAfter = Number(rival.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    expect(rival.json?.errors?.[0]?.message).toContain(`claim runs out in ${retryAfter} s`);
    // Closing the upload must not race the chunk either.
    const close = await reg.req("PUT", withDigest(location, sha256(blob)));
    expectOciError(close, 416, "BLOB_UPLOAD_INVALID", /being written by another request/);
    expect(close.headers.get("range")).toBe("0-999");
    expect(Number(close.headers.get("retry-after"))).toBeGreaterThan(0);
    // An offset that is simply wrong says where to continue, not when.
    const early = await reg.req("PATCH", location, { body: randomBytes(10), headers: { "content-range": "0-9" } });
    expectOciError(early, 416, "BLOB_UPLOAD_INVALID");
    expect(early.headers.get("retry-after")).toBeNull();

    const done = await first.finish(rest.subarray(10));
    expect(done.status, done.body).toBe(202);
    expect(done.headers.range).toBe(`0-${blob.length - 1}`);
    expect((await writers(server.database.db, [uploadId])).get(uploadId)).toBeNull();
    const put = await reg.req("PUT", withDigest(location, sha256(blob)));
    expect(put.status, put.body.toString()).toBe(201);
    expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
  });

  it("a chunk that goes silent is cut after UPLOAD_IDLE_TIMEOUT_MS: 408 saying where the upload stands, connection closed; it resumes from there", async () => {
    const name = repo();
    const blob = randomBytes(64 * 1024);
    const location = await session(quickReg, name, blob, 1000);
    const uploadId = uploadIdOf(location);
    const stalled = stalledRequest(quickUrl, "PATCH", location, chunk(1000, blob.length - 1000), blob.subarray(1000, 1010));
    const answer = await stalled.answered;
    expect(answer.status, answer.body).toBe(408);
    expect((JSON.parse(answer.body) as { errors: { code: string; message: string }[] }).errors[0]).toMatchObject({
      code: "BLOB_UPLOAD_INVALID",
      message: expect.stringMatching(new RegExp(`no byte .* arrived for ${IDLE_MS} ms; the upload holds 1000 bytes`)) as unknown,
    });
    expect([answer.headers.range, answer.headers.connection]).toEqual(["0-999", "close"]);
    expect(pathOf(answer.headers.location ?? null)).toBe(location);
    await stalled.closed;

    // All or nothing: the ten bytes that came are gone, and so is the claim.
    expect(await quick.content.uploadSize(uploadId)).toBe(1000);
    expect((await writers(server.database.db, [uploadId])).get(uploadId)).toBeNull();
    await resume(quickReg, name, location, blob);
  });

  it("over HTTP/2 the stalled stream is reset with NO_ERROR after the 408; the connection goes on", async () => {
    const name = repo();
    const blob = randomBytes(32 * 1024);
    const location = await session(quickReg, name, blob, 500);
    const client = http2.connect(quickUrl);
    client.on("error", () => undefined);
    try {
      const stream = client.request(
        { ":method": "PATCH", ":path": location, authorization: ADMIN_BASIC, ...chunk(500, blob.length - 500) },
        { endStream: false },
      );
      stream.on("error", () => undefined);
      const closed = new Promise<number | undefined>((resolve) => stream.once("close", () => resolve(stream.rstCode)));
      stream.write(blob.subarray(500, 520));
      const [headers, body] = await new Promise<[http2.IncomingHttpHeaders, string]>((resolve) => {
        let text = "";
        let head: http2.IncomingHttpHeaders = {};
        stream.once("response", (h) => (head = h));
        stream.setEncoding("utf8");
        stream.on("data", (c: string) => (text += c));
        stream.once("end", () => resolve([head, text]));
      });
      expect(headers[":status"], body).toBe(408);
      expect(headers.range).toBe("0-499");
      expect(body).toContain("BLOB_UPLOAD_INVALID");
      expect(await closed).toBe(http2.constants.NGHTTP2_NO_ERROR);

      // Same connection, next request.
      const status = client.request({ ":method": "GET", ":path": location, authorization: ADMIN_BASIC });
      status.end();
      const statusHeaders = await new Promise<http2.IncomingHttpHeaders>((resolve) => status.once("response", resolve));
      status.resume();
      expect([statusHeaders[":status"], statusHeaders.range]).toEqual([204, "0-499"]);
    } finally {
      client.close();
    }
    await resume(quickReg, name, location, blob);
  });

  it("a closing PUT whose last chunk goes silent: 408, the session stays; a monolithic POST that goes silent: 408, nothing left behind", async () => {
    const name = repo();
    const blob = randomBytes(16 * 1024);
    const location = await session(quickReg, name, blob, 4096);
    const put = stalledRequest(quickUrl, "PUT", withDigest(location, sha256(blob)), chunk(4096, blob.length - 4096), blob.subarray(4096, 4100));
    const answer = await put.answered;
    expect([answer.status, answer.headers.range]).toEqual([408, "0-4095"]);
    await resume(quickReg, name, location, blob);

    const other = randomBytes(8 * 1024);
    const post = stalledRequest(
      quickUrl,
      "POST",
      `/v2/${name}/blobs/uploads/?digest=${sha256(other)}`,
      { "content-length": String(other.length) },
      other.subarray(0, 8),
    );
    const refused = await post.answered;
    expect(refused.status, refused.body).toBe(408);
    expect(refused.headers.location).toBeUndefined();
    const [registry, namespace, ...rest] = name.split("/");
    const image = await server.store.images.resolve(registry!, namespace!, rest.join("/"));
    const left = await server.database.db.select({ id: uploads.id }).from(uploads).where(eq(uploads.repositoryId, image!.repositoryId!));
    expect(left).toEqual([]);
    expectOciError(await quickReg.req("GET", `/v2/${name}/blobs/${sha256(other)}`), 404, "BLOB_UNKNOWN");
  });

  it("a writer whose lease is taken over stops at once; its chunk is dropped as a whole", async () => {
    const name = repo();
    const blob = randomBytes(8192);
    const location = await session(reg, name, blob, 1000);
    const uploadId = uploadIdOf(location);
    const [registry, namespace, ...rest] = name.split("/");
    const upload = await server.store.blobs.getUpload((await server.store.images.resolve(registry!, namespace!, rest.join("/")))!.repositoryId!, uploadId);
    // A writer with a short lease (renewed every 100 ms) whose body sends a little, then nothing.
    const store = new BlobStore(server.database.db, server.content, { writerLeaseMs: 600 });
    const body = new PassThrough();
    body.write(blob.subarray(1000, 1100));
    const appending = store.append(upload, 1000, body);
    appending.catch(() => undefined);
    await waitFor(async () => (await writers(server.database.db, [uploadId])).get(uploadId) !== null, "the claim");
    // Another replica took the upload over (as it may once a lease has run out).
    await server.database.db.update(uploads).set({ writer: randomUUID() }).where(eq(uploads.id, uploadId));
    await expect(appending).rejects.toMatchObject({ reason: "range-mismatch", message: expect.stringMatching(/taken over/) as unknown });
    expect(await server.content.uploadSize(uploadId)).toBe(1000);
    expect(body.destroyed).toBe(false);
    await server.database.db.update(uploads).set({ writer: null }).where(eq(uploads.id, uploadId));
    await resume(reg, name, location, blob);
  });

  it("garbage collection does not expire an upload under a live writer, however old its session", async () => {
    const name = repo();
    const blob = randomBytes(8192);
    const location = await session(reg, name, blob, 1000);
    const uploadId = uploadIdOf(location);
    const stalled = stalledRequest(server.httpUrl, "PATCH", location, chunk(1000, blob.length - 1000), blob.subarray(1000, 1010));
    await waitFor(async () => (await writers(server.database.db, [uploadId])).get(uploadId) !== null, "the claim");
    await server.database.db
      .update(uploads)
      .set({ updateTime: sql`now() - interval '2 days'` })
      .where(eq(uploads.id, uploadId));
    await gc.runGarbageCollection({});
    const done = await stalled.finish(blob.subarray(1010));
    expect(done.status, done.body).toBe(202);
    expect((await reg.req("PUT", withDigest(location, sha256(blob)))).status).toBe(201);
    expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
  });

  it(
    `${STALLED} stalled uploads starve no one: pushes, pulls and catalog calls go on; cut, each resumes from its recorded offset`,
    { timeout: 300_000 },
    async () => {
      const name = repo();
      const blobs = Array.from({ length: STALLED }, () => randomBytes(8192));
      const locations = await inParallel(blobs, 32, (blob) => session(reg, name, blob, 4096));
      const ids = locations.map(uploadIdOf);
      const stallAll = (baseUrl: string) =>
        locations.map((location, i) => stalledRequest(baseUrl, "PATCH", location, chunk(4096, 4096), blobs[i]!.subarray(4096, 4112)));

      // Every upload has a request appending to it, and none of them is sending.
      const stalled = stallAll(server.httpUrl);
      // Claims are one row update each; a thousand on PGlite take a while on a loaded machine.
      await waitFor(async () => (await leased(server.database.db, ids)) === STALLED, `${STALLED} claims`, 180_000);

      const other = repo();
      const image = await reg.pushImage(other, "v1");
      const work: Promise<unknown>[] = [
        (async () => {
          const pulled = await reg.req("GET", `/v2/${other}/manifests/v1`, { headers: { accept: image.mediaType } });
          expect(pulled.body.equals(image.bytes)).toBe(true);
          for (const b of image.blobs) expect((await reg.req("GET", `/v2/${other}/blobs/${sha256(b)}`)).body.equals(b)).toBe(true);
        })(),
        (async () => {
          const blob = randomBytes(300 * 1024);
          await resume(reg, other, await session(reg, other, blob, 100 * 1024), blob);
        })(),
        (async () => {
          const { registries } = await catalog.registries.listRegistries({});
          expect(registries.map((r) => r.name)).toContain(hosted);
          const tags = await catalog.tags.listTags({ query: "v1" });
          expect(tags.tags.length).toBeGreaterThan(0);
        })(),
      ];
      if (haveSkopeo) {
        work.push(
          (async () => {
            const small = await smallImage("writers");
            const endpoint = { host: `127.0.0.1:${server.http.port}` };
            const digest = await pushImage(small, endpoint, `${hosted}/team/skopeo`, "1.0");
            expect(digest).toBe(small.digest);
            const dir = mkdtempSync(join(tmpdir(), "artifact-writers-pull-"));
            try {
              expect((await pullImage(endpoint, `${hosted}/team/skopeo`, "1.0", { dir, transport: "oci" })).digest).toBe(small.digest);
            } finally {
              rmSync(dir, { recursive: true, force: true });
            }
          })(),
        );
      }
      await Promise.all(work);
      // Nothing above waited for them: they are all still there, stalled.
      expect(await leased(server.database.db, ids)).toBe(STALLED);

      // Clients that give up: every chunk is rolled back and every claim given up.
      for (const s of stalled) s.kill();
      await waitFor(async () => (await leased(server.database.db, ids)) === 0, "the claims of dead requests to go");

      // The replica with a short idle timeout cuts them itself, and each one resumes.
      const cut = stallAll(quickUrl);
      const answers = await Promise.all(cut.map((s) => s.answered));
      expect(new Set(answers.map((a) => `${a.status} ${a.headers.range}`))).toEqual(new Set(["408 0-4095"]));
      await Promise.all(cut.map((s) => s.closed));
      expect(await leased(server.database.db, ids)).toBe(0);
      await inParallel(locations, 32, (location, i) => resume(i % 2 === 0 ? reg : quickReg, name, location, blobs[i]!));
      expect(await writers(server.database.db, ids)).toEqual(new Map());
    },
  );
});

describe.each(databaseKinds())("a writer whose process dies mid-chunk on %s", (kind: DatabaseKind) => {
  it("keeps the upload until its lease runs out; then the client resumes from the recorded offset", { timeout: 180_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "artifact-dying-writer-"));
    const scratch = kind === "postgres" ? await createScratchDatabase() : undefined;
    const config: Config = testConfig(dataDir, {
      database: scratch ? postgresConfig(scratch.url, 4) : { kind: "pglite", dataDir: join(dataDir, "pglite") },
    });
    const blobsRoot = join(dataDir, "blobs");
    let server: RunningServer | undefined = await startServer(config, quietLog);
    let child: ReturnType<typeof spawn> | undefined;
    try {
      const url = `http://127.0.0.1:${server.http.port}`;
      const registry = unique("dying");
      await catalogClients(transports["connect+json over HTTP/1.1"]!(url)).registries.createRegistry({
        registry: { name: registry, kind: RegistryKind.HOSTED },
      });
      const name = `${registry}/team/app`;
      const blob = randomBytes(64 * 1024);
      let reg = new RegistryClient(url);
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      const uploadId = uploadIdOf(location);
      expect((await reg.req("PATCH", location, { body: blob.subarray(0, 1000), headers: { "content-range": "0-999" } })).status).toBe(202);
      const image = await server.store.images.resolve(registry, "team", "app");
      // PGlite belongs to one process: the service stops while the other replica runs.
      if (kind === "pglite") {
        await server.close();
        server = undefined;
      }

      const job: DyingWriterJob = { database: config.database, blobsRoot, repositoryId: image!.repositoryId!, uploadId, writerLeaseMs: 3000 };
      const writer = spawn(process.execPath, ["--import", "tsx", join(packageRoot, "test/support/dying-writer.ts"), JSON.stringify(job)], {
        stdio: ["pipe", "pipe", "pipe"],
      });
      child = writer;
      let output = "";
      writer.stdout.on("data", (d: Buffer) => (output += d.toString()));
      writer.stderr.on("data", (d: Buffer) => (output += d.toString()));
      writer.stdin.on("error", () => undefined);
      const exited = new Promise<void>((resolve) => writer.once("exit", () => resolve()));
      // More than the driver batches before writing, so the file holds an unrecorded tail; the
      // chunk never ends.
      writer.stdin.write(randomBytes(1024 * 1024 + 10));
      const content = new FilesystemDriver(blobsRoot);
      await waitFor(async () => ((await content.uploadSize(uploadId)) ?? 0) > 1000 || writer.exitCode !== null, "the dying writer's bytes");
      expect(writer.exitCode, output).toBeNull();
      writer.kill("SIGKILL");
      await exited;

      server ??= await startServer(config, quietLog);
      const db = server.database.db;
      reg = new RegistryClient(`http://127.0.0.1:${server.http.port}`);
      const [row] = await db
        .select({ writer: uploads.writer, live: sql<boolean>`${uploads.writerUntil} > now() + interval '1 second'`, size: uploads.sizeBytes })
        .from(uploads)
        .where(eq(uploads.id, uploadId));
      // The dead writer's claim is still there, and nothing of its chunk was recorded.
      expect(row!.writer).not.toBeNull();
      expect(row!.size).toBe(1000);
      expect(await content.uploadSize(uploadId)).toBeGreaterThan(1000);
      const rest = { body: blob.subarray(1000), headers: { "content-range": `1000-${blob.length - 1}` } };
      if (row!.live) expectOciError(await reg.req("PATCH", location, rest), 416, "BLOB_UPLOAD_INVALID");

      let answer = await reg.req("PATCH", location, rest);
      while (answer.status === 416) {
        await sleep(100);
        answer = await reg.req("PATCH", location, rest);
      }
      expect(answer.status, answer.body.toString()).toBe(202);
      expect(answer.headers.get("range")).toBe(`0-${blob.length - 1}`);
      expect((await reg.req("PUT", withDigest(location, sha256(blob)))).status).toBe(201);
      expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
    } finally {
      child?.kill("SIGKILL");
      await server?.close();
      await scratch?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
