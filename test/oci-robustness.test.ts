// /v2/ under stress and failure: an upload resumed after a restart of the server, concurrent pushes
// of one tag and of one blob, a blob delete racing a manifest push, a client that dies mid-chunk, two replicas appending to one upload,
// a manifest whose blob is missing, garbage collection racing pushes (the digest lock protocol),
// what GC deletes and keeps (dry run, cascades, referrers), and upload expiry.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readdir, utimes } from "node:fs/promises";
import { request as httpRequest, type ClientRequest, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { Config } from "../src/config.js";
import { startServer, type RunningServer } from "../src/server.js";
import { GC_LOCK_ID } from "../src/store/gc.js";
import { catalogClients, unique } from "./support/clients.js";
import { ADMIN_BASIC, adminTokenFile } from "./support/credentials.js";
import { createScratchDatabase, type DatabaseKind, databaseKinds, postgresConfig, quietLog } from "./support/database.js";
import { expectOciError, makeImage, makeIndex, MT, pathOf, RegistryClient, sha256, withDigest } from "./support/registry-client.js";
import { startTestServer, testConfig, transports, type TestServer } from "./support/server.js";

const HOUR = 3_600_000;
const run = promisify(execFile);

/** A PATCH whose body is sent in two parts (by default halves), the second under the test's control. */
function slowPatch(baseUrl: string, path: string, body: Buffer, headers: Record<string, string> = {}, firstPart = Math.floor(body.length / 2)) {
  const url = new URL(baseUrl);
  let req!: ClientRequest;
  const answered = new Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }>((resolve, reject) => {
    req = httpRequest(
      { host: url.hostname, port: url.port, method: "PATCH", path, headers: { authorization: ADMIN_BASIC, "content-length": String(body.length), ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
  });
  answered.catch(() => undefined);
  const half = firstPart;
  if (half > 0) req.write(body.subarray(0, half));
  req.flushHeaders();
  return {
    answered,
    finish: () => {
      req.end(body.subarray(half));
      return answered;
    },
    kill: () => req.destroy(),
  };
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe.each(databaseKinds())("registry robustness on %s", (kind) => {
  let server: TestServer;
  let reg: RegistryClient;
  let hosted: string;
  let gc: ReturnType<typeof createClient<typeof GarbageCollectionService>>;
  const repo = () => `${hosted}/team/${unique("app").replace(/-/g, ".")}`;
  const exec = (query: ReturnType<typeof sql>) => server.database.db.execute(query);

  beforeAll(async () => {
    server = await startTestServer(kind);
    reg = new RegistryClient(server.httpUrl);
    const transport = transports["connect+json over HTTP/1.1"]!(server.httpUrl);
    gc = createClient(GarbageCollectionService, transport);
    hosted = unique("robust");
    await catalogClients(transport).registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  afterAll(() => server?.stop());

  /** Every blob row has its bytes in the content store: the invariant GC must never break. */
  async function expectNoRowWithoutBytes(): Promise<void> {
    const rows = await server.database.db.select({ digest: sql<string>`digest` }).from(sql`blobs`);
    for (const { digest } of rows) expect(await server.content.stat(digest), `bytes of ${digest}`).toBeDefined();
  }

  async function age(digests: string[], manifestsOf?: string): Promise<void> {
    for (const d of digests) await exec(sql`update blobs set push_time = now() - interval '2 hours' where digest = ${d}`);
    if (manifestsOf) {
      const [registry, namespace, ...rest] = manifestsOf.split("/");
      const image = await server.store.images.resolve(registry!, namespace!, rest.join("/"));
      await exec(sql`update manifests set push_time = now() - interval '2 hours' where repository_id = ${image!.repositoryId!}`);
    }
  }

  describe("concurrency", () => {
    it("many clients push one tag at once: all succeed and the tag points at one of their manifests", async () => {
      const name = repo();
      const images = Array.from({ length: 10 }, () => makeImage());
      await Promise.all(images.flatMap((image) => image.blobs.map((b) => reg.uploadBlob(name, b))));
      const answers = await Promise.all(images.map((image) => reg.putManifest(name, "race", image.bytes, image.mediaType)));
      expect(answers.map((a) => a.status)).toEqual(images.map(() => 201));
      const final = await reg.req("GET", `/v2/${name}/manifests/race`);
      const winner = final.headers.get("docker-content-digest");
      expect(images.map((i) => i.digest)).toContain(winner);
      expect(final.body.equals(images.find((i) => i.digest === winner)!.bytes)).toBe(true);
      expect((await reg.req("GET", `/v2/${name}/tags/list`)).json?.tags).toEqual(["race"]);
      const [registry, namespace, ...rest] = name.split("/");
      const image = await server.store.images.resolve(registry!, namespace!, rest.join("/"));
      const tags = await server.store.tags.list({ pageSize: 10, pageToken: "", orderBy: "name", query: "" }, { repositoryId: image!.repositoryId! });
      expect(tags.items.map((t) => [t.name, t.digest])).toEqual([["race", winner]]);
      for (const i of images) expect((await reg.req("HEAD", `/v2/${name}/manifests/${i.digest}`)).status).toBe(200);
    });

    it("ten clients push one blob at once: all succeed, it is stored once, nothing is left over", async () => {
      const name = repo();
      const bytes = randomBytes(256 * 1024);
      const digest = sha256(bytes);
      const answers = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          if (i % 2 === 0) return reg.req("POST", `/v2/${name}/blobs/uploads/?digest=${digest}`, { body: bytes });
          const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
          return reg.req("PUT", withDigest(pathOf(start.headers.get("location")), digest), { body: bytes });
        }),
      );
      expect(answers.map((a) => a.status)).toEqual(answers.map(() => 201));
      const rows = await server.database.db.execute(sql`select count(*)::int as n from blobs where digest = ${digest}`);
      expect(JSON.stringify(rows)).toMatch(/"n":1\b/);
      let stored = 0;
      for await (const blob of server.content.list()) if (blob.digest === digest) stored++;
      expect(stored).toBe(1);
      expect(await readdir(join(server.dataDir, "blobs", "tmp"))).toEqual([]);
      const image = await server.store.images.resolve(...(name.split("/") as [string, string, string]));
      const uploads = await server.database.db.execute(sql`select count(*)::int as n from uploads where repository_id = ${image!.repositoryId!}`);
      expect(JSON.stringify(uploads)).toMatch(/"n":0\b/);
      expect((await reg.req("GET", `/v2/${name}/blobs/${digest}`)).body.equals(bytes)).toBe(true);
    });

    it("a blob delete racing a push of a manifest that lists the blob: one of them loses, never a manifest without its blob", async () => {
      const outcomes = { pushed: 0, deleted: 0 };
      for (let i = 0; i < 20; i++) {
        const name = repo();
        const image = makeImage({ layerBytes: 2048 });
        for (const b of image.blobs) await reg.uploadBlob(name, b);
        const delay = i % 4;
        const [push, del] = await Promise.all([
          sleep(delay).then(() => reg.putManifest(name, "v1", image.bytes, image.mediaType)),
          sleep(3 - delay).then(() => reg.req("DELETE", `/v2/${name}/blobs/${sha256(image.layer)}`)),
        ]);
        if (push.status === 201) {
          outcomes.pushed++;
          expectOciError(del, 405, "UNSUPPORTED", new RegExp(image.digest));
          expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(image.layer)}`)).body.equals(image.layer)).toBe(true);
        } else {
          outcomes.deleted++;
          expect(del.status).toBe(202);
          expectOciError(push, 400, "MANIFEST_BLOB_UNKNOWN", new RegExp(sha256(image.layer)));
          expectOciError(await reg.req("GET", `/v2/${name}/manifests/v1`), 404, "MANIFEST_UNKNOWN");
        }
      }
      expect(outcomes.pushed + outcomes.deleted).toBe(20);
      console.log(`blob delete against manifest push on ${kind}: ${JSON.stringify(outcomes)}`);
    });
  });

  describe("interrupted uploads", () => {
    it("a client killed mid-PATCH leaves the session at its last offset; the upload continues", async () => {
      const name = repo();
      const blob = randomBytes(3 * 1024 * 1024);
      const first = blob.subarray(0, 1024 * 1024);
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      expect((await reg.req("PATCH", location, { body: first, headers: { "content-range": `0-${first.length - 1}` } })).status).toBe(202);

      const doomed = slowPatch(server.httpUrl, location, blob.subarray(first.length), { "content-range": `${first.length}-${blob.length - 1}` });
      await sleep(100);
      doomed.kill();
      await expect(doomed.answered).rejects.toThrow();

      // The server notices, rolls the bytes back, keeps the session where the client left it and
      // gives up the dead request's claim on it.
      await waitFor(async () => (await reg.req("GET", location)).headers.get("range") === `0-${first.length - 1}`, "the session to settle");
      const uploadId = location.split("/").pop()!;
      await waitFor(async () => (await server.content.uploadSize(uploadId)) === first.length, "the bytes to be rolled back");
      await waitFor(
        async () => JSON.stringify(await exec(sql`select writer from uploads where id = ${uploadId}`)).includes('"writer":null'),
        "the claim to go",
      );

      const rest = await reg.req("PATCH", location, { body: blob.subarray(first.length), headers: { "content-range": `${first.length}-${blob.length - 1}` } });
      expect(rest.status).toBe(202);
      const put = await reg.req("PUT", withDigest(location, sha256(blob)));
      expect(put.status).toBe(201);
      expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
    });

    it("a server that died between writing a chunk and recording it: the unrecorded tail is dropped, the upload continues", async () => {
      const name = repo();
      const blob = randomBytes(64 * 1024);
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      expect((await reg.req("PATCH", location, { body: blob.subarray(0, 1000), headers: { "content-range": "0-999" } })).status).toBe(202);
      // What a crash leaves: bytes in the content store that the database never recorded.
      const uploadId = location.split("/").pop()!;
      expect(await server.content.append(uploadId, 1000, Readable.from([randomBytes(500)]))).toBe(1500);

      const status = await reg.req("GET", location);
      expect([status.status, status.headers.get("range")]).toEqual([204, "0-999"]);
      const rest = await reg.req("PATCH", location, { body: blob.subarray(1000), headers: { "content-range": `1000-${blob.length - 1}` } });
      expect(rest.status, rest.body.toString()).toBe(202);
      expect(rest.headers.get("range")).toBe(`0-${blob.length - 1}`);
      expect((await reg.req("PUT", withDigest(location, sha256(blob)))).status).toBe(201);
      expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
    });

    it("an abandoned upload is removed by garbage collection once UPLOAD_TTL has passed", async () => {
      const name = repo();
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      const uploadId = location.split("/").pop()!;
      const doomed = slowPatch(server.httpUrl, location, randomBytes(512 * 1024));
      await sleep(50);
      doomed.kill();
      await waitFor(async () => (await reg.req("GET", location)).status === 204 && (await server.content.uploadSize(uploadId)) === 0, "the session to settle");

      // Not yet expired: GC keeps it.
      await gc.runGarbageCollection({});
      expect((await reg.req("GET", location)).status).toBe(204);

      await exec(sql`update uploads set update_time = now() - interval '2 hours' where id = ${uploadId}`);
      const report = await gc.runGarbageCollection({});
      expect(Number(report.uploadsExpired)).toBeGreaterThanOrEqual(1);
      expectOciError(await reg.req("GET", location), 404, "BLOB_UPLOAD_UNKNOWN");
      expect(await server.content.uploadSize(uploadId)).toBeUndefined();
    });

    it("upload bytes whose session row is gone are removed once they are older than UPLOAD_TTL", async () => {
      const name = repo();
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      await reg.req("PATCH", location, { body: "orphaned bytes" });
      const uploadId = location.split("/").pop()!;
      await exec(sql`delete from uploads where id = ${uploadId}`);
      await gc.runGarbageCollection({});
      expect(await server.content.uploadSize(uploadId), "young orphan kept").toBe("orphaned bytes".length);
      const old = new Date(Date.now() - 2 * HOUR);
      await utimes(join(server.dataDir, "blobs", "uploads", uploadId), old, old);
      await gc.runGarbageCollection({});
      expect(await server.content.uploadSize(uploadId)).toBeUndefined();
    });
  });

  describe("manifests and missing content", () => {
    it("refuses a manifest whose blob is missing, was deleted, or only another repository holds", async () => {
      const name = repo();
      const other = repo();
      const image = makeImage();
      for (const b of image.blobs) await reg.uploadBlob(other, b);
      expectOciError(await reg.putManifest(name, "v1", image.bytes, image.mediaType), 400, "MANIFEST_BLOB_UNKNOWN");
      for (const b of image.blobs) await reg.uploadBlob(name, b);
      await reg.req("DELETE", `/v2/${name}/blobs/${sha256(image.layer)}`);
      expectOciError(await reg.putManifest(name, "v1", image.bytes, image.mediaType), 400, "MANIFEST_BLOB_UNKNOWN", new RegExp(sha256(image.layer)));
      expect((await reg.req("GET", `/v2/${name}/tags/list`)).json?.tags).toEqual([]);
    });
  });

  describe("garbage collection", () => {
    it("runs one collection at a time across replicas: while another holds the lock, a run is refused as ABORTED", async () => {
      // The lock the collector of every replica takes; held here as another replica would hold it
      // (on PostgreSQL a session advisory lock on a connection of its own).
      const refused = await server.database.exclusively(GC_LOCK_ID, () =>
        gc.runGarbageCollection({}).then(
          () => undefined,
          (err: unknown) => err,
        ),
      );
      expect(refused.ran).toBe(true);
      const error = (refused as { value: unknown }).value;
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Aborted);
      expect((error as ConnectError).rawMessage).toMatch(/already running/);
      // Let go, and the next run goes ahead.
      expect((await gc.runGarbageCollection({})).dryRun).toBe(false);
    });

    it("racing pushes: either the push wins and its blobs stay, or GC wins and the push fails; never a row without bytes", async () => {
      const outcomes = { pushed: 0, collected: 0 };
      for (let i = 0; i < 25; i++) {
        const name = repo();
        const image = makeImage({ layerBytes: 2048 });
        for (const b of image.blobs) await reg.uploadBlob(name, b);
        await age(image.blobs.map(sha256));
        const delay = i % 5;
        const [push] = await Promise.all([
          sleep(delay).then(() => reg.putManifest(name, "v1", image.bytes, image.mediaType)),
          sleep(4 - delay).then(() => gc.runGarbageCollection({})),
        ]);
        if (push.status === 201) {
          outcomes.pushed++;
          for (const b of image.blobs) {
            expect(await server.content.stat(sha256(b)), "a pushed manifest's blob has bytes").toBeDefined();
            expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(b)}`)).body.equals(b)).toBe(true);
          }
          // Once referenced, later collections keep them.
          await gc.runGarbageCollection({});
          for (const b of image.blobs) expect((await reg.req("HEAD", `/v2/${name}/blobs/${sha256(b)}`)).status).toBe(200);
        } else {
          outcomes.collected++;
          expectOciError(push, 400, "MANIFEST_BLOB_UNKNOWN");
          const missing = /sha256:[a-f0-9]{64}/.exec(push.json?.errors?.[0]?.message ?? "")![0];
          expect((await reg.req("HEAD", `/v2/${name}/blobs/${missing}`)).status).toBe(404);
          expect(await server.content.stat(missing)).toBeUndefined();
        }
        await expectNoRowWithoutBytes();
      }
      expect(outcomes.pushed + outcomes.collected).toBe(25);
      console.log(`gc race on ${kind}: ${JSON.stringify(outcomes)}`);
    });

    it("a dry run reports what would go and deletes nothing", async () => {
      const name = repo();
      const image = await reg.pushImage(name, "v1");
      await reg.req("DELETE", `/v2/${name}/manifests/v1`);
      await age(image.blobs.map(sha256), name);
      const report = await gc.runGarbageCollection({ dryRun: true });
      expect(report.dryRun).toBe(true);
      expect(Number(report.manifestsDeleted)).toBeGreaterThanOrEqual(1);
      expect(Number(report.blobsDeleted)).toBeGreaterThanOrEqual(2);
      expect(Number(report.bytesFreed)).toBeGreaterThanOrEqual(image.config.length + image.layer.length);
      expect(report.sampleDigests).toEqual(expect.arrayContaining([image.digest, ...image.blobs.map(sha256)]));
      expect((await reg.req("GET", `/v2/${name}/manifests/${image.digest}`)).status).toBe(200);
      for (const b of image.blobs) expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(b)}`)).body.equals(b)).toBe(true);

      // The CLI asks the same service.
      const cli = await run("npx", ["tsx", "src/cli/gc.ts", "--dry-run", "--json", "--url", server.httpUrl, "--token-file", adminTokenFile()], {
        encoding: "utf8",
      });
      const printed = JSON.parse(cli.stdout) as { dryRun: boolean; sampleDigests: string[] };
      expect(printed.dryRun).toBe(true);
      expect(printed.sampleDigests).toContain(image.digest);
      expect((await reg.req("GET", `/v2/${name}/manifests/${image.digest}`)).status).toBe(200);
    });

    it("deletes untagged manifests, index children after their index, referrers after their subject, then their blobs; keeps what is live", async () => {
      const name = repo();
      const push = async (reference: string, options?: Parameters<typeof makeImage>[0]) => {
        const image = makeImage(options);
        for (const b of image.blobs) await reg.uploadBlob(name, b);
        expect((await reg.putManifest(name, reference, image.bytes, image.mediaType)).status).toBe(201);
        return image;
      };
      const live = await push("keep");
      const liveReferrer = await push("tmp-r1", { subject: live.descriptor, artifactType: "application/vnd.example.sig" });
      const untagged = await push("tmp-b");
      const child1 = await push("tmp-c1");
      const child2 = await push("tmp-c2");
      const index = makeIndex([child1.descriptor, child2.descriptor]);
      await reg.putManifest(name, "tmp-i", index.bytes, MT.ociIndex);
      const subject = await push("tmp-s");
      const orphanReferrer = await push("tmp-r2", { subject: subject.descriptor, artifactType: "application/vnd.example.sbom" });
      const tagChild = await push("tmp-tc");
      const tagIndex = makeIndex([tagChild.descriptor]);
      await reg.putManifest(name, "index", tagIndex.bytes, MT.ociIndex);
      for (const tag of ["tmp-r1", "tmp-b", "tmp-c1", "tmp-c2", "tmp-i", "tmp-s", "tmp-r2", "tmp-tc"]) {
        expect((await reg.req("DELETE", `/v2/${name}/manifests/${tag}`)).status).toBe(202);
      }
      const all = [live, liveReferrer, untagged, child1, child2, subject, orphanReferrer, tagChild];
      await age(
        all.flatMap((i) => i.blobs.map(sha256)),
        name,
      );

      const report = await gc.runGarbageCollection({});
      expect(Number(report.manifestsDeleted)).toBeGreaterThanOrEqual(6);
      const status = async (digest: string) => (await reg.req("HEAD", `/v2/${name}/manifests/${digest}`)).status;
      for (const gone of [untagged.digest, index.digest, child1.digest, child2.digest, subject.digest, orphanReferrer.digest]) {
        expect(await status(gone), `collected ${gone}`).toBe(404);
      }
      for (const kept of [live.digest, liveReferrer.digest, tagIndex.digest, tagChild.digest]) {
        expect(await status(kept), `kept ${kept}`).toBe(200);
      }
      for (const image of [untagged, child1, child2, subject, orphanReferrer]) {
        for (const b of image.blobs) {
          expect((await reg.req("HEAD", `/v2/${name}/blobs/${sha256(b)}`)).status).toBe(404);
          expect(await server.content.stat(sha256(b))).toBeUndefined();
        }
      }
      for (const image of [live, liveReferrer, tagChild]) {
        for (const b of image.blobs) expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(b)}`)).body.equals(b)).toBe(true);
      }
      const referrers = await reg.req("GET", `/v2/${name}/referrers/${live.digest}`);
      expect(referrers.json?.manifests?.map((d) => d.digest)).toEqual([liveReferrer.digest]);
      await expectNoRowWithoutBytes();
    });

    it("leaves young content alone, whatever references it", async () => {
      const name = repo();
      const image = await reg.pushImage(name, "v1");
      await reg.req("DELETE", `/v2/${name}/manifests/v1`);
      await gc.runGarbageCollection({});
      expect((await reg.req("HEAD", `/v2/${name}/manifests/${image.digest}`)).status).toBe(200);
      for (const b of image.blobs) expect((await reg.req("HEAD", `/v2/${name}/blobs/${sha256(b)}`)).status).toBe(200);
    });
  });
});

