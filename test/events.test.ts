// EventService.WatchEvents and what the outbox records (issue 15), on both databases: a watch
// replays the events after a position and then follows pushes as they are committed (skopeo and
// the registry client pushing), over Connect, gRPC, gRPC-Web and REST; resuming from a message's
// position repeats and skips nothing; a caller sees only what it may read; tag changes through the
// API, pulls (EVENTS_PULL), syncs and retention deletions are events with their actor; pruning by
// EVENTS_RETENTION_DAYS makes an older resume point OUT_OF_RANGE.
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventService, type Event, type WatchEventsResponse } from "../gen/artifact/v1/event_pb.js";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { NamespaceService } from "../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistryService } from "../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../gen/artifact/v1/repository_pb.js";
import { TagService } from "../gen/artifact/v1/tag_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchEventsRequestSchema } from "../gen/artifact/v1/event_pb.js";
import { recordRetentionDeletion } from "../src/store/events.js";
import { expectCode, unique } from "./support/clients.js";
import { ADMIN_AUTHORIZATION } from "./support/credentials.js";
import { databaseKinds } from "./support/database.js";
import { startDistribution } from "./support/distribution.js";
import { bearer, bindRole, createAccount, identityClients } from "./support/identity.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { seedRepositories } from "./support/registry-seed.js";
import { RegistryClient } from "./support/registry-client.js";
import { callTransport, startTestServer, transports, baseUrlFor, type TestServer } from "./support/server.js";
import { pushImage } from "./support/skopeo.js";

type WatchRequest = MessageInitShape<typeof WatchEventsRequestSchema>;
const PUSHED = "dev.artifact.image.pushed";

/** A watch read one message at a time; close() ends it. */
function openWatch(client: Client<typeof EventService>, request: WatchRequest) {
  const controller = new AbortController();
  const iterator = client.watchEvents(request, { signal: controller.signal })[Symbol.asyncIterator]();
  return {
    async next(): Promise<WatchEventsResponse> {
      const result = await iterator.next();
      if (result.done) throw new Error("the watch ended");
      return result.value;
    },
    /** Messages until `count` events came (heartbeats and empty live markers included in between). */
    async events(count: number): Promise<{ events: Event[]; last: WatchEventsResponse }> {
      const events: Event[] = [];
      let last: WatchEventsResponse | undefined;
      while (events.length < count) {
        last = await this.next();
        events.push(...last.events);
      }
      return { events, last: last! };
    },
    close: () => controller.abort(),
  };
}

/** The first message of a watch: with after_position, the past events (up to 100). */
async function firstMessage(client: Client<typeof EventService>, request: WatchRequest): Promise<WatchEventsResponse> {
  const watch = openWatch(client, request);
  try {
    return await watch.next();
  } finally {
    watch.close();
  }
}

