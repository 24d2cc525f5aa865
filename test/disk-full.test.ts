// A full content store, for real: DATA_DIR/blobs on a small tmpfs. Pushes that do not fit answer
// 507 with an OCI body that says the storage is full (never a 500), leave nothing partial, log
// one line naming the path, and go through once space is freed (the same session resumes, or a
// new one succeeds); committed blobs stay intact. The pull-through proxy keeps serving pulls
// from its upstream, verified, while its cache cannot be written.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { createLogger } from "../src/log.js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { FilesystemDriver } from "../src/content/index.js";
import { openPostgres } from "../src/db/database.js";
import { uploads } from "../src/db/schema.js";
import { catalogClients, unique } from "./support/clients.js";
import { databaseKinds, postgresConfig, quietLog } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { findPostgresBin, startThrowawayPostgres, type ThrowawayPostgres } from "./support/postgres.js";
import { expectOciError, pathOf, RegistryClient, sha256, withDigest, type Answer } from "./support/registry-client.js";
import { dockerRef, pullImage, pushImage, skopeoCopy } from "./support/skopeo.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";
import { canMountTmpfs, Tmpfs } from "./support/tmpfs.js";

const MiB = 1024 * 1024;
const FULL = /^the content store is full \(no space left on the device holding DATA_DIR\/blobs\): free space or raise the quota, then retry the upload$/;
const mountable = canMountTmpfs("test/disk-full.test.ts");

