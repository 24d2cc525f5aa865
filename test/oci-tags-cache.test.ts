// /v2/<name>/tags/list answers from memory while repositories.tags_version stands still; a
// trigger bumps it on every change to a repository's tags. These tests read tag lists through
// one server and change tags every way there is through another one sharing the database (on
// PGlite, the same server): a push, Connect's CreateTag/UpdateTag/DeleteTag, DELETE of a tag and
// of a manifest (whose tags go by foreign-key cascade), and a deleted repository. Every list
// must be current the moment the change returns.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import { openPostgres } from "../src/db/database.js";
import { VersionedCache } from "../src/store/versioned-cache.js";
import { catalogClients, unique, type Clients } from "./support/clients.js";
import { createScratchDatabase, databaseKinds, postgresConfig, quietLog } from "./support/database.js";
import { RegistryClient } from "./support/registry-client.js";
import { startTestServer, transports, type TestServer } from "./support/server.js";

describe("VersionedCache", () => {
  it("answers for the version it was given only, and drops what another version replaced", () => {
    const cache = new VersionedCache<string>(1000);
    cache.set("k", 1, "one", 10);
    expect(cache.get("k", 1)).toBe("one");
    expect(cache.get("k", 2)).toBeUndefined();
    expect(cache.get("k", 1)).toBeUndefined(); // the mismatch removed it
    cache.set("k", 2, "two", 10);
    cache.set("k", 3, "three", 10);
    expect(cache.size).toBe(1);
    expect(cache.get("k", 3)).toBe("three");
  });

  it("keeps under its byte bound, least recently used out first, and skips an entry bigger than the bound", () => {
    const cache = new VersionedCache<number>(100);
    for (let i = 0; i < 4; i++) cache.set(`k${i}`, 0, i, 30);
    expect(cache.size).toBe(3);
    expect(cache.get("k0", 0)).toBeUndefined();
    expect(cache.get("k1", 0)).toBe(1); // now the most recent
    cache.set("k4", 0, 4, 30);
    expect(cache.get("k2", 0)).toBeUndefined();
    expect(cache.get("k1", 0)).toBe(1);
    cache.set("huge", 0, 5, 101);
    expect(cache.get("huge", 0)).toBeUndefined();
    expect(cache.size).toBe(3);
  });
});