describe.each(databaseKinds())("events on %s", (kind) => {
  let server: TestServer;
  let events: Client<typeof EventService>;
  let registries: Client<typeof RegistryService>;
  let namespaces: Client<typeof NamespaceService>;
  let registry: RegistryClient;

  beforeAll(async () => {
    // Every pull is an event here (EVENTS_PULL=on); the tests filter by type and registry.
    server = await startTestServer(kind, { config: { events: { pullSampleRate: 1, retentionDays: 7 } } });
    const transport = callTransport(server);
    events = createClient(EventService, transport);
    registries = createClient(RegistryService, transport);
    namespaces = createClient(NamespaceService, transport);
    registry = new RegistryClient(server.httpUrl);
  });
  afterAll(() => server?.stop());

  const hosted = async (prefix = "ev") => registries.createRegistry({ registry: { name: unique(prefix), kind: RegistryKind.HOSTED } });

  describe.each(Object.keys(transports))("over %s", (transportName) => {
    it("replays the events after a position, then follows pushes as they commit; a resume repeats and skips nothing", async () => {
      const client = createClient(EventService, transports[transportName]!(baseUrlFor(transportName, server)));
      const reg = await hosted();
      const name = `${reg.name}/team/app`;
      // Without after_position: only what comes next; the first message says where "now" is.
      const now = await firstMessage(client, { registryId: reg.id });
      expect(now).toMatchObject({ events: [], live: true });
      await registry.pushImage(name, "one");
      await registry.pushImage(name, "two");

      const watch = openWatch(client, { registryId: reg.id, afterPosition: now.position, types: [PUSHED] });
      try {
        const past = await watch.next();
        expect(past.live).toBe(true);
        expect(past.events.map((e) => e.data?.tag)).toEqual(["one", "two"]);
        expect(past.events[0]).toMatchObject({
          type: PUSHED,
          source: `/v1/registries/${reg.id}`,
          subject: name,
          registryId: reg.id,
          data: { registry: reg.name, namespace: "team", repository: "app", actor: { name: "admin" } },
        });
        expect(past.events[0]!.position < past.events[1]!.position).toBe(true);
        expect(past.position).toBe(past.events[1]!.position);
        // Live: a push while the stream is open arrives on it.
        await registry.pushImage(name, "three");
        const live = await watch.events(1);
        expect(live.events.map((e) => e.data?.tag)).toEqual(["three"]);
        expect(live.last.live).toBe(true);

        // Resuming after the first event gives exactly what followed it.
        const resumed = await firstMessage(client, { registryId: reg.id, afterPosition: past.events[0]!.position, types: [PUSHED] });
        expect(resumed.events.map((e) => e.data?.tag)).toEqual(["two", "three"]);
        expect(resumed.events.map((e) => e.id)).toEqual([past.events[1]!.id, live.events[0]!.id]);
      } finally {
        watch.close();
      }
    });
  });

  it.skipIf(!havePeers("test/events.test.ts (skopeo)", "skopeo"))("follows a skopeo push live", async () => {
    const reg = await hosted("skopeo");
    const image = await smallImage("events");
    const watch = openWatch(events, { registryId: reg.id, types: [PUSHED] });
    try {
      expect((await watch.next()).live).toBe(true);
      const digest = await pushImage(image, { host: new URL(server.httpUrl).host }, `${reg.name}/team/tool`, "1.0");
      const { events: got } = await watch.events(1);
      expect(got[0]).toMatchObject({ subject: `${reg.name}/team/tool`, data: { tag: "1.0", digest, actor: { name: "admin" } } });
    } finally {
      watch.close();
    }
  });

  it("pages a long replay by 100, with live set on the last page only", async () => {
    const reg = await hosted("long");
    const start = (await firstMessage(events, { registryId: reg.id })).position;
    const name = `${reg.name}/team/app`;
    const image = await registry.pushImage(name, "t0");
    for (let i = 1; i < 105; i++) await registry.putManifest(name, `t${i}`, image.bytes, image.mediaType);
    const watch = openWatch(events, { registryId: reg.id, afterPosition: start });
    try {
      const first = await watch.next();
      const second = await watch.next();
      expect([first.events.length, first.live, second.events.length, second.live]).toEqual([100, false, 5, true]);
      expect([...first.events, ...second.events].map((e) => e.data?.tag)).toEqual(Array.from({ length: 105 }, (_, i) => `t${i}`));
      expect(first.position).toBe(first.events[99]!.position);
    } finally {
      watch.close();
    }
  });

  it("streams over REST as newline-delimited JSON", async () => {
    const reg = await hosted("rest");
    await registry.pushImage(`${reg.name}/team/app`, "1.0");
    const controller = new AbortController();
    const res = await fetch(`${server.httpUrl}/v1/events:watch?afterPosition=0&registryId=${reg.id}&types=${PUSHED}`, {
      headers: { authorization: ADMIN_AUTHORIZATION },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("\n")) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += decoder.decode(chunk.value as Uint8Array);
    }
    controller.abort();
    const first = JSON.parse(text.split("\n")[0]!) as { events: { type: string; data: { tag: string } }[]; live: boolean };
    expect(first.live).toBe(true);
    expect(first.events.map((e) => [e.type, e.data.tag])).toEqual([[PUSHED, "1.0"]]);
  });

  it("shows a caller only the events of what it may read", async () => {
    const admin = identityClients(server.httpUrl, undefined, callTransport(server));
    const reg = await hosted("acl");
    const teamA = await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "team-a" } });
    await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "team-b" } });
    const open = await namespaces.createNamespace({ namespace: { registryId: reg.id, name: "open", public: true } });
    const reader = await createAccount(admin, server.httpUrl);
    await bindRole(admin, reader.id, "reader", { namespaceId: teamA.id });
    const asReader = createClient(EventService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1", interceptors: [bearer(reader.token)] }));
    const anonymous = createClient(EventService, createConnectTransport({ baseUrl: server.httpUrl, httpVersion: "1.1" }));
    const start = (await firstMessage(events, { registryId: reg.id })).position;
    for (const ns of ["team-a", "team-b", "open"]) await registry.pushImage(`${reg.name}/${ns}/app`, "1.0");
    const subjects = async (client: Client<typeof EventService>) =>
      (await firstMessage(client, { registryId: reg.id, afterPosition: start, types: [PUSHED] })).events.map((e) => e.subject);
    expect(await subjects(events)).toEqual([`${reg.name}/team-a/app`, `${reg.name}/team-b/app`, `${reg.name}/open/app`]);
    expect(await subjects(asReader)).toEqual([`${reg.name}/team-a/app`, `${reg.name}/open/app`]);
    expect(await subjects(anonymous)).toEqual([`${reg.name}/open/app`]);
    // The namespace filter.
    const onlyOpen = await firstMessage(events, { namespaceId: open.id, afterPosition: start });
    expect(onlyOpen.events.map((e) => e.subject)).toEqual([`${reg.name}/open/app`]);
  });

  it("records tag changes through the API as tag.moved and tag.deleted, with their actor", async () => {
    const reg = await hosted("tags");
    const name = `${reg.name}/team/app`;
    const one = await registry.pushImage(name, "1.0");
    const two = await registry.pushImage(name, "2.0");
    const repository = await createClient(RepositoryService, callTransport(server)).lookupRepository({ name });
    const tags = createClient(TagService, callTransport(server));
    const start = (await firstMessage(events, { registryId: reg.id })).position;
    const created = await tags.createTag({ tag: { repositoryId: repository.id, name: "stable", digest: one.digest } });
    const moved = await tags.updateTag({ tag: { id: created.id, digest: two.digest }, updateMask: { paths: ["digest"] } });
    // An update that does not move it is no event.
    await tags.updateTag({ tag: { id: moved.id, digest: two.digest }, updateMask: { paths: ["digest"] } });
    await tags.deleteTag({ id: moved.id });
    const got = (await firstMessage(events, { registryId: reg.id, afterPosition: start })).events;
    expect(got.map((e) => [e.type, e.data?.tag, e.data?.digest, e.data?.previousDigest])).toEqual([
      ["dev.artifact.tag.moved", "stable", one.digest, ""],
      ["dev.artifact.tag.moved", "stable", two.digest, one.digest],
      ["dev.artifact.tag.deleted", "stable", two.digest, ""],
    ]);
    expect(got.every((e) => e.data?.actor?.name === "admin" && e.data.actor.id !== "")).toBe(true);
    // A push over an existing tag says what it pointed at before.
    await registry.putManifest(name, "1.0", two.bytes, two.mediaType);
    const push = (await firstMessage(events, { registryId: reg.id, afterPosition: got[2]!.position })).events;
    expect(push.map((e) => [e.type, e.data?.tag, e.data?.digest, e.data?.previousDigest])).toEqual([[PUSHED, "1.0", two.digest, one.digest]]);
  });

  it("records manifest pulls (EVENTS_PULL=on): GETs by tag and digest, not HEADs", async () => {
    const reg = await hosted("pulls");
    const name = `${reg.name}/team/app`;
    const image = await registry.pushImage(name, "1.0");
    const start = (await firstMessage(events, { registryId: reg.id })).position;
    const accept = { accept: image.mediaType };
    expect((await registry.req("GET", `/v2/${name}/manifests/1.0`, { headers: accept })).status).toBe(200);
    expect((await registry.req("HEAD", `/v2/${name}/manifests/1.0`, { headers: accept })).status).toBe(200);
    expect((await registry.req("GET", `/v2/${name}/manifests/${image.digest}`, { headers: accept })).status).toBe(200);
    const watch = openWatch(events, { registryId: reg.id, afterPosition: start, types: ["dev.artifact.image.pulled"] });
    try {
      // Written in a batch within a second of the pulls.
      const { events: pulls } = await watch.events(2);
      expect(pulls.map((e) => [e.subject, e.data?.tag, e.data?.digest, e.data?.sizeBytes, e.data?.actor?.name])).toEqual([
        [name, "1.0", image.digest, BigInt(image.bytes.length), "admin"],
        [name, "", image.digest, BigInt(image.bytes.length), "admin"],
      ]);
    } finally {
      watch.close();
    }
  });

  it("records a sync's end as registry.synced, with its totals or the error that stopped it", async () => {
    const dead = await registries.createRegistry({ registry: { name: unique("dead"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
    await expectCode(
      (async () => {
        for await (const _ of registries.syncRegistry({ id: dead.id }));
      })(),
      Code.Unavailable,
    );
    const failed = (await firstMessage(events, { registryId: dead.id, afterPosition: 0n })).events;
    expect(failed.map((e) => e.type)).toEqual(["dev.artifact.registry.synced"]);
    expect(failed[0]).toMatchObject({ subject: dead.name, namespaceId: "", repositoryId: "", data: { registry: dead.name, actor: { name: "admin" } } });
    expect(failed[0]!.data?.sync?.error).toMatch(/refused the connection/);

    if (!havePeers("test/events.test.ts (sync)", "docker-registry")) return;
    const upstream = await startDistribution();
    try {
      await seedRepositories(upstream, await smallImage("events-sync"), { repos: ["proj/app"], tags: ["1.0", "2.0"] });
      const remote = await registries.createRegistry({ registry: { name: unique("remote"), kind: RegistryKind.REMOTE, url: upstream.url } });
      for await (const _ of registries.syncRegistry({ id: remote.id }));
      const synced = (await firstMessage(events, { registryId: remote.id, afterPosition: 0n })).events;
      expect(synced.map((e) => e.type)).toEqual(["dev.artifact.registry.synced"]);
      expect(synced[0]!.data?.sync).toMatchObject({ repositoriesFound: 1, repositoriesSynced: 1, tagsAdded: 2, errors: 0, error: "" });
    } finally {
      await upstream.stop();
    }
  });

  it("takes retention deletions in the deleting transaction, as retention.deleted", async () => {
    const reg = await hosted("retention");
    const name = `${reg.name}/team/app`;
    const image = await registry.pushImage(name, "old");
    const repository = await createClient(RepositoryService, callTransport(server)).lookupRepository({ name });
    const start = (await firstMessage(events, { registryId: reg.id })).position;
    await server.database.db.transaction((tx) =>
      recordRetentionDeletion(tx, { repositoryId: repository.id, tag: "old", digest: image.digest, reason: "keep the 10 most recently pushed" }),
    );
    // A transaction that rolls back takes its event with it.
    await server.database.db
      .transaction(async (tx) => {
        await recordRetentionDeletion(tx, { repositoryId: repository.id, tag: "never", digest: image.digest, reason: "rolled back" });
        throw new Error("roll back");
      })
      .catch(() => undefined);
    const got = (await firstMessage(events, { registryId: reg.id, afterPosition: start })).events;
    expect(got.map((e) => [e.type, e.data?.tag, e.data?.reason, e.data?.actor?.name])).toEqual([
      ["dev.artifact.retention.deleted", "old", "keep the 10 most recently pushed", "retention"],
    ]);
  });

  it("refuses bad watches with INVALID_ARGUMENT", async () => {
    await expectCode(firstMessage(events, { types: ["push"] }), Code.InvalidArgument, /types\[0\].*not an event type/);
    await expectCode(firstMessage(events, { afterPosition: -1n }), Code.InvalidArgument, /after_position/);
    await expectCode(firstMessage(events, { registryId: "nope" }), Code.InvalidArgument, /registry_id/);
  });

  // Last: it deletes events every other test could see.
  it("prunes events past EVENTS_RETENTION_DAYS in garbage collection; a resume point before them is OUT_OF_RANGE", async () => {
    const reg = await hosted("prune");
    await registry.pushImage(`${reg.name}/team/app`, "old");
    await registry.pushImage(`${reg.name}/team/app`, "new");
    const all = (await firstMessage(events, { registryId: reg.id, afterPosition: 0n, types: [PUSHED] })).events;
    expect(all.map((e) => e.data?.tag)).toEqual(["old", "new"]);
    await server.database.db.execute(`update events set time = now() - interval '8 days' where position <= ${all[0]!.position}`);
    await createClient(GarbageCollectionService, callTransport(server)).runGarbageCollection({ dryRun: false });
    expect((await firstMessage(events, { registryId: reg.id, afterPosition: 0n, types: [PUSHED] })).events.map((e) => e.data?.tag)).toEqual(["new"]);
    await expectCode(firstMessage(events, { afterPosition: 1n }), Code.OutOfRange, /EVENTS_RETENTION_DAYS/);
    expect((await firstMessage(events, { registryId: reg.id, afterPosition: all[0]!.position, types: [PUSHED] })).events.map((e) => e.data?.tag)).toEqual([
      "new",
    ]);
  });
});
