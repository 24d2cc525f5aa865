// Retention policies end to end (issue 15), on both databases: skopeo pushes 30 tags, their push
// times are set through the database (the service reads them there), a pull over /v2/ records its
// time within PULL_TIME_FLUSH_MS, the dry run lists exactly what the real run then deletes and
// why, /v2/ tags/list shows the survivors, every deletion is in the audit log, and garbage
// collection removes the freed blob files. Then which policy applies where (the nearest), disabled
// policies, a tag moved while a run waits for it (PostgreSQL), policy CRUD over Connect and REST,
// bad input, and who may manage and run policies.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GarbageCollectionService } from "../gen/artifact/v1/garbage_collection_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import {
  RetentionOutcome,
  RetentionReason,
  RetentionTarget,
  type KeepRule,
  type RetentionDeletion,
  type RetentionPolicy,
  type RetentionPolicySchema,
  type RunRetentionRequest,
} from "../gen/artifact/v1/retention_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ImageService } from "../gen/artifact/v1/image_pb.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds, openTestDatabase } from "./support/database.js";
import { ADMIN_TOKEN, bearer, bindRole, createAccount, identityClients, startAuthServer, type IdentityClients } from "./support/identity.js";
import { smallImage, type BuiltImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { makeImage, RegistryClient, sha256 } from "./support/registry-client.js";
import { dockerRef, pushImage, skopeoCopy, type RegistryEndpoint } from "./support/skopeo.js";
import type { TestServer } from "./support/server.js";

const skopeoReady = havePeers("test/retention.test.ts (skopeo part)", "skopeo");
const DAY_S = 86_400n;
const FLUSH_MS = 500;

type Scope = { registryId: string } | { namespaceId: string } | { repositoryId: string };
const oneof = (scope: Scope): RetentionPolicy["scope"] =>
  "registryId" in scope
    ? { case: "registryId", value: scope.registryId }
    : "namespaceId" in scope
      ? { case: "namespaceId", value: scope.namespaceId }
      : { case: "repositoryId", value: scope.repositoryId };

type PolicyInit = Omit<MessageInitShape<typeof RetentionPolicySchema>, "$typeName">;
/** Rows of db.execute() on either driver. */
const rowsOf = <T>(result: unknown): T[] => (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];

/** RunRetention's scope. */
const at = (scope: Scope): { scope: RunRetentionRequest["scope"] } => ({ scope: oneof(scope) });

// Rules as messages.
const days = (n: number) => ({ seconds: BigInt(Math.round(n * 86_400)) });
const mostRecent = (count: number, tagPattern = ""): KeepRule => ({ kind: { case: "mostRecent", value: { count, tagPattern } } }) as KeepRule;
const pushedWithin = (n: number): KeepRule => ({ kind: { case: "pushedWithin", value: { duration: days(n) } } }) as KeepRule;
const pulledWithin = (n: number): KeepRule => ({ kind: { case: "pulledWithin", value: { duration: days(n) } } }) as KeepRule;
const anyOf = (...rules: KeepRule[]): KeepRule => ({ kind: { case: "anyOf", value: { rules } } }) as KeepRule;

async function eventually<T>(check: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe.each(databaseKinds())("retention, on %s", (kind) => {
  let database: DatabaseHandle;
  let server: TestServer;
  let base: string;
  let admin: IdentityClients;
  let reg: RegistryClient;

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    server = await startAuthServer(kind, { database, config: { retention: { intervalMs: 0, pullTimeFlushMs: FLUSH_MS } } });
    base = server.httpUrl;
    admin = identityClients(base, ADMIN_TOKEN);
    reg = new RegistryClient(base);
  });
  afterAll(() => server?.stop());

  async function hosted(prefix = "ret") {
    const registry = await admin.registries.createRegistry({ registry: { name: unique(prefix), kind: RegistryKind.HOSTED } });
    const namespace = await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team" } });
    const repository = await admin.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "app" } });
    return { registry, namespace, repository, name: `${registry.name}/team/app` };
  }

  /** Sets when tags (and the manifests they point at) were pushed: `ages` in days, by tag name. */
  async function pushedAgo(repositoryId: string, ages: Record<string, number>): Promise<void> {
    for (const [tag, age] of Object.entries(ages)) {
      await database.db.execute(sql`update tags set push_time = now() - ${Math.round(age * 86_400_000)}::bigint * interval '1 millisecond'
        where repository_id = ${repositoryId}::uuid and name = ${tag}`);
      await database.db.execute(sql`update manifests set push_time = now() - ${Math.round(age * 86_400_000)}::bigint * interval '1 millisecond'
        where id = (select manifest_id from tags where repository_id = ${repositoryId}::uuid and name = ${tag})`);
    }
  }

  /** Every page of a run. */
  async function run(
    req: { scope?: RunRetentionRequest["scope"]; dryRun?: boolean; pageSize?: number },
    clients = admin,
  ): Promise<{ deletions: RetentionDeletion[]; pages: number }> {
    const deletions: RetentionDeletion[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await clients.retention.runRetention({ ...req, pageToken });
      deletions.push(...page.deletions);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    return { deletions, pages };
  }

  const summary = (d: RetentionDeletion) =>
    d.target === RetentionTarget.TAG ? `tag ${d.tag} ${RetentionReason[d.reason]}` : `manifest ${d.digest} ${RetentionReason[d.reason]}`;

  describe.skipIf(!skopeoReady)("with skopeo", () => {
    it("30 tags: the dry run lists exactly what the real run deletes, tags/list shows the survivors, GC removes the blobs", async () => {
      const h = await hosted();
      const endpoint: RegistryEndpoint = { host: `127.0.0.1:${server.http.port}` };
      // v1..v10, pushed 100, 90, …, 10 days ago; dev-1..dev-20, pushed 1.5, 2.5, …, 20.5 days ago.
      const ages: Record<string, number> = {};
      for (let i = 1; i <= 10; i++) ages[`v${i}`] = 110 - 10 * i;
      for (let i = 1; i <= 20; i++) ages[`dev-${i}`] = i + 0.5;
      const images: Record<string, BuiltImage> = {};
      for (const tag of Object.keys(ages)) {
        images[tag] = await smallImage(`retention-${tag}`);
        expect(await pushImage(images[tag], endpoint, h.name, tag)).toBe(images[tag].digest);
      }
      await pushedAgo(h.repository.id, ages);
      // A signature of v2's image (a referrer, pushed by digest) and a loose manifest nothing tags.
      const v2 = images.v2!;
      const signature = makeImage({
        artifactType: "application/vnd.example.signature",
        subject: { mediaType: v2.mediaType, digest: v2.digest, size: v2.size },
      });
      for (const blob of signature.blobs) await reg.uploadBlob(h.name, blob);
      expect((await reg.putManifest(h.name, signature.digest, signature.bytes, signature.mediaType)).status).toBe(201);
      const loose = makeImage();
      for (const blob of loose.blobs) await reg.uploadBlob(h.name, blob);
      expect((await reg.putManifest(h.name, loose.digest, loose.bytes, loose.mediaType)).status).toBe(201);
      await database.db.execute(sql`update manifests set push_time = now() - interval '2 days' where digest in (${signature.digest}, ${loose.digest})`);

      // A pull of dev-15 (skopeo copies it out) is recorded within the flush interval; a HEAD of dev-16 is not a pull.
      const dir = await mkdtemp(join(tmpdir(), "retention-pull-"));
      const pulledAt = Date.now();
      try {
        await skopeoCopy(dockerRef(endpoint, h.name, "dev-15"), `dir:${dir}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      expect((await reg.req("HEAD", `/v2/${h.name}/manifests/dev-16`)).status).toBe(200);
      const pulled = await eventually(async () => {
        const t = await admin.tags.lookupTag({ name: `${h.name}:dev-15` });
        expect(t.lastPullTime).toBeDefined();
        return t;
      });
      // Written within the bound (the flush interval, plus the statement and this poll's step).
      const seenAfter = Date.now() - pulledAt;
      expect(seenAfter).toBeLessThan(FLUSH_MS + 2_000);
      expect(Number(pulled.lastPullTime!.seconds) * 1000).toBeGreaterThanOrEqual(Math.floor(pulledAt / 1000) * 1000);
      await new Promise((r) => setTimeout(r, FLUSH_MS * 2));
      expect((await admin.tags.lookupTag({ name: `${h.name}:dev-16` })).lastPullTime).toBeUndefined();
      // A list shows a tag as a get does, pull time included (a page is read another way: as JSON).
      const page = await admin.tags.listTags({ repositoryName: h.name, query: "dev-1", pageSize: 100 });
      expect(page.tags.find((t) => t.name === "dev-15")).toEqual(pulled);
      expect(page.tags.find((t) => t.name === "dev-16")).toEqual(await admin.tags.lookupTag({ name: `${h.name}:dev-16` }));
      // The manifest's pull time too, on the API's GetManifest (which itself counts as a pull).
      const imageClient = createClient(ImageService, createConnectTransport({ baseUrl: base, httpVersion: "1.1", interceptors: [bearer(ADMIN_TOKEN)] }));
      const m = await imageClient.getManifest({ repository: h.name, reference: images["dev-15"]!.digest });
      expect(m.lastPullTime).toBeDefined();

      // The policy: the 3 newest releases, anything pushed this week, anything pulled today;
      // untagged manifests after an hour. An immutability rule keeps v1.
      const policy = await admin.retention.createRetentionPolicy({
        retentionPolicy: {
          scope: oneof({ namespaceId: h.namespace.id }),
          keep: anyOf(mostRecent(3, "v.*"), pushedWithin(7), pulledWithin(1)),
          untaggedGrace: { seconds: 3600n },
          description: "e2e",
        },
      });
      await admin.immutabilityRules.createImmutabilityRule({
        immutabilityRule: { scope: { case: "repositoryId", value: h.repository.id }, tagPattern: "v1" },
      });

      const deletedTags = ["v2", "v3", "v4", "v5", "v6", "v7", ...[7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20].map((i) => `dev-${i}`)].sort();
      const survivors = ["dev-1", "dev-15", "dev-2", "dev-3", "dev-4", "dev-5", "dev-6", "v1", "v10", "v8", "v9"];
      const expected = [
        ...deletedTags.map((t) => `tag ${t} NOT_KEPT`),
        // The manifests of the deleted tags and the loose one, then the signature after its subject.
        ...[...deletedTags.map((t) => images[t]!.digest), loose.digest].sort().map((d) => `manifest ${d} UNTAGGED`),
      ];
      const referrer = `manifest ${signature.digest} REFERRER`;

      const dry = await run({ ...at({ repositoryId: h.repository.id }), dryRun: true, pageSize: 7 });
      expect(dry.pages).toBeGreaterThan(1);
      const listed = dry.deletions.map(summary);
      expect(listed.filter((s) => s !== referrer)).toEqual(expected);
      expect(listed.indexOf(referrer)).toBeGreaterThan(listed.indexOf(`manifest ${v2.digest} UNTAGGED`));
      expect(dry.deletions.every((d) => d.outcome === RetentionOutcome.PLANNED && d.policyId === policy.id)).toBe(true);
      expect(dry.deletions[0]!.policyScope).toBe(`namespace ${h.registry.name}/team`);
      const v5 = dry.deletions.find((d) => d.tag === "v5")!;
      expect(v5.rule).toBe(
        `keep.any_of.rules[0].most_recent: not among the 3 most recently pushed tags matching "v.*"; ` +
          `keep.any_of.rules[1].pushed_within: pushed ${new Date(Number(v5.pushTime!.seconds) * 1000 + v5.pushTime!.nanos / 1e6).toISOString()}, not within 7d; ` +
          `keep.any_of.rules[2].pulled_within: never pulled`,
      );
      expect(dry.deletions.find((d) => d.digest === signature.digest)!.rule).toBe(`referrer of ${v2.digest}, which this run deletes`);
      // The whole dry run again by the scope above it: the same.
      expect((await run({ ...at({ registryId: h.registry.id }), dryRun: true })).deletions.map(summary)).toEqual(listed);
      // Nothing was deleted.
      expect(((await reg.req("GET", `/v2/${h.name}/tags/list`)).json as { tags: string[] }).tags).toHaveLength(30);

      const real = await run({ ...at({ repositoryId: h.repository.id }) });
      expect(real.deletions.map(summary)).toEqual(listed);
      expect(real.deletions.every((d) => d.outcome === RetentionOutcome.DELETED)).toBe(true);
      expect(((await reg.req("GET", `/v2/${h.name}/tags/list`)).json as { tags: string[] }).tags).toEqual(survivors);
      expect((await reg.req("GET", `/v2/${h.name}/manifests/${signature.digest}`)).status).toBe(404);
      expect((await reg.req("GET", `/v2/${h.name}/manifests/v8`)).status).toBe(200);
      // One event per deletion, written with it (the outbox), naming the policy and the rule.
      const events = rowsOf<{ tag: string | null; digest: string; reason: string; actor: string }>(
        await database.db.execute(sql`select data->>'tag' as tag, data->>'digest' as digest, data->>'reason' as reason, data->'actor'->>'name' as actor
          from events where type = 'dev.artifact.retention.deleted' and repository_id = ${h.repository.id}::uuid order by position`),
      );
      // In the order they were deleted (a referrer in the round after its subject): compared as sets.
      expect(events.map((e) => (e.tag ? `tag ${e.tag}` : `manifest ${e.digest}`)).sort()).toEqual(
        real.deletions.map((d) => (d.target === RetentionTarget.TAG ? `tag ${d.tag}` : `manifest ${d.digest}`)).sort(),
      );
      expect(events.every((e) => e.reason.startsWith(`retention policy ${policy.id} (namespace `) && e.actor === "admin")).toBe(true);
      // A second run finds nothing.
      expect((await run({ ...at({ repositoryId: h.repository.id }) })).deletions).toEqual([]);

      // Every deletion in the audit log, naming the policy and the rule.
      const rows = await database.db.execute(sql`select action, resource_name, detail, actor_name from audit_events
        where action like 'retention.delete_%' and resource_name like ${`${h.name}%`} order by resource_name`);
      const list = rowsOf<{ action: string; resource_name: string; detail: string; actor_name: string }>(rows);
      expect(
        list
          .filter((r) => r.action === "retention.delete_tag")
          .map((r) => r.resource_name.split(":")[1])
          .sort(),
      ).toEqual(deletedTags);
      expect(list.filter((r) => r.action === "retention.delete_manifest")).toHaveLength(deletedTags.length + 2);
      expect(list.every((r) => r.actor_name === "admin" && r.detail.startsWith(`retention policy ${policy.id} (namespace ${h.registry.name}/team): `))).toBe(
        true,
      );
      expect(list.find((r) => r.resource_name === `${h.name}:v5`)!.detail).toContain("not-kept: keep.any_of.rules[0].most_recent");

      // Retention deleted rows; garbage collection frees the blobs (past its grace: pushed "long ago").
      const doomedBlobs = deletedTags.flatMap((t) => images[t]!.blobs.map((b) => b.digest)).concat(sha256(loose.layer), sha256(signature.layer));
      const blobFile = (digest: string) => join(server.dataDir, "blobs", "sha256", digest.slice(7, 9), digest.slice(7));
      expect(doomedBlobs.every((d) => existsSync(blobFile(d)))).toBe(true);
      await database.db.execute(sql`update blobs set push_time = now() - interval '2 days'`);
      const gc = createClient(GarbageCollectionService, createConnectTransport({ baseUrl: base, httpVersion: "1.1", interceptors: [bearer(ADMIN_TOKEN)] }));
      const report = await gc.runGarbageCollection({});
      expect(Number(report.blobsDeleted)).toBeGreaterThanOrEqual(new Set(doomedBlobs).size);
      expect(doomedBlobs.filter((d) => existsSync(blobFile(d)))).toEqual([]);
      // The survivors still pull.
      expect(images.v9!.blobs.every((b) => existsSync(blobFile(b.digest)))).toBe(true);
      expect((await reg.req("GET", `/v2/${h.name}/blobs/${images.v9!.manifests[0]!.layers[0]!.digest}`)).status).toBe(200);
    });
  });

  it("the nearest policy applies: a repository's overrides its namespace's, which overrides its registry's; a disabled one only dry-runs", async () => {
    const registry = await admin.registries.createRegistry({ registry: { name: unique("near"), kind: RegistryKind.HOSTED } });
    const ids: Record<string, string> = {};
    for (const path of ["a/x", "a/y", "b/z"]) {
      for (let i = 1; i <= 3; i++) await reg.pushImage(`${registry.name}/${path}`, `t${i}`);
      ids[path] = (await admin.repositories.lookupRepository({ name: `${registry.name}/${path}` })).id;
      await pushedAgo(ids[path], { t1: 3, t2: 2, t3: 1 });
    }
    const nsA = (await admin.namespaces.lookupNamespace({ name: `${registry.name}/a` })).id;
    const create = (scope: Scope, keep: KeepRule, more: PolicyInit = {}) =>
      admin.retention.createRetentionPolicy({ retentionPolicy: { scope: oneof(scope), keep, ...more } });
    const onRegistry = await create({ registryId: registry.id }, mostRecent(1));
    const onNamespace = await create({ namespaceId: nsA }, mostRecent(2));
    const onRepository = await create({ repositoryId: ids["a/y"]! }, mostRecent(3), { disabled: true });
    // One policy per scope.
    await expectCode(create({ namespaceId: nsA }, mostRecent(5)), Code.AlreadyExists, /already has a retention policy/);

    const dry = await run({ ...at({ registryId: registry.id }), dryRun: true });
    const by = (d: RetentionDeletion) => `${d.repositoryName.split("/").slice(1).join("/")}:${d.tag} ${d.policyId}`;
    expect(dry.deletions.map(by).sort()).toEqual([`a/x:t1 ${onNamespace.id}`, `b/z:t1 ${onRegistry.id}`, `b/z:t2 ${onRegistry.id}`].sort());
    // Disabled: a dry run shows it (a y policy keeping 1 would delete two), a real run skips it.
    await admin.retention.updateRetentionPolicy({ retentionPolicy: { id: onRepository.id, keep: mostRecent(1) }, updateMask: { paths: ["keep"] } });
    const dry2 = await run({ ...at({ repositoryId: ids["a/y"]! }), dryRun: true });
    expect(dry2.deletions.map((d) => d.tag)).toEqual(["t1", "t2"]);
    const page = await admin.retention.runRetention({ ...at({ repositoryId: ids["a/y"]! }) });
    expect(page.deletions).toEqual([]);
    expect(page.stats).toMatchObject({ repositories: 1n, repositoriesDisabled: 1n, tagsDeleted: 0n });
    // Deleting the repository's policy falls back to the namespace's.
    await admin.retention.deleteRetentionPolicy({ id: onRepository.id });
    expect((await run({ ...at({ repositoryId: ids["a/y"]! }), dryRun: true })).deletions.map((d) => [d.tag, d.policyId])).toEqual([["t1", onNamespace.id]]);
    // Real over the registry: survivors per repository.
    await run({ ...at({ registryId: registry.id }) });
    const tagsOf = async (path: string) => ((await reg.req("GET", `/v2/${registry.name}/${path}/tags/list`)).json as { tags: string[] }).tags;
    expect([await tagsOf("a/x"), await tagsOf("a/y"), await tagsOf("b/z")]).toEqual([["t2", "t3"], ["t2", "t3"], ["t3"]]);
  });

  it.skipIf(kind !== "postgres")("a tag moved while the run waits for its row is left alone (SKIPPED)", async () => {
    const h = await hosted("race");
    for (const t of ["old", "older"]) await reg.pushImage(h.name, t);
    await pushedAgo(h.repository.id, { old: 10, older: 20 });
    await admin.retention.createRetentionPolicy({ retentionPolicy: { scope: oneof({ repositoryId: h.repository.id }), keep: pushedWithin(7) } });
    const moved = makeImage();
    for (const blob of moved.blobs) await reg.uploadBlob(h.name, blob);
    // Another transaction holds the row of "old" and moves it; the run's DELETE waits for it.
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const mover = database.db.transaction(async (tx) => {
      await tx.execute(sql`select 1 from tags where repository_id = ${h.repository.id}::uuid and name = 'old' for update`);
      locked();
      await held;
      await tx.execute(sql`update tags set version = version + 1, push_time = now() where repository_id = ${h.repository.id}::uuid and name = 'old'`);
    });
    await isLocked;
    const running = admin.retention.runRetention({ ...at({ repositoryId: h.repository.id }) });
    await new Promise((r) => setTimeout(r, 300));
    release();
    await mover;
    const page = await running;
    const outcome = Object.fromEntries(page.deletions.map((d) => [d.tag, RetentionOutcome[d.outcome]]));
    expect(outcome).toEqual({ old: "SKIPPED", older: "DELETED" });
    expect(page.stats).toMatchObject({ tagsDeleted: 1n, skipped: 1n });
    expect(((await reg.req("GET", `/v2/${h.name}/tags/list`)).json as { tags: string[] }).tags).toEqual(["old"]);
  });

  it("an immutability rule added after the plan protects its tag from the real run; delete_immutable deletes it, naming the rule", async () => {
    const h = await hosted("imm");
    for (const t of ["1.0", "1.1", "2.0"]) await reg.pushImage(h.name, t);
    await pushedAgo(h.repository.id, { "1.0": 30, "1.1": 20, "2.0": 10 });
    const rule = await admin.immutabilityRules.createImmutabilityRule({
      immutabilityRule: { scope: oneof({ repositoryId: h.repository.id }), tagPattern: "1\\..*" },
    });
    const policy = await admin.retention.createRetentionPolicy({ retentionPolicy: { scope: oneof({ repositoryId: h.repository.id }), keep: mostRecent(1) } });
    const page = await admin.retention.runRetention({ ...at({ repositoryId: h.repository.id }), dryRun: true });
    expect(page.deletions).toEqual([]);
    expect(page.stats?.immutableKept).toBe(2n);
    await admin.retention.updateRetentionPolicy({ retentionPolicy: { id: policy.id, deleteImmutable: true }, updateMask: { paths: ["delete_immutable"] } });
    const real = await admin.retention.runRetention({ ...at({ repositoryId: h.repository.id }) });
    expect(real.deletions.map((d) => [d.tag, d.immutabilityRuleId, RetentionOutcome[d.outcome]])).toEqual([
      ["1.0", rule.id, "DELETED"],
      ["1.1", rule.id, "DELETED"],
    ]);
    const rows = await database.db.execute(sql`select detail from audit_events where action = 'retention.delete_tag' and resource_name = ${`${h.name}:1.0`}`);
    const [row] = rowsOf<{ detail: string }>(rows);
    expect(row!.detail).toContain(`immutable under rule ${rule.id}, deleted because the policy has delete_immutable`);
  });

  it("policies over Connect: create, get, update with etags, list, delete; bad input is INVALID_ARGUMENT naming the field", async () => {
    const h = await hosted("crud");
    const p = admin.retention;
    const created = await p.createRetentionPolicy({
      retentionPolicy: {
        scope: oneof({ namespaceId: h.namespace.id }),
        keep: anyOf(mostRecent(10), pushedWithin(7)),
        untaggedGrace: { seconds: 7n * DAY_S },
        description: "d",
      },
    });
    expect(created).toMatchObject({ scope: { case: "namespaceId", value: h.namespace.id }, scopeName: `${h.registry.name}/team`, etag: "1", description: "d" });
    expect(created.untaggedGrace?.seconds).toBe(7n * DAY_S);
    expect(await p.getRetentionPolicy({ id: created.id })).toEqual(created);
    const updated = await p.updateRetentionPolicy({ retentionPolicy: { id: created.id, disabled: true, etag: "1" }, updateMask: { paths: ["disabled"] } });
    expect(updated).toMatchObject({ disabled: true, etag: "2", description: "d" });
    expect(updated.keep).toEqual(created.keep);
    await expectCode(
      p.updateRetentionPolicy({ retentionPolicy: { id: created.id, disabled: false, etag: "1" }, updateMask: { paths: ["disabled"] } }),
      Code.Aborted,
    );
    await expectCode(
      p.updateRetentionPolicy({ retentionPolicy: { id: created.id }, updateMask: { paths: ["keep", "untagged_grace"] } }),
      Code.InvalidArgument,
      /set keep, untagged_grace or both/,
    );
    const repoPolicy = await p.createRetentionPolicy({
      retentionPolicy: { scope: oneof({ repositoryId: h.repository.id }), untaggedGrace: { seconds: 3600n } },
    });
    expect((await p.listRetentionPolicies({ repositoryId: h.repository.id, inherited: true })).retentionPolicies.map((x) => x.id).sort()).toEqual(
      [created.id, repoPolicy.id].sort(),
    );
    expect((await p.listRetentionPolicies({ repositoryId: h.repository.id })).totalSize).toBe(1);
    await p.deleteRetentionPolicy({ id: repoPolicy.id, etag: repoPolicy.etag });
    await expectCode(p.getRetentionPolicy({ id: repoPolicy.id }), Code.NotFound);

    const bad = (retentionPolicy: PolicyInit, mentions: string | RegExp) =>
      expectCode(
        p.createRetentionPolicy({ retentionPolicy: { scope: oneof({ repositoryId: h.repository.id }), ...retentionPolicy } }),
        Code.InvalidArgument,
        mentions,
      );
    await bad({ keep: mostRecent(0) }, "retention_policy.keep.most_recent.count: must be from 1 to 1000000");
    await bad(
      { keep: anyOf(pushedWithin(1), { kind: { case: "matching", value: { tagPattern: "(a" } } } as KeepRule) },
      "retention_policy.keep.any_of.rules[1].matching.tag_pattern",
    );
    await bad({ keep: { kind: { case: undefined } } }, "retention_policy.keep: set one of all_of");
    await bad({ keep: pushedWithin(0) }, "retention_policy.keep.pushed_within.duration: must be from 1s");
    await bad({ untaggedGrace: { seconds: 60n } }, "retention_policy.untagged_grace: must be from 1h");
    await bad({}, "set keep, untagged_grace or both");
    let deep: KeepRule = mostRecent(1);
    for (let i = 0; i < 9; i++) deep = { kind: { case: "not", value: deep } } as KeepRule;
    await bad({ keep: deep }, "a keep rule nests at most 8 levels deep");
    await bad({ keep: anyOf(...Array.from({ length: 70 }, () => mostRecent(1))) }, "a keep rule has at most 64 rules");
    await expectCode(
      p.createRetentionPolicy({ retentionPolicy: { keep: mostRecent(1) } }),
      Code.InvalidArgument,
      /one of registry_id, namespace_id and repository_id/,
    );
    await expectCode(p.runRetention({ ...at({ repositoryId: h.repository.id }), pageSize: -1 }), Code.InvalidArgument, /page_size/);
    await expectCode(p.runRetention({ ...at({ repositoryId: h.repository.id }), pageToken: "bogus" }), Code.InvalidArgument, /page_token/);
    await expectCode(p.runRetention({ ...at({ repositoryId: "not-a-uuid" }) }), Code.InvalidArgument, /repository_id/);
    await expectCode(p.runRetention({ ...at({ repositoryId: "00000000-0000-4000-8000-000000000000" }) }), Code.NotFound);
    // A REMOTE registry takes no policy.
    const remote = await admin.registries.createRegistry({ registry: { name: unique("remote"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
    await expectCode(
      p.createRetentionPolicy({ retentionPolicy: { scope: oneof({ registryId: remote.id }), keep: mostRecent(1) } }),
      Code.FailedPrecondition,
      /HOSTED/,
    );
  });

  it("policies over REST: /v1/retention-policies, the scopes' collections and /v1/retention:run", async () => {
    const h = await hosted("rest");
    await reg.pushImage(h.name, "a");
    await reg.pushImage(h.name, "b");
    await pushedAgo(h.repository.id, { a: 2, b: 1 });
    const json = { "content-type": "application/json" };
    const created = await adminFetch(`${base}/v1/retention-policies`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ repositoryId: h.repository.id, keep: { mostRecent: { count: 1 } }, untaggedGrace: "7200s" }),
    });
    expect(created.status).toBe(200);
    const policy = (await created.json()) as { id: string; scopeName: string; untaggedGrace: string; keep: unknown };
    expect(policy).toMatchObject({ scopeName: h.name, untaggedGrace: "7200s", keep: { mostRecent: { count: 1 } } });
    const listed = (await (await adminFetch(`${base}/v1/repositories/${h.repository.id}/retention-policies`)).json()) as { totalSize: number };
    expect(listed.totalSize).toBe(1);
    const dry = await adminFetch(`${base}/v1/retention:run`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ repositoryId: h.repository.id, dryRun: true }),
    });
    expect(dry.status).toBe(200);
    expect(await dry.json()).toMatchObject({
      dryRun: true,
      deletions: [
        { target: "RETENTION_TARGET_TAG", tag: "a", reason: "RETENTION_REASON_NOT_KEPT", outcome: "RETENTION_OUTCOME_PLANNED" },
        // Its manifest, pushed two days ago, is untagged once the tag goes: past the 2 hours.
        { target: "RETENTION_TARGET_MANIFEST", reason: "RETENTION_REASON_UNTAGGED", rule: expect.stringContaining("neither within 2h") as unknown },
      ],
    });
    const bad = await adminFetch(`${base}/v1/retention-policies/${policy.id}?update_mask=keep`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ keep: { pulledWithin: { duration: "0.5s" } } }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/retention_policy.keep.pulled_within.duration/) as unknown,
    });
    expect((await adminFetch(`${base}/v1/retention-policies/${policy.id}`, { method: "DELETE" })).status).toBe(200);
    const anonymous = await fetch(`${base}/v1/retention:run`, { method: "POST", headers: json, body: "{}" });
    expect(anonymous.status).toBe(401);
  });

  it("admins of a scope manage its policy and run it; readers read it; writers and outsiders may not", async () => {
    const h = await hosted("perm");
    const nsAdmin = await createAccount(admin, base);
    const writer = await createAccount(admin, base);
    const reader = await createAccount(admin, base);
    await bindRole(admin, nsAdmin.id, "admin", { namespaceId: h.namespace.id });
    await bindRole(admin, writer.id, "writer", { namespaceId: h.namespace.id });
    await bindRole(admin, reader.id, "reader", { namespaceId: h.namespace.id });
    const policyOn = (scope: Scope) => ({ retentionPolicy: { scope: oneof(scope), keep: mostRecent(5) } });
    await expectCode(writer.clients.retention.createRetentionPolicy(policyOn({ namespaceId: h.namespace.id })), Code.PermissionDenied);
    await expectCode(nsAdmin.clients.retention.createRetentionPolicy(policyOn({ registryId: h.registry.id })), Code.PermissionDenied);
    const policy = await nsAdmin.clients.retention.createRetentionPolicy(policyOn({ namespaceId: h.namespace.id }));
    expect((await reader.clients.retention.getRetentionPolicy({ id: policy.id })).id).toBe(policy.id);
    expect((await reader.clients.retention.listRetentionPolicies({})).retentionPolicies.map((x) => x.id)).toContain(policy.id);
    await expectCode(
      reader.clients.retention.updateRetentionPolicy({ retentionPolicy: { id: policy.id, disabled: true }, updateMask: { paths: ["disabled"] } }),
      Code.PermissionDenied,
    );
    await expectCode(writer.clients.retention.deleteRetentionPolicy({ id: policy.id }), Code.PermissionDenied);
    await expectCode(reader.clients.retention.runRetention({ ...at({ namespaceId: h.namespace.id }), dryRun: true }), Code.PermissionDenied);
    await expectCode(writer.clients.retention.runRetention({ ...at({ repositoryId: h.repository.id }) }), Code.PermissionDenied);
    // Without a scope: every repository, a global admin's.
    await expectCode(nsAdmin.clients.retention.runRetention({ dryRun: true }), Code.PermissionDenied);
    expect((await nsAdmin.clients.retention.runRetention({ ...at({ namespaceId: h.namespace.id }), dryRun: true })).dryRun).toBe(true);
    expect((await nsAdmin.clients.retention.runRetention({ ...at({ repositoryId: h.repository.id }) })).dryRun).toBe(false);
    expect((await admin.retention.runRetention({ dryRun: true })).dryRun).toBe(true);
    await nsAdmin.clients.retention.deleteRetentionPolicy({ id: policy.id });
    // Policy changes are in the audit log.
    const rows = await database.db.execute(sql`select action, actor_name from audit_events where resource_id = ${policy.id} order by event_time`);
    const list = rowsOf<{ action: string; actor_name: string }>(rows);
    expect(list.filter((r) => r.action.startsWith("retention_policy.")).map((r) => [r.action, r.actor_name])).toEqual([
      ["retention_policy.create", nsAdmin.name],
      ["retention_policy.delete", nsAdmin.name],
    ]);
  });
});
