// RegistryService.SyncRegistry against real docker-registry (CNCF Distribution 2.8) processes:
// ~200 repositories seeded over the registry API, catalog pages of 50, the registry's sync
// filter, idempotency down to the etags, tags moved, deleted and repositories gone upstream,
// a registry killed mid-sync, Basic and token auth, progress over Connect and NDJSON over REST.
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { and, eq } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NamespaceService } from "../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService, type SyncRegistryProgress } from "../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../gen/artifact/v1/repository_pb.js";
import { TagService, type Tag } from "../gen/artifact/v1/tag_pb.js";
import { namespaces, registries as registriesTable, repositories } from "../src/db/schema.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch, adminInterceptor } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { scope, startDistribution, type Distribution } from "./support/distribution.js";
import { multiPlatformIndex, smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { seedRepositories } from "./support/registry-seed.js";
import { testUpstream } from "./support/upstream-settings.js";
import { startTestServer, type TestServer } from "./support/server.js";

const ready = havePeers("test/sync.test.ts", "docker-registry", "htpasswd", "openssl");

const APPS = Array.from({ length: 200 }, (_, i) => `proj/app-${String(i).padStart(3, "0")}`);

/** Every progress message of a sync, and the error that ended it, if any. */
async function collect(stream: AsyncIterable<SyncRegistryProgress>, onMessage?: (m: SyncRegistryProgress, n: number) => void) {
  const messages: SyncRegistryProgress[] = [];
  try {
    for await (const m of stream) {
      messages.push(m);
      onMessage?.(m, messages.length);
    }
  } catch (err) {
    return { messages, error: ConnectError.from(err) };
  }
  return { messages, error: undefined };
}

const last = (messages: SyncRegistryProgress[]) => messages[messages.length - 1]!;

describe.skipIf(!ready)("SyncRegistry", () => {
  let small: BuiltImage;
  let moved: BuiltImage;
  let index: BuiltImage;

  beforeAll(async () => {
    [small, moved, index] = await Promise.all([smallImage("sync"), smallImage("sync-moved"), multiPlatformIndex("sync")]);
  });

  describe.each(databaseKinds())("on %s", (kind) => {
    // Each database kind gets its own upstream: the tests change it.
    let catalog: Distribution;
    let server: TestServer;
    let registries: Client<typeof RegistryService>;
    let tags: Client<typeof TagService>;
    let repositoryService: Client<typeof RepositoryService>;
    let namespaceService: Client<typeof NamespaceService>;

    beforeAll(async () => {
      catalog = await startDistribution();
      await seedRepositories(catalog, small, { repos: APPS, tags: ["1.0", "latest"] });
      await seedRepositories(catalog, small, { repos: ["testbox"], tags: ["latest"] });
      await seedRepositories(catalog, index, { repos: ["proj/index"], tags: ["1.0"] });
      // A repository with a blob and no manifest: the catalog lists it, its tag list is 404.
      const res = await fetch(`${catalog.url}/v2/proj/blobs-only/blobs/uploads/?mount=${small.blobs[0]!.digest}&from=${APPS[0]}`, { method: "POST" });
      expect(res.status).toBe(201);
      server = await startTestServer(kind, {
        // Catalog pages of 50: 203 repositories take five pages.
        config: {
          sync: { concurrency: 4, pageSize: 50 },
          upstream: testUpstream({
            timeouts: { connectMs: 2_000, headersMs: 5_000, bodyIdleMs: 5_000 },
            retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
          }),
        },
      });
      const transport = createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [adminInterceptor] });
      registries = createClient(RegistryService, transport);
      tags = createClient(TagService, transport);
      repositoryService = createClient(RepositoryService, transport);
      namespaceService = createClient(NamespaceService, transport);
    });
    afterAll(async () => {
      await server?.stop();
      await catalog?.stop();
    });

    const remote = (name: string, url: string, extra: Record<string, unknown> = {}) =>
      registries.createRegistry({ registry: { name, kind: RegistryKind.REMOTE, url, ...extra } });

    /** namespace/repository → its row id and upstream name, straight from the database. */
    async function repository(registryId: string, namespace: string, name: string) {
      const [row] = await server.database.db
        .select({ id: repositories.id, upstreamName: repositories.upstreamName })
        .from(repositories)
        .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
        .innerJoin(registriesTable, eq(registriesTable.id, namespaces.registryId))
        .where(and(eq(registriesTable.id, registryId), eq(namespaces.name, namespace), eq(repositories.name, name)));
      return row;
    }

    async function tagsOf(registryId: string, namespace: string, name: string): Promise<Tag[]> {
      const row = await repository(registryId, namespace, name);
      if (!row) return [];
      return (await tags.listTags({ repositoryId: row.id, pageSize: 1000 })).tags;
    }

    describe("a catalog of ~200 repositories", () => {
      let registryId: string;
      let first: Awaited<ReturnType<typeof collect>>;

      beforeAll(async () => {
        registryId = (await remote("catalog", catalog.url)).id;
        first = await collect(registries.syncRegistry({ id: registryId }));
      });

      it("imports every repository across catalog pages, streaming progress per repository", () => {
        const { messages, error } = first;
        expect(error).toBeUndefined();
        const done = last(messages);
        expect(done.done).toBe(true);
        expect(done.repositoriesFound).toBe(203);
        expect(done.repositoriesSynced).toBe(202);
        expect(done.errors).toBe(1);
        expect(done.tagsAdded).toBe(200 * 2 + 1 + 1);
        expect(done.tagsUpdated + done.tagsRemoved).toBe(0);
        // One message per repository, then the final one.
        expect(messages).toHaveLength(204);
        expect(messages.slice(0, -1).every((m) => !m.done && m.repository !== "")).toBe(true);
        expect(new Set(messages.slice(0, -1).map((m) => m.repository)).size).toBe(203);
        const synced = messages.map((m) => m.repositoriesSynced);
        expect(synced).toEqual([...synced].sort((a, b) => a - b));
      });

      it("reports a repository that fails (its tag list is 404) and goes on", () => {
        const failed = first.messages.filter((m) => m.error !== "");
        expect(failed.map((m) => m.repository)).toEqual(["proj/blobs-only"]);
        expect(failed[0]!.error).toMatch(/proj\/blobs-only/);
      });

      it("maps names: proj/app-007 → namespace proj; the single-component testbox → library/testbox with its upstream name kept", async () => {
        const ns = await namespaceService.listNamespaces({ registryId, pageSize: 100 });
        expect(ns.namespaces.map((n) => n.name).sort()).toEqual(["library", "proj"]);
        expect(await repository(registryId, "library", "testbox")).toMatchObject({ upstreamName: "testbox" });
        expect(await repository(registryId, "proj", "app-007")).toMatchObject({ upstreamName: "proj/app-007" });
        const all = await repositoryService.listRepositories({ namespaceId: ns.namespaces.find((n) => n.name === "proj")!.id, pageSize: 1000 });
        expect(all.totalSize).toBe(201);
      });

      it("records digest, media type and size: the manifest plus everything it references", async () => {
        const m = small.manifests[0]!;
        const expected = m.size + m.config.size + m.layers.reduce((n, l) => n + l.size, 0);
        const app = await tagsOf(registryId, "proj", "app-042");
        expect(app.map((t) => [t.name, t.digest, t.mediaType, Number(t.sizeBytes)])).toEqual([
          ["1.0", small.digest, small.mediaType, expected],
          ["latest", small.digest, small.mediaType, expected],
        ]);
        const [idx] = await tagsOf(registryId, "proj", "index");
        const children = index.manifests.reduce((n, c) => n + c.size + c.config.size + c.layers.reduce((k, l) => k + l.size, 0), 0);
        expect([idx!.digest, idx!.mediaType, Number(idx!.sizeBytes)]).toEqual([index.digest, index.mediaType, index.size + children]);
      });

      it("is idempotent: a second run changes nothing and moves no etag", async () => {
        const before = await tagsOf(registryId, "proj", "app-100");
        const repoBefore = await repositoryService.getRepository({ id: (await repository(registryId, "proj", "app-100"))!.id });
        const again = await collect(registries.syncRegistry({ id: registryId }));
        expect(again.error).toBeUndefined();
        expect(last(again.messages)).toMatchObject({
          done: true,
          repositoriesFound: 203,
          repositoriesSynced: 202,
          tagsAdded: 0,
          tagsUpdated: 0,
          tagsRemoved: 0,
          errors: 1,
        });
        const after = await tagsOf(registryId, "proj", "app-100");
        expect(after.map((t) => [t.name, t.etag, t.updateTime, t.pushTime])).toEqual(before.map((t) => [t.name, t.etag, t.updateTime, t.pushTime]));
        const repoAfter = await repositoryService.getRepository({ id: repoBefore.id });
        expect([repoAfter.etag, repoAfter.updateTime]).toEqual([repoBefore.etag, repoBefore.updateTime]);
      });

      it("follows the upstream: a moved tag is updated, a deleted tag and a vanished repository's tags are removed and reported", async () => {
        const movedBefore = (await tagsOf(registryId, "proj", "app-001")).find((t) => t.name === "latest")!;
        await seedRepositories(catalog, moved, { repos: ["proj/app-001"], tags: ["latest"] });
        const repos = join(catalog.storageDir, "docker/registry/v2/repositories");
        await rm(join(repos, "proj/app-002/_manifests/tags/1.0"), { recursive: true });
        await rm(join(repos, "proj/app-003"), { recursive: true });

        const third = await collect(registries.syncRegistry({ id: registryId }));
        expect(third.error).toBeUndefined();
        expect(last(third.messages)).toMatchObject({ done: true, repositoriesFound: 202, tagsAdded: 0, tagsUpdated: 1, tagsRemoved: 3 });
        const byRepo = new Map(third.messages.map((m) => [m.repository, m]));
        expect(byRepo.get("proj/app-002")!.removedTags).toEqual(["1.0"]);
        expect([...byRepo.get("proj/app-003")!.removedTags].sort()).toEqual(["1.0", "latest"]);

        const movedAfter = (await tagsOf(registryId, "proj", "app-001")).find((t) => t.name === "latest")!;
        expect(movedAfter.digest).toBe(moved.digest);
        expect(movedAfter.etag).not.toBe(movedBefore.etag);
        expect(Number(movedAfter.pushTime!.seconds) * 1e9 + movedAfter.pushTime!.nanos).toBeGreaterThan(
          Number(movedBefore.pushTime!.seconds) * 1e9 + movedBefore.pushTime!.nanos,
        );
        expect((await tagsOf(registryId, "proj", "app-002")).map((t) => t.name)).toEqual(["latest"]);
        expect(await tagsOf(registryId, "proj", "app-003")).toEqual([]);
      });

      it("streams the same progress over gRPC (h2c)", async () => {
        const grpcRegistries = createClient(RegistryService, createGrpcTransport({ baseUrl: server.grpcUrl, interceptors: [adminInterceptor] }));
        const run = await collect(grpcRegistries.syncRegistry({ id: registryId }));
        expect(run.error).toBeUndefined();
        expect(run.messages.length).toBeGreaterThan(100);
        expect(last(run.messages)).toMatchObject({ done: true, tagsAdded: 0, tagsUpdated: 0, tagsRemoved: 0 });
      });
    });

    it("applies the registry's sync filter (repository prefix, whole-tag regex) and streams NDJSON over REST", async () => {
      const r = await remote("filtered", catalog.url, { syncFilter: { repositoryPrefix: "proj/app-01", tagPattern: "late.t" } });
      const res = await adminFetch(`${server.httpUrl}/v1/registries/${r.id}:sync`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-ndjson");
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(11);
      expect(lines.slice(0, -1).every((l) => String(l.repository).startsWith("proj/app-01"))).toBe(true);
      expect(lines[10]).toMatchObject({ done: true, repositoriesFound: 10, repositoriesSynced: 10, tagsAdded: 10 });
      expect((await tagsOf(r.id, "proj", "app-015")).map((t) => t.name)).toEqual(["latest"]);
      expect(await repository(r.id, "proj", "app-020")).toBeUndefined();
    });

    it("tag patterns are RE2, matched in linear time: (a+)+$ and (a|aa)*b against 128-character tags", async () => {
      // Both take exponential time in a backtracking engine (JavaScript's RegExp) on these tags.
      const allA = "a".repeat(128);
      const thenB = `${"a".repeat(127)}b`;
      const u = await startDistribution();
      try {
        await seedRepositories(u, small, { repos: ["proj/pattern"], tags: [allA, thenB, "latest"] });
        for (const [pattern, imported] of [
          ["(a+)+$", allA],
          ["(a|aa)*b", thenB],
        ] as const) {
          const r = await remote(unique("pattern"), u.url, { syncFilter: { tagPattern: pattern } });
          const run = await collect(registries.syncRegistry({ id: r.id }));
          expect(run.error).toBeUndefined();
          expect(last(run.messages)).toMatchObject({ done: true, repositoriesSynced: 1, tagsAdded: 1, errors: 0 });
          expect((await tagsOf(r.id, "proj", "pattern")).map((t) => t.name)).toEqual([imported]);
        }
      } finally {
        await u.stop();
      }
    });

    it("a stored tag pattern RE2 cannot take (JavaScript lookahead from before) fails that sync with FAILED_PRECONDITION, nothing read", async () => {
      const r = await remote(unique("legacy"), catalog.url, { syncFilter: { tagPattern: "latest" } });
      // Written past the API, as an older version (JavaScript RegExp syntax) could have stored it.
      await server.database.db.update(registriesTable).set({ syncTagPattern: "(?!v0)v.*" }).where(eq(registriesTable.id, r.id));
      const run = await collect(registries.syncRegistry({ id: r.id }));
      expect(run.messages).toEqual([]);
      expect(run.error?.code).toBe(Code.FailedPrecondition);
      expect(run.error?.rawMessage).toContain('sync_filter.tag_pattern "(?!v0)v.*"');
      expect(run.error?.rawMessage).toContain("RE2");
      expect(await repository(r.id, "proj", "app-000")).toBeUndefined();
    });

    it("a registry killed mid-sync: progress so far, then UNAVAILABLE naming the host; the next run completes", async () => {
      const doomed = await startDistribution();
      try {
        await seedRepositories(doomed, small, { repos: APPS, tags: ["1.0"] });
        const r = await remote(unique("doomed"), doomed.url);
        let killing: Promise<void> | undefined;
        const run = await collect(registries.syncRegistry({ id: r.id }), (_m, n) => {
          if (n === 3) killing = doomed.kill();
        });
        await killing;
        expect(run.error?.code).toBe(Code.Unavailable);
        expect(run.error?.rawMessage).toContain(doomed.host);
        expect(run.messages.length).toBeGreaterThanOrEqual(3);
        expect(run.messages.length).toBeLessThan(200);
        expect(run.messages.some((m) => m.done)).toBe(false);

        await doomed.restart();
        const again = await collect(registries.syncRegistry({ id: r.id }));
        expect(again.error).toBeUndefined();
        const done = last(again.messages);
        expect(done).toMatchObject({ done: true, repositoriesFound: 200, repositoriesSynced: 200, errors: 0 });
        // What the first run stored is not stored again.
        expect(done.tagsAdded).toBe(200 - last(run.messages).tagsAdded);
      } finally {
        await doomed.stop();
      }
    });

    it("works with Basic and token auth upstreams; upstream paths that collide on our side are reported", async () => {
      for (const auth of ["basic", "token"] as const) {
        const u = await startDistribution({ auth });
        try {
          // `testbox` and `library/testbox` both map to library/testbox: one of them cannot be imported.
          await seedRepositories(u, small, { repos: ["team/app", "testbox", "library/testbox"], tags: ["1.0"] });
          const r = await remote(`sync-${auth}`, u.url, { credential: { kind: { case: "basic", value: u.credentials } } });
          const run = await collect(registries.syncRegistry({ id: r.id }));
          expect(run.error).toBeUndefined();
          expect(last(run.messages)).toMatchObject({ done: true, repositoriesFound: 3, repositoriesSynced: 2, errors: 1, tagsAdded: 2 });
          const failed = run.messages.find((m) => m.error !== "")!;
          expect(failed.error).toMatch(/already stands for upstream repository (library\/)?testbox/);
          const kept = await repository(r.id, "library", "testbox");
          expect(["testbox", "library/testbox"]).toContain(kept!.upstreamName);
          expect(failed.repository).not.toBe(kept!.upstreamName);
          if (auth === "token") expect(u.tokenServer!.requests.some((q) => q.scopes.includes(scope.catalog))).toBe(true);
        } finally {
          await u.stop();
        }
      }
    });

    it("a wrong credential ends the sync with UNAUTHENTICATED; a HOSTED registry → FAILED_PRECONDITION", async () => {
      const u = await startDistribution({ auth: "basic" });
      try {
        const r = await remote(unique("wrong"), u.url, { credential: { kind: { case: "basic", value: { username: "testuser", password: "wrong" } } } });
        await expectCode(
          collect(registries.syncRegistry({ id: r.id })).then((x) => {
            if (x.error) throw x.error;
          }),
          Code.Unauthenticated,
          u.host,
        );
      } finally {
        await u.stop();
      }
      const hosted = await registries.createRegistry({ registry: { name: unique("hosted"), kind: RegistryKind.HOSTED } });
      await expectCode(
        collect(registries.syncRegistry({ id: hosted.id })).then((x) => {
          if (x.error) throw x.error;
        }),
        Code.FailedPrecondition,
        "HOSTED",
      );
      await expectCode(
        collect(registries.syncRegistry({ id: "not-a-uuid" })).then((x) => {
          if (x.error) throw x.error;
        }),
        Code.InvalidArgument,
        "id",
      );
    });
  });
});