type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A server whose content store is a tmpfs, and a record of everything it logs. */
async function startOnTmpfs(kind: Parameters<typeof startTestServer>[0], bytes: number) {
  const logs: LogLine[] = [];
  // Debug: a successful pull's "registry request" line says its request is done (see requestDone).
  const log = createLogger("debug", { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const server = await startTestServer(kind, { log });
  const disk = Tmpfs.mount(join(server.dataDir, "blobs"), bytes, 512);
  // The tmpfs hides the directories the driver made at start-up.
  await (server.content as FilesystemDriver).init();
  return { server, disk, logs };
}

/** Warnings logged since `from` (an index into the log). */
const warningsSince = (logs: LogLine[], from: number) => logs.slice(from).filter((l) => l.level === 40);

/**
 * Waits for the request's "registry request" line, logged once the handler is done: a pull-through
 * answer is complete before the cache write behind it has finished (and logged).
 */
async function requestDone(logs: LogLine[], res: Answer): Promise<void> {
  const id = res.headers.get("x-request-id");
  while (!logs.some((l) => l.msg === "registry request" && l.requestId === id)) await new Promise((r) => setTimeout(r, 10));
}

describe.skipIf(!mountable).each(databaseKinds())("pushing into a full content store on %s", (kind) => {
  let server: TestServer;
  let disk: Tmpfs;
  let logs: LogLine[];
  let reg: RegistryClient;
  let hosted: string;
  const repo = () => `${hosted}/team/${unique("app").replace(/-/g, ".")}`;

  beforeAll(async () => {
    ({ server, disk, logs } = await startOnTmpfs(kind, 8 * MiB));
    reg = new RegistryClient(server.httpUrl);
    hosted = unique("hosted");
    const c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    await c.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  beforeEach(() => disk?.free());
  afterAll(async () => {
    disk?.unmount();
    await server?.stop();
  });

  /** 507 UNKNOWN saying the store is full, without the machine's paths; one warning with the path. */
  function expectStorageFull(res: Answer, logFrom: number, file: RegExp): void {
    expectOciError(res, 507, "UNKNOWN", FULL);
    expect(res.body.toString()).not.toContain(server.dataDir);
    const warnings = warningsSince(logs, logFrom);
    expect(warnings, JSON.stringify(warnings)).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: res.json!.errors![0]!.message, requestId: res.headers.get("x-request-id"), code: "ENOSPC" });
    expect(warnings[0]!.path).toMatch(file);
    expect(warnings[0]!.path as string).toContain(server.dataDir);
  }

  /** Every upload session has its bytes and every upload file its session; every stored blob its row. */
  async function expectConsistent(): Promise<void> {
    const sessions = (await server.database.db.select({ id: uploads.id }).from(uploads)).map((r) => r.id).sort();
    const files: string[] = [];
    for await (const u of server.content.listUploads()) files.push(u.uploadId);
    expect(files.sort()).toEqual(sessions);
    expect(readdirSync(join(server.dataDir, "blobs", "tmp"))).toEqual([]);
    const report = await server.store.gc.run({ dryRun: true, graceMs: 0, uploadTtlMs: 3_600_000 });
    expect({ orphans: report.orphansRemoved, uploads: report.uploadsExpired }).toEqual({ orphans: 0, uploads: 0 });
  }

  it("answers a chunk that does not fit with 507, keeps the session at its offset, and resumes it once space is freed", async () => {
    const name = repo();
    const bytes = randomBytes(4 * MiB);
    const first = 512 * 1024;
    const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
    expect(start.status).toBe(202);
    const session = pathOf(start.headers.get("location"));
    const patch = (from: number, to: number) =>
      reg.req("PATCH", session, {
        headers: { "content-type": "application/octet-stream", "content-range": `${from}-${to - 1}` },
        body: bytes.subarray(from, to),
      });
    expect((await patch(0, first)).status).toBe(202);

    disk.fill(MiB);
    const free = disk.freeBytes;
    const logFrom = logs.length;
    const refused = await patch(first, bytes.length);
    expect(refused.headers.get("connection")).toBe("close");
    expectStorageFull(refused, logFrom, /\/blobs\/uploads\/[0-9a-f-]{36}$/);
    // Nothing partial: the session, its file and the free space are as before the chunk.
    const status = await reg.req("GET", session);
    expect({ status: status.status, range: status.headers.get("range") }).toEqual({ status: 204, range: `0-${first - 1}` });
    const id = session.split("/").pop()!;
    expect(statSync(join(server.dataDir, "blobs", "uploads", id)).size).toBe(first);
    expect(disk.freeBytes).toBe(free);
    await expectConsistent();

    disk.free();
    const resumed = await patch(first, bytes.length);
    expect({ status: resumed.status, range: resumed.headers.get("range") }).toEqual({ status: 202, range: `0-${bytes.length - 1}` });
    expect((await reg.req("PUT", withDigest(session, sha256(bytes)))).status).toBe(201);
    expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
    await expectConsistent();
  });

  it("leaves no session behind when a monolithic push does not fit, keeps committed blobs intact, and takes the retry", async () => {
    const name = repo();
    const kept = await reg.uploadBlob(name, randomBytes(64 * 1024));
    const keptBytes = (await reg.req("GET", `/v2/${name}/blobs/${kept}`)).body;
    const bytes = randomBytes(2 * MiB);
    disk.fill(256 * 1024);
    const logFrom = logs.length;
    const refused = await reg.req("POST", `/v2/${name}/blobs/uploads/?digest=${sha256(bytes)}`, {
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expectStorageFull(refused, logFrom, /\/blobs\/uploads\/[0-9a-f-]{36}$/);
    expect((await reg.req("HEAD", `/v2/${name}/blobs/${sha256(bytes)}`)).status).toBe(404);
    await expectConsistent();
    const stillThere = await reg.req("GET", `/v2/${name}/blobs/${kept}`);
    expect(createHash("sha256").update(stillThere.body).digest("hex")).toBe(kept.slice(7));
    expect(stillThere.body.equals(keptBytes)).toBe(true);

    disk.free();
    const retried = await reg.req("POST", `/v2/${name}/blobs/uploads/?digest=${sha256(bytes)}`, {
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(retried.status).toBe(201);
    expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
    await expectConsistent();
  });

  it("with no inode left, refuses a new session and a commit with 507, keeps the finished upload, and commits it once space is freed", async () => {
    const name = repo();
    // Bytes whose shard directory does not exist yet: the commit has to create it.
    const shards = () => new Set(readdirSync(join(server.dataDir, "blobs", "sha256")));
    let bytes = randomBytes(100_000);
    while (shards().has(sha256(bytes).slice(7, 9))) bytes = randomBytes(100_000);
    const start = await reg.req("POST", `/v2/${name}/blobs/uploads/`);
    const session = pathOf(start.headers.get("location"));
    expect((await reg.req("PATCH", session, { headers: { "content-type": "application/octet-stream" }, body: bytes })).status).toBe(202);
    disk.fillInodes();

    let logFrom = logs.length;
    expectStorageFull(await reg.req("POST", `/v2/${name}/blobs/uploads/`), logFrom, /\/blobs\/uploads\/[0-9a-f-]{36}$/);
    logFrom = logs.length;
    expectStorageFull(await reg.req("PUT", withDigest(session, sha256(bytes))), logFrom, new RegExp(`/blobs/sha256/${sha256(bytes).slice(7, 9)}$`));
    const status = await reg.req("GET", session);
    expect({ status: status.status, range: status.headers.get("range") }).toEqual({ status: 204, range: `0-${bytes.length - 1}` });
    await expectConsistent();

    disk.free();
    expect((await reg.req("PUT", withDigest(session, sha256(bytes)))).status).toBe(201);
    expect((await reg.req("GET", `/v2/${name}/blobs/${sha256(bytes)}`)).body.equals(bytes)).toBe(true);
    await expectConsistent();
  });
});

const peers = mountable && havePeers("test/disk-full.test.ts", "skopeo", "docker-registry");

describe.skipIf(!peers).each(databaseKinds())("skopeo and the pull-through proxy with a full content store on %s", (kind) => {
  let server: TestServer;
  let disk: Tmpfs;
  let logs: LogLine[];
  let upstream: Distribution;
  let image: BuiltImage;
  let pushed: BuiltImage;
  let reg: RegistryClient;
  let mirror: string;
  let hosted: string;

  beforeAll(async () => {
    [upstream, image, pushed] = await Promise.all([startDistribution(), smallImage("disk-full"), smallImage("disk-full-push")]);
    ({ server, disk, logs } = await startOnTmpfs(kind, 8 * MiB));
    await pushImage(image, upstream, "team/app", "1.0");
    reg = new RegistryClient(server.httpUrl);
    mirror = unique("mirror");
    hosted = unique("hosted");
    const c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    await c.registries.createRegistry({ registry: { name: mirror, kind: RegistryKind.REMOTE, url: upstream.url } });
    await c.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  beforeEach(() => disk?.free());
  afterAll(async () => {
    disk?.unmount();
    await server?.stop();
    await upstream?.stop();
  });

  const layer = () => image.manifests[0]!.layers[0]!;

  it("fails a skopeo push with 507 Insufficient Storage, and the same push succeeds once space is freed", async () => {
    const endpoint = { host: `127.0.0.1:${server.http.port}` };
    disk.fill();
    // containers/image reads the error bodies of 4xx answers only: the status line is what users see.
    await expect(skopeoCopy(pushed.ref, dockerRef(endpoint, `${hosted}/team/pushed`, "1.0"), { retryTimes: 0 })).rejects.toThrow("507 Insufficient Storage");
    disk.free();
    await pushImage(pushed, endpoint, `${hosted}/team/pushed`, "1.0");
    const layerOf = pushed.manifests[0]!.layers[0]!;
    expect(sha256((await reg.req("GET", `/v2/${hosted}/team/pushed/blobs/${layerOf.digest}`)).body)).toBe(layerOf.digest);
  });

  it("serves a blob from the upstream, verified, when the cache cannot be written, says so in the log, and caches it once there is room", async () => {
    const path = `/v2/${mirror}/team/app/blobs/${layer().digest}`;
    const sessions = () => server.database.db.select({ id: uploads.id }).from(uploads);
    const sessionsBefore = await sessions();
    disk.fill();
    let logFrom = logs.length;
    const pulled = await reg.req("GET", path);
    await requestDone(logs, pulled);
    expect(pulled.status).toBe(200);
    expect(sha256(pulled.body)).toBe(layer().digest);
    let warnings = warningsSince(logs, logFrom);
    expect(warnings, JSON.stringify(warnings)).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: "pull-through: blob served but not cached", code: "ENOSPC" });
    expect(await server.content.stat(layer().digest)).toBeUndefined();

    // A range of an uncached blob is normally served after caching the whole blob.
    logFrom = logs.length;
    const ranged = await reg.req("GET", path, { headers: { range: "bytes=10-99" } });
    await requestDone(logs, ranged);
    expect({ status: ranged.status, range: ranged.headers.get("content-range") }).toEqual({ status: 206, range: `bytes 10-99/${layer().size}` });
    expect(ranged.body.equals(pulled.body.subarray(10, 100))).toBe(true);
    warnings = warningsSince(logs, logFrom);
    expect(warnings.map((w) => w.msg)).toEqual(["pull-through: the content store is full; range served from the upstream, not cached"]);

    // Not even an empty file fits.
    disk.fillInodes();
    logFrom = logs.length;
    const uncached = await reg.req("GET", path);
    await requestDone(logs, uncached);
    expect(sha256(uncached.body)).toBe(layer().digest);
    warnings = warningsSince(logs, logFrom);
    expect(warnings, JSON.stringify(warnings)).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ msg: "pull-through: blob served but not cached", code: "ENOSPC" });
    expect(await server.content.stat(layer().digest)).toBeUndefined();
    // The cache's upload sessions are gone with their failures.
    expect(await sessions()).toEqual(sessionsBefore);

    disk.free();
    const cached = await reg.req("GET", path);
    await requestDone(logs, cached);
    expect(sha256(cached.body)).toBe(layer().digest);
    expect(await server.content.stat(layer().digest)).toEqual({ size: layer().size });
  });

  it("lets skopeo pull an image through a full cache", async () => {
    disk.fill();
    const dir = join(server.dataDir, "..", unique("pulled"));
    const pulled = await pullImage({ host: `127.0.0.1:${server.http.port}` }, `${mirror}/team/app`, "1.0", { dir, transport: "oci" });
    expect(pulled.digest).toBe(image.digest);
  });
});

const postgresHere = mountable && findPostgresBin() !== undefined;
if (mountable && !postgresHere)
  console.warn("\n!!! test/disk-full.test.ts (PostgreSQL on a full disk): SKIPPED, PostgreSQL server binaries not found (apt-get install postgresql)\n");

describe.skipIf(!postgresHere)("PostgreSQL on a full disk (its cluster on a small tmpfs)", () => {
  let disk: Tmpfs;
  let pg: ThrowawayPostgres;
  let server: TestServer;
  let logs: LogLine[];
  let reg: RegistryClient;
  let hosted: string;
  const root = mkdtempSync(join(tmpdir(), "artifact-pg-full-"));

  beforeAll(async () => {
    disk = Tmpfs.mount(root, 96 * MiB);
    pg = await startThrowawayPostgres({ parent: root });
    const database = await openPostgres(postgresConfig(pg.url, 4), quietLog);
    logs = [];
    const log = createLogger("info", { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
    server = await startTestServer("postgres", { database, log });
    reg = new RegistryClient(server.httpUrl);
    hosted = unique("hosted");
  });
  afterAll(async () => {
    await server?.stop();
    pg?.destroy();
    disk?.unmount();
    rmSync(root, { recursive: true, force: true });
  });

  it("answers RESOURCE_EXHAUSTED on the API and 507 on /v2/ while its disk is full, and carries on once there is room", async () => {
    const c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    await c.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
    const full = "the database is full (no space left on the disk that holds it): free space or raise the quota, then retry";
    disk.fill();

    // Rows go into pages that have room until a table has to grow.
    let refused: ConnectError | undefined;
    for (let i = 0; i < 5000 && !refused; i++) {
      refused = await c.registries.createRegistry({ registry: { name: unique("filler"), kind: RegistryKind.HOSTED } }).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
    }
    expect({ code: refused?.code, message: refused?.rawMessage }).toEqual({ code: Code.ResourceExhausted, message: full });
    const warning = logs.find((l) => l.level === 40 && l.procedure === "/artifact.v1.RegistryService/CreateRegistry");
    expect(warning).toMatchObject({ msg: full, database: expect.stringMatching(/could not extend file .*No space left on device/) as unknown });

    let rejected: Answer | undefined;
    for (let i = 0; i < 5000 && !rejected; i++) {
      const res = await reg.req("POST", `/v2/${hosted}/team/app/blobs/uploads/`);
      if (res.status !== 202) rejected = res;
    }
    expectOciError(rejected!, 507, "UNKNOWN", full);

    disk.free();
    expect((await c.registries.createRegistry({ registry: { name: unique("after"), kind: RegistryKind.HOSTED } })).name).toMatch(/^after-/);
    expect((await reg.req("POST", `/v2/${hosted}/team/app/blobs/uploads/`)).status).toBe(202);
  });
});