describe.each(databaseKinds())("tags/list stays current on %s", (kind) => {
  /** The server whose tag lists are read (and cached). */
  let reader: TestServer;
  /** The server that changes tags: another process's view of the same database on PostgreSQL. */
  let writer: TestServer;
  let readerReg: RegistryClient;
  let writerReg: RegistryClient;
  let c: Clients;
  let hosted: string;
  let dropScratch = async () => {};

  beforeAll(async () => {
    if (kind === "postgres") {
      const scratch = await createScratchDatabase();
      dropScratch = () => scratch.drop();
      const open = () => openPostgres(postgresConfig(scratch.url, 4), quietLog);
      reader = await startTestServer(kind, { database: await open() });
      writer = await startTestServer(kind, { database: await open() });
    } else {
      reader = writer = await startTestServer(kind);
    }
    readerReg = new RegistryClient(reader.httpUrl);
    writerReg = new RegistryClient(writer.httpUrl);
    c = catalogClients(transports["connect+json over HTTP/1.1"]!(writer.httpUrl));
    hosted = unique("hosted");
    await c.registries.createRegistry({ registry: { name: hosted, kind: RegistryKind.HOSTED } });
  });
  afterAll(async () => {
    await reader?.stop();
    if (writer !== reader) await writer?.stop();
    await dropScratch();
  });

  const list = async (name: string, query = "") => {
    const res = await readerReg.req("GET", `/v2/${name}/tags/list${query}`);
    expect(res.status, res.body.toString()).toBe(200);
    return { tags: (res.json as { tags: string[] }).tags, link: res.headers.get("link") };
  };
  const version = async (name: string) => {
    const [registry, namespace, repository] = name.split("/");
    return (await reader.store.images.resolve(registry!, namespace!, repository!))!.tagsVersion!;
  };

  it("sees pushes, Connect tag changes, tag and manifest deletes at once", async () => {
    const name = `${hosted}/team/${unique("app")}`;
    const image = await writerReg.pushImage(name, "a");
    expect((await list(name)).tags).toEqual(["a"]);
    expect(await list(name, "?n=1")).toEqual({ tags: ["a"], link: null });

    // A second tag by manifest PUT: the whole list and the first page both move on.
    expect((await writerReg.putManifest(name, "b", image.bytes, image.mediaType)).status).toBe(201);
    expect((await list(name)).tags).toEqual(["a", "b"]);
    expect(await list(name, "?n=1")).toEqual({ tags: ["a"], link: `</v2/${name}/tags/list?n=1&last=a>; rel="next"` });

    // The catalog API writes the same table.
    const [registry, namespace, repository] = name.split("/");
    const repositoryId = (await writer.store.images.resolve(registry!, namespace!, repository!))!.repositoryId!;
    const created = await c.tags.createTag({ tag: { repositoryId, name: "c", digest: image.digest } });
    expect((await list(name)).tags).toEqual(["a", "b", "c"]);
    const renamed = await c.tags.updateTag({ tag: { id: created.id, name: "d" }, updateMask: { paths: ["name"] } });
    expect((await list(name)).tags).toEqual(["a", "b", "d"]);
    await c.tags.deleteTag({ id: renamed.id });
    expect((await list(name)).tags).toEqual(["a", "b"]);

    // DELETE of a tag on /v2/, then of the manifest: its last tag goes by cascade.
    expect((await writerReg.req("DELETE", `/v2/${name}/manifests/b`)).status).toBe(202);
    expect((await list(name)).tags).toEqual(["a"]);
    expect((await writerReg.req("DELETE", `/v2/${name}/manifests/${image.digest}`)).status).toBe(202);
    expect(await list(name)).toEqual({ tags: [], link: null });
    expect(await list(name, "?n=1")).toEqual({ tags: [], link: null });
  });

  it("bumps only the repository whose tags changed, and serves a repeated list from memory", async () => {
    const one = `${hosted}/team/${unique("one")}`;
    const two = `${hosted}/team/${unique("two")}`;
    const image = await writerReg.pushImage(one, "v1");
    await writerReg.pushImage(two, "v1");
    const before = await version(two);
    expect((await writerReg.putManifest(one, "v2", image.bytes, image.mediaType)).status).toBe(201);
    expect(await version(two)).toBe(before);

    // Asked with the version it was cached under, the store answers from memory even though the
    // tags have moved on since; with the current version it reads them again.
    const [registry, namespace, repository] = one.split("/");
    const seen = (await reader.store.images.resolve(registry!, namespace!, repository!))!;
    const cached = await reader.store.images.tagNamesPage(seen.repositoryId!, 100, undefined, seen.tagsVersion);
    expect(JSON.parse(cached.json)).toEqual(["v1", "v2"]);
    expect((await writerReg.putManifest(one, "v3", image.bytes, image.mediaType)).status).toBe(201);
    expect(JSON.parse((await reader.store.images.tagNamesPage(seen.repositoryId!, 100, undefined, seen.tagsVersion)).json)).toEqual(["v1", "v2"]);
    expect(await version(one)).toBeGreaterThan(seen.tagsVersion!);
    expect((await list(one)).tags).toEqual(["v1", "v2", "v3"]);
  });

  it("forgets a deleted repository: the same name pushed again lists only its new tags", async () => {
    const name = `${hosted}/team/${unique("again")}`;
    await writerReg.pushImage(name, "old");
    expect((await list(name)).tags).toEqual(["old"]);
    const [registry, namespace, repository] = name.split("/");
    const repositoryId = (await writer.store.images.resolve(registry!, namespace!, repository!))!.repositoryId!;
    await c.repositories.deleteRepository({ id: repositoryId, force: true });
    expect((await readerReg.req("GET", `/v2/${name}/tags/list`)).status).toBe(404);
    await writerReg.pushImage(name, "new");
    expect((await list(name)).tags).toEqual(["new"]);
  });
});
