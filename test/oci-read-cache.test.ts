// /v2/ reads of HOSTED repositories answered from memory (src/store/hot-cache.ts), and what keeps
// them right: the process that took a write sees it on its next request, on PGlite and PostgreSQL;
// another process on the same PostgreSQL sees it once the trigger's notice arrives (polled here
// against a generous deadline: the figure itself is measured in bench/); and a process whose
// listening connection was killed serves nothing it kept from before.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { startBenchServer, type BenchServer } from "../bench/server-process.js";
import { LISTEN_APPLICATION_NAME } from "../src/db/database.js";
import { HotCache } from "../src/store/hot-cache.js";
import { ADMIN_AUTHORIZATION, ADMIN_TOKEN } from "./support/credentials.js";
import { catalogClients, unique, type Clients } from "./support/clients.js";
import { createScratchDatabase, databaseKinds } from "./support/database.js";
import { eventually } from "./support/grpc-clients.js";
import { RegistryClient, type PushedImage } from "./support/registry-client.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

describe("HotCache", () => {
  it("serves and keeps nothing until it is listening, and forgets everything when listening stops", () => {
    const cache = new HotCache(1000);
    cache.set("k", "r1", "v", 10, cache.ticket());
    expect(cache.get("k")).toBeUndefined();
    cache.setListening(true);
    cache.set("k", "r1", "v", 10, cache.ticket());
    expect(cache.get("k")).toBe("v");
    cache.setListening(false);
    expect(cache.get("k")).toBeUndefined();
    expect(cache.ticket()).toBeUndefined();
    cache.setListening(true);
    expect(cache.get("k")).toBeUndefined(); // the drop did not keep it for later
  });

  it("does not keep an answer read before an invalidation of its repository or of everything", () => {
    const cache = new HotCache(1000);
    cache.setListening(true);
    const early = cache.ticket();
    cache.notice("rrepo-1");
    cache.set("stale", "repo-1", "old", 10, early);
    expect(cache.get("stale")).toBeUndefined();
    cache.set("other", "repo-2", "fine", 10, early); // another repository's change does not matter
    expect(cache.get("other")).toBe("fine");
    const before = cache.ticket();
    cache.notice("*");
    expect(cache.get("other")).toBeUndefined();
    cache.set("other", "repo-2", "old", 10, before);
    expect(cache.get("other")).toBeUndefined();
    cache.set("other", "repo-2", "new", 10, cache.ticket());
    expect(cache.get("other")).toBe("new");
  });

  it("drops a repository's entries on its notice, and only those", () => {
    const cache = new HotCache(1000);
    cache.setListening(true);
    const t = cache.ticket();
    cache.set("a1", "a", 1, 10, t);
    cache.set("a2", "a", 2, 10, t);
    cache.set("b1", "b", 3, 10, t);
    cache.notice("ra");
    expect([cache.get("a1"), cache.get("a2"), cache.get("b1")]).toEqual([undefined, undefined, 3]);
  });

  it("keeps under its byte bound, least recently used out first, and skips an entry bigger than the bound", () => {
    const cache = new HotCache(100);
    cache.setListening(true);
    for (let i = 0; i < 4; i++) cache.set(`k${i}`, "r", i, 30, cache.ticket());
    expect(cache.size).toBe(3);
    expect(cache.get("k0")).toBeUndefined();
    expect(cache.get("k1")).toBe(1); // now the most recent
    cache.set("k4", "r", 4, 30, cache.ticket());
    expect(cache.get("k2")).toBeUndefined();
    expect(cache.get("k1")).toBe(1);
    cache.set("huge", "r", 5, 101, cache.ticket());
    expect(cache.get("huge")).toBeUndefined();
    expect(cache.size).toBe(3);
  });

  it("evicts within its bound when every entry was read, and keeps the one just set", () => {
    const cache = new HotCache(100);
    cache.setListening(true);
    for (let i = 0; i < 3; i++) cache.set(`k${i}`, "r", i, 30, cache.ticket());
    for (let i = 0; i < 3; i++) expect(cache.get(`k${i}`)).toBe(i);
    cache.set("k3", "r", 3, 30, cache.ticket());
    expect(cache.size).toBe(3);
    expect(cache.get("k3")).toBe(3);
    expect(cache.get("k0")).toBeUndefined(); // the oldest, once every mark was cleared
    // A value as big as the bound pushes out everything else, and stays.
    cache.set("big", "r", 9, 100, cache.ticket());
    expect([cache.size, cache.get("big")]).toEqual([1, 9]);
  });

  it("is off at size 0", () => {
    const cache = new HotCache(0);
    cache.setListening(true);
    cache.set("k", "r", 1, 1, cache.ticket());
    expect(cache.get("k")).toBeUndefined();
  });
});