/** A server whose database and DATA_DIR outlive it, so it can be stopped and started again. */
async function durableServer(kind: DatabaseKind): Promise<{ config: Config; start(): Promise<RunningServer>; destroy(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "artifact-durable-"));
  const scratch = kind === "postgres" ? await createScratchDatabase() : undefined;
  const config = testConfig(dataDir, {
    database: scratch ? postgresConfig(scratch.url, 10) : { kind: "pglite", dataDir: join(dataDir, "pglite") },
  });
  return {
    config,
    start: () => startServer(config, quietLog),
    async destroy() {
      await scratch?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

describe.each(databaseKinds())("uploads across restarts and replicas on %s", (kind) => {
  it("resumes a chunked upload after the server restarts: the session from the database, the bytes from disk", { timeout: 120_000 }, async () => {
    const durable = await durableServer(kind);
    let server: RunningServer | undefined;
    try {
      server = await durable.start();
      let reg = new RegistryClient(`http://127.0.0.1:${server.http.port}`);
      const registry = unique("durable");
      await catalogClients(transports["connect+json over HTTP/1.1"]!(`http://127.0.0.1:${server.http.port}`)).registries.createRegistry({
        registry: { name: registry, kind: RegistryKind.HOSTED },
      });
      const name = `${registry}/team/app`;
      const blob = randomBytes(2 * 1024 * 1024 + 17);
      const cut = 1024 * 1024;
      const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));
      expect((await reg.req("PATCH", location, { body: blob.subarray(0, cut), headers: { "content-range": `0-${cut - 1}` } })).status).toBe(202);

      await server.close();
      server = await durable.start();
      reg = new RegistryClient(`http://127.0.0.1:${server.http.port}`);

      const status = await reg.req("GET", location);
      expect(status.status).toBe(204);
      expect(status.headers.get("range")).toBe(`0-${cut - 1}`);
      const rest = await reg.req("PATCH", location, { body: blob.subarray(cut), headers: { "content-range": `${cut}-${blob.length - 1}` } });
      expect(rest.status).toBe(202);
      expect(rest.headers.get("range")).toBe(`0-${blob.length - 1}`);
      expect((await reg.req("PUT", withDigest(location, sha256(blob)))).status).toBe(201);
      expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
    } finally {
      await server?.close();
      await durable.destroy();
    }
  });

  it.runIf(kind === "postgres")("two replicas appending to one upload at once: one writes, the other gets 416, the blob is intact", async () => {
    const durable = await durableServer(kind);
    const replicas: RunningServer[] = [];
    try {
      replicas.push(await durable.start(), await durable.start());
      const [a, b] = replicas.map((r) => new RegistryClient(`http://127.0.0.1:${r.http.port}`)) as [RegistryClient, RegistryClient];
      const registry = unique("replicas");
      await catalogClients(transports["connect+json over HTTP/1.1"]!(a.baseUrl)).registries.createRegistry({
        registry: { name: registry, kind: RegistryKind.HOSTED },
      });
      const name = `${registry}/team/app`;
      const blob = randomBytes(1024 * 1024);
      const start = await a.req("POST", `/v2/${name}/blobs/uploads/`);
      const location = pathOf(start.headers.get("location"));

      // The first writer has its headers in and no byte written yet: the file still holds 0 bytes,
      // so only the upload's lock (not the driver's size check) can keep the rival out.
      const slow = slowPatch(a.baseUrl, location, blob, { "content-range": `0-${blob.length - 1}` }, 0);
      await sleep(300);
      const rival = await b.req("PATCH", location, { body: randomBytes(blob.length), headers: { "content-range": `0-${blob.length - 1}` } });
      expect(rival.status).toBe(416);
      expect(rival.json?.errors?.[0]?.code).toBe("BLOB_UPLOAD_INVALID");
      const done = await slow.finish();
      expect(done.status).toBe(202);
      expect((await b.req("GET", location)).headers.get("range")).toBe(`0-${blob.length - 1}`);
      expect((await b.req("PUT", withDigest(location, sha256(blob)))).status).toBe(201);
      expect((await a.req("GET", `/v2/${name}/blobs/${sha256(blob)}`)).body.equals(blob)).toBe(true);
    } finally {
      for (const r of replicas) await r.close();
      await durable.destroy();
    }
  });
});