const manifestDigest = async (reg: RegistryClient, name: string, reference: string, method = "GET") => {
  const res = await reg.req(method, `/v2/${name}/manifests/${reference}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } });
  return res.status === 200 ? res.headers.get("docker-content-digest") : res.status;
};

const tagList = async (reg: RegistryClient, name: string, query = "") => {
  const res = await reg.req("GET", `/v2/${name}/tags/list${query}`);
  return res.status === 200 ? (res.json as { tags: string[] }).tags : res.status;
};

describe.each(databaseKinds())("read cache on %s: the process that took a write reads it next", (kind) => {
  let server: TestServer;
  let reg: RegistryClient;
  let c: Clients;
  let hosted: string;

  beforeAll(async () => {
    server = await startTestServer(kind);
    reg = new RegistryClient(server.httpUrl);
    c = catalogClients(transports["connect+json over HTTP/1.1"]!(server.httpUrl));
    hosted = unique("hosted");
    await c.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a tag moved, a manifest or tag deleted: the next GET and HEAD see it", async () => {
    const name = `${hosted}/team/${unique("app")}`;
    const one = await reg.pushImage(name, "t");
    for (let i = 0; i < 2; i++) expect(await manifestDigest(reg, name, "t")).toBe(one.digest);
    expect(server.store.images.cache.size).toBeGreaterThan(0); // kept: the second read came from memory
    expect(await manifestDigest(reg, name, one.digest)).toBe(one.digest);

    const two = await reg.pushImage(name, "t");
    expect(await manifestDigest(reg, name, "t")).toBe(two.digest);
    expect(await manifestDigest(reg, name, "t", "HEAD")).toBe(two.digest);

    expect((await reg.req("DELETE", `/v2/${name}/manifests/${one.digest}`)).status).toBe(202);
    expect(await manifestDigest(reg, name, one.digest)).toBe(404);
    expect(await manifestDigest(reg, name, one.digest, "HEAD")).toBe(404);
    expect((await reg.req("DELETE", `/v2/${name}/manifests/t`)).status).toBe(202);
    expect(await manifestDigest(reg, name, "t")).toBe(404);
    expect(await manifestDigest(reg, name, two.digest)).toBe(two.digest); // a tag delete leaves the manifest
  });

  it("tags/list follows pushes, Connect tag changes, deletes and a deleted repository", async () => {
    const name = `${hosted}/team/${unique("tags")}`;
    const image = await reg.pushImage(name, "a");
    expect(await tagList(reg, name)).toEqual(["a"]);
    expect((await reg.putManifest(name, "b", image.bytes, image.mediaType)).status).toBe(201);
    expect(await tagList(reg, name)).toEqual(["a", "b"]);
    expect(await tagList(reg, name, "?n=1")).toEqual(["a"]);

    const [registry, namespace, repository] = name.split("/");
    const repositoryId = (await server.store.images.resolve(registry!, namespace!, repository!))!.repositoryId!;
    const created = await c.tags.createTag({ tag: { repositoryId, name: "c", digest: image.digest } });
    expect(await tagList(reg, name)).toEqual(["a", "b", "c"]);
    expect(await manifestDigest(reg, name, "c")).toBe(image.digest);
    const other = await reg.pushImage(name, "x");
    await c.tags.updateTag({ tag: { id: created.id, digest: other.digest }, updateMask: { paths: ["digest"] } });
    expect(await manifestDigest(reg, name, "c")).toBe(other.digest);
    const renamed = await c.tags.updateTag({ tag: { id: created.id, name: "d" }, updateMask: { paths: ["name"] } });
    expect(await tagList(reg, name)).toEqual(["a", "b", "d", "x"]);
    expect(await manifestDigest(reg, name, "c")).toBe(404);
    await c.tags.deleteTag({ id: renamed.id });
    expect(await tagList(reg, name)).toEqual(["a", "b", "x"]);

    await c.repositories.deleteRepository({ id: repositoryId, force: true });
    expect(await tagList(reg, name)).toBe(404);
    expect(await manifestDigest(reg, name, "a")).toBe(404);
    await reg.pushImage(name, "new");
    expect(await tagList(reg, name)).toEqual(["new"]);
  });

  it("ListTags' total_size (kept in the cache) follows pushes, API changes, deletes and a change made in the database", async () => {
    const name = `${hosted}/team/${unique("count")}`;
    const image = await reg.pushImage(name, "a");
    const [registry, namespace, repository] = name.split("/");
    const repositoryId = (await server.store.images.resolve(registry!, namespace!, repository!))!.repositoryId!;
    const count = async (orderBy = "") => {
      const page = await c.tags.listTags({ repositoryId, pageSize: 1, orderBy });
      return [page.totalSize, page.tags.map((t) => t.name)];
    };
    const kept = server.store.images.cache.size;
    expect(await count()).toEqual([1, ["a"]]);
    expect(server.store.images.cache.size).toBe(kept + 1); // the count, kept
    expect(await count()).toEqual([1, ["a"]]); // from the cache
    expect((await reg.putManifest(name, "b", image.bytes, image.mediaType)).status).toBe(201);
    expect(await count()).toEqual([2, ["a"]]);
    expect(await count("name desc")).toEqual([2, ["b"]]);
    const created = await c.tags.createTag({ tag: { repositoryId, name: "c", digest: image.digest } });
    expect(await count("name desc")).toEqual([3, ["c"]]);
    await c.tags.deleteTag({ id: created.id });
    expect(await count()).toEqual([2, ["a"]]);
    expect((await reg.req("DELETE", `/v2/${name}/manifests/b`)).status).toBe(202);
    expect(await count()).toEqual([1, ["a"]]);
    // As another replica would: straight in the database. This process hears of it from the notice.
    expect(await count()).toEqual([1, ["a"]]);
    await server.database.db.execute(sql`delete from tags where repository_id = ${repositoryId}`);
    await eventually(async () => JSON.stringify(await count()) === JSON.stringify([0, []]), "the count after a change made in the database");
  });
});

const onPostgres = databaseKinds().includes("postgres");

describe.skipIf(!onPostgres)("read cache across two server processes on one PostgreSQL", { timeout: 120_000 }, () => {
  let writer: BenchServer;
  let reader: BenchServer;
  let writerReg: RegistryClient;
  let readerReg: RegistryClient;
  let admin: postgres.Sql;
  let dbName: string;
  let dir: string;
  let dropScratch = async () => {};
  let hosted: string;

  beforeAll(async () => {
    const scratch = await createScratchDatabase();
    dropScratch = () => scratch.drop();
    dbName = new URL(scratch.url).pathname.slice(1);
    admin = postgres(scratch.url, { max: 1, onnotice: () => {} });
    dir = mkdtempSync(join(tmpdir(), "artifact-read-cache-"));
    const start = (who: string) =>
      startBenchServer({
        env: { DATABASE_URL: scratch.url, DATA_DIR: join(dir, "data"), LOG_LEVEL: "warn", AUTH_ANONYMOUS_ADMIN: "false", ADMIN_TOKEN },
        logFile: join(dir, `${who}.log`),
      });
    writer = await start("writer");
    reader = await start("reader");
    writerReg = new RegistryClient(writer.httpUrl);
    readerReg = new RegistryClient(reader.httpUrl);
    hosted = unique("hosted");
    const res = await fetch(`${writer.httpUrl}/v1/registries`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: ADMIN_AUTHORIZATION },
      body: JSON.stringify({ name: hosted, kind: "REGISTRY_KIND_HOSTED" }),
    });
    expect(res.status, await res.text()).toBe(200);
  });
  afterAll(async () => {
    await Promise.all([writer?.stop(), reader?.stop()]);
    await admin?.end();
    await dropScratch();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const listeners = async () =>
    (await admin<{ pid: number }[]>`select pid from pg_stat_activity where datname = ${dbName} and application_name = ${LISTEN_APPLICATION_NAME}`).map(
      (r) => r.pid,
    );

  it("a tag moved through one process is served by the other once its notice arrives", async () => {
    const name = `${hosted}/team/${unique("move")}`;
    const one = await writerReg.pushImage(name, "t");
    for (let i = 0; i < 2; i++) expect(await manifestDigest(readerReg, name, "t")).toBe(one.digest);
    expect(await tagList(readerReg, name)).toEqual(["t"]);
    const two = await writerReg.pushImage(name, "u");
    expect((await writerReg.putManifest(name, "t", two.bytes, two.mediaType)).status).toBe(201);
    expect(await manifestDigest(writerReg, name, "t")).toBe(two.digest);
    await eventually(async () => (await manifestDigest(readerReg, name, "t")) === two.digest, "the reader to serve the moved tag", 10_000);
    await eventually(async () => JSON.stringify(await tagList(readerReg, name)) === JSON.stringify(["t", "u"]), "the reader's tag list", 10_000);
  });

  it("a manifest deleted through one process is 404 on the other", async () => {
    const name = `${hosted}/team/${unique("delete")}`;
    const image = await writerReg.pushImage(name, "t");
    for (let i = 0; i < 2; i++) expect(await manifestDigest(readerReg, name, image.digest)).toBe(image.digest);
    expect(await manifestDigest(readerReg, name, "t")).toBe(image.digest);
    expect((await writerReg.req("DELETE", `/v2/${name}/manifests/${image.digest}`)).status).toBe(202);
    await eventually(async () => (await manifestDigest(readerReg, name, image.digest)) === 404, "the reader's 404 by digest", 10_000);
    await eventually(async () => (await manifestDigest(readerReg, name, "t")) === 404, "the reader's 404 by tag", 10_000);
  });

  it("after its listening connection is killed, nothing kept from before is served", async () => {
    const name = `${hosted}/team/${unique("killed")}`;
    const one = await writerReg.pushImage(name, "t");
    const two: PushedImage = await writerReg.pushImage(name, "other");
    for (let i = 0; i < 2; i++) expect(await manifestDigest(readerReg, name, "t")).toBe(one.digest);
    expect(await tagList(readerReg, name)).toEqual(["other", "t"]);

    const killed = await listeners();
    expect(killed.length).toBe(2); // one per process
    await admin`select pg_terminate_backend(pid) from pg_stat_activity where pid in ${admin(killed)}`;
    await eventually(async () => (await listeners()).every((pid) => !killed.includes(pid)), "the killed backends to be gone", 10_000);

    // Moved while (or just after) the reader's notices were lost: its first read must not be the old digest.
    expect((await writerReg.putManifest(name, "t", two.bytes, two.mediaType)).status).toBe(201);
    expect((await writerReg.req("DELETE", `/v2/${name}/manifests/other`)).status).toBe(202);
    expect(await manifestDigest(readerReg, name, "t")).toBe(two.digest);
    expect(await tagList(readerReg, name)).toEqual(["t"]);

    // And it listens again: a later move reaches it by notice.
    await eventually(async () => (await listeners()).length === 2, "both processes to listen again", 10_000);
    const three = await writerReg.pushImage(name, "t");
    await eventually(async () => (await manifestDigest(readerReg, name, "t")) === three.digest, "the reader to serve the next move", 10_000);
  });
});
