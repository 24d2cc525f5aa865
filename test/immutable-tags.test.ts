// Immutable tags (issue 15): which rule protects which tag (table tests on the store's own query,
// both databases), every way a protected tag could change refused — on /v2/ with DENIED naming the
// rule, on the API with FAILED_PRECONDITION — while a first push and a same-digest re-push go
// through, skopeo end to end, the rules' CRUD over Connect and REST, who may manage them, and the
// audit log of rule changes and refusals.
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditOutcome } from "../gen/artifact/v1/audit_pb.js";
import { ImmutabilityRuleService, type ImmutabilityRule } from "../gen/artifact/v1/immutability_rule_pb.js";
import { RegistryKind } from "../gen/artifact/v1/registry_pb.js";
import type { DatabaseHandle } from "../src/db/database.js";
import { protectingRule } from "../src/domain/immutability.js";
import { protectingRuleFor } from "../src/store/immutability.js";
import { expectCode, unique } from "./support/clients.js";
import { adminFetch } from "./support/credentials.js";
import { databaseKinds, openTestDatabase } from "./support/database.js";
import { ADMIN_TOKEN, basic, bindRole, createAccount, identityClients, startAuthServer, type IdentityClients } from "./support/identity.js";
import { smallImage } from "./support/oci-images.js";
import { havePeers } from "./support/peers.js";
import { expectOciError, makeImage, makeIndex, RegistryClient, type PushedImage } from "./support/registry-client.js";
import { dockerRef, pushImage, skopeoDelete, skopeoInspect, type RegistryEndpoint } from "./support/skopeo.js";
import { transports, type TestServer } from "./support/server.js";

const skopeoReady = havePeers("test/immutable-tags.test.ts (skopeo part)", "skopeo");

type Scope = { registryId: string } | { namespaceId: string } | { repositoryId: string };
const oneof = (scope: Scope): ImmutabilityRule["scope"] =>
  "registryId" in scope
    ? { case: "registryId", value: scope.registryId }
    : "namespaceId" in scope
      ? { case: "namespaceId", value: scope.namespaceId }
      : { case: "repositoryId", value: scope.repositoryId };

/** Polls until `check` stops throwing (audit events of /v2/ are written when the response closes). */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 3_000): Promise<T> {
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

describe("protectingRule: the nearest scope's matching rule", () => {
  const rule = (id: string, kind: "registry" | "namespace" | "repository", tagPattern: string) => ({ id, tagPattern, scope: { kind, name: "x" } });
  const rules = [
    rule("reg-semver", "registry", "^v[0-9]+\\.[0-9]+\\.[0-9]+$"),
    rule("ns-release", "namespace", "release-.*"),
    rule("repo-v1", "repository", "v1\\..*"),
    rule("reg-any-v", "registry", "v.*"),
    rule("repo-latest", "repository", "latest"),
  ];
  it.each([
    ["v1.2.3", "repo-v1"],
    ["v2.0.0", "reg-semver"],
    ["v2.0", "reg-any-v"],
    ["v1.2.3-rc1", "repo-v1"],
    ["release-1", "ns-release"],
    ["pre-release-1", undefined],
    ["latest", "repo-latest"],
    ["latest-1", undefined],
    ["V1.2.3", undefined],
    ["1.0", undefined],
  ])("%s → %s", (tag, expected) => {
    expect(protectingRule(rules, tag)?.id).toBe(expected);
  });
});

describe.each(databaseKinds())("immutable tags, on %s", (kind) => {
  let database: DatabaseHandle;
  let server: TestServer;
  let base: string;
  let admin: IdentityClients;
  let reg: RegistryClient;

  beforeAll(async () => {
    database = await openTestDatabase(kind);
    server = await startAuthServer(kind, { database });
    base = server.httpUrl;
    admin = identityClients(base, ADMIN_TOKEN);
    reg = new RegistryClient(base);
  });
  afterAll(() => server?.stop());

  /** A HOSTED registry with namespace `team` and repository `app` (created over the API). */
  async function hosted() {
    const registry = await admin.registries.createRegistry({ registry: { name: unique("imm"), kind: RegistryKind.HOSTED } });
    const namespace = await admin.namespaces.createNamespace({ namespace: { registryId: registry.id, name: "team" } });
    const repository = await admin.repositories.createRepository({ repository: { namespaceId: namespace.id, name: "app" } });
    return { registry, namespace, repository, name: `${registry.name}/team/app` };
  }

  const addRule = (scope: Scope, tagPattern: string, clients = admin) =>
    clients.immutabilityRules.createImmutabilityRule({ immutabilityRule: { scope: oneof(scope), tagPattern } });

  /** An image whose blobs are uploaded to `name`, its manifest not yet pushed. */
  async function uploaded(name: string, client = reg): Promise<PushedImage> {
    const image = makeImage();
    for (const blob of image.blobs) await client.uploadBlob(name, blob);
    return image;
  }
  const put = (name: string, reference: string, image: { bytes: Uint8Array; mediaType: string }, client = reg) =>
    client.putManifest(name, reference, image.bytes, image.mediaType);

  it("table: the rule that protects a tag is the nearest scope's matching one, and scopes do not leak", async () => {
    const registry = await admin.registries.createRegistry({ registry: { name: unique("table"), kind: RegistryKind.HOSTED } });
    const other = await admin.registries.createRegistry({ registry: { name: unique("table-other"), kind: RegistryKind.HOSTED } });
    const repo: Record<string, string> = {};
    for (const path of ["a/x", "a/y", "b/z"]) {
      await reg.pushImage(`${registry.name}/${path}`, "seed");
      repo[path] = (await admin.repositories.lookupRepository({ name: `${registry.name}/${path}` })).id;
    }
    await reg.pushImage(`${other.name}/a/x`, "seed");
    const nsA = (await admin.namespaces.lookupNamespace({ name: `${registry.name}/a` })).id;
    const nsB = (await admin.namespaces.lookupNamespace({ name: `${registry.name}/b` })).id;
    const semver = await addRule({ registryId: registry.id }, "^v[0-9]+\\.[0-9]+\\.[0-9]+$");
    const release = await addRule({ namespaceId: nsA }, "release-.*");
    const latest = await addRule({ repositoryId: repo["a/x"]! }, "latest");
    const v1 = await addRule({ repositoryId: repo["a/x"]! }, "v1\\..*");
    // Another registry's catch-all must not reach this one.
    await addRule({ registryId: other.id }, ".*");

    const cases: [string, string, ImmutabilityRule | undefined][] = [
      ["a/x", "v1.2.3", v1],
      ["a/y", "v1.2.3", semver],
      ["b/z", "v1.2.3", semver],
      ["b/z", "v1.2", undefined],
      ["b/z", "V1.2.3", undefined],
      ["a/x", "v1.2.3-rc1", v1],
      ["a/y", "v1.2.3-rc1", undefined],
      ["a/y", "release-1", release],
      ["a/x", "release-2024.06", release],
      ["b/z", "release-1", undefined],
      ["a/x", "pre-release-1", undefined],
      ["a/x", "latest", latest],
      ["a/y", "latest", undefined],
      ["b/z", "seed", undefined],
    ];
    const got = [];
    for (const [path, tag] of cases) got.push([path, tag, (await protectingRuleFor(database.db, repo[path]!, tag))?.rule.id]);
    expect(got).toEqual(cases.map(([path, tag, rule]) => [path, tag, rule?.id]));
    // The refusal names the rule's scope as people read it.
    const found = await protectingRuleFor(database.db, repo["b/z"]!, "v9.9.9");
    expect(found?.rule.scope).toEqual({ kind: "registry", name: registry.name });
    expect(found?.fullName).toBe(`${registry.name}/b/z:v9.9.9`);
    expect((await protectingRuleFor(database.db, repo["a/y"]!, "release-1"))?.rule.scope).toEqual({ kind: "namespace", name: `${registry.name}/a` });

    // ListImmutabilityRules: set on a scope, and (inherited) every rule that applies there.
    const ids = async (req: Parameters<IdentityClients["immutabilityRules"]["listImmutabilityRules"]>[0]) =>
      (await admin.immutabilityRules.listImmutabilityRules(req)).immutabilityRules.map((r) => r.id).sort();
    expect(await ids({ repositoryId: repo["a/x"]!, inherited: true })).toEqual([semver.id, release.id, latest.id, v1.id].sort());
    expect(await ids({ repositoryId: repo["a/x"]! })).toEqual([latest.id, v1.id].sort());
    expect(await ids({ repositoryId: repo["b/z"]!, inherited: true })).toEqual([semver.id]);
    expect(await ids({ namespaceId: nsA, inherited: true })).toEqual([semver.id, release.id].sort());
    expect(await ids({ namespaceId: nsA })).toEqual([release.id]);
    expect(await ids({ namespaceId: nsB })).toEqual([]);
    expect(await ids({ registryId: registry.id })).toEqual([semver.id]);
  });

  it("/v2/: a protected tag is pushed once, re-pushed with the same manifest, and never moved or deleted", async () => {
    const h = await hosted();
    const rule = await addRule({ namespaceId: h.namespace.id }, "^1\\..*");
    expect(rule).toMatchObject({ tagPattern: "^1\\..*", scopeName: `${h.registry.name}/team`, scope: { case: "namespaceId", value: h.namespace.id } });
    const a = await uploaded(h.name);
    const b = await uploaded(h.name);
    expect((await put(h.name, "1.0", a)).status).toBe(201);

    const moved = await put(h.name, "1.0", b);
    expectOciError(
      moved,
      403,
      "DENIED",
      new RegExp(`tag ${h.name}:1\\.0 is immutable: immutability rule ${rule.id} \\(tag_pattern "\\^1\\\\\\.\\.\\*" on namespace ${h.registry.name}/team\\)`),
    );
    // The same manifest again (a client retrying its push) is fine, and changes nothing.
    const before = await admin.tags.lookupTag({ name: `${h.name}:1.0` });
    expect((await put(h.name, "1.0", a)).status).toBe(201);
    const after = await admin.tags.lookupTag({ name: `${h.name}:1.0` });
    expect(after).toMatchObject({ digest: a.digest, etag: before.etag });
    // A new tag matching the rule is pushed once; unprotected tags still move.
    expect((await put(h.name, "1.1", b)).status).toBe(201);
    expectOciError(await put(h.name, "1.1", a), 403, "DENIED", rule.id);
    expect((await put(h.name, "latest", a)).status).toBe(201);
    expect((await put(h.name, "latest", b)).status).toBe(201);
    // Deletes: the tag, and the manifest it points at (its tags would go with it).
    expectOciError(await reg.req("DELETE", `/v2/${h.name}/manifests/1.0`), 403, "DENIED", rule.id);
    expectOciError(
      await reg.req("DELETE", `/v2/${h.name}/manifests/${a.digest}`),
      403,
      "DENIED",
      new RegExp(`manifest ${h.name}@${a.digest} cannot be deleted: it holds tag ${h.name}:1\\.0`),
    );
    const tags = await reg.req("GET", `/v2/${h.name}/tags/list`);
    expect(tags.json).toMatchObject({ tags: ["1.0", "1.1", "latest"] });
    expect((await reg.req("GET", `/v2/${h.name}/manifests/1.0`)).headers.get("docker-content-digest")).toBe(a.digest);
    // A manifest no protected tag holds can still go (and an unprotected tag).
    const c = await uploaded(h.name);
    expect((await put(h.name, "scratch", c)).status).toBe(201);
    expect((await reg.req("DELETE", `/v2/${h.name}/manifests/scratch`)).status).toBe(202);
    expect((await reg.req("DELETE", `/v2/${h.name}/manifests/${c.digest}`)).status).toBe(202);

    // Without the rule the tag is an ordinary one again.
    await admin.immutabilityRules.deleteImmutabilityRule({ id: rule.id });
    expect((await put(h.name, "1.0", b)).status).toBe(201);
    expect((await reg.req("DELETE", `/v2/${h.name}/manifests/1.0`)).status).toBe(202);
  });

  it("the API: UpdateTag and DeleteTag are FAILED_PRECONDITION, and so are forced deletes of what holds a protected tag", async () => {
    const h = await hosted();
    const rule = await addRule({ registryId: h.registry.id }, "release-.*");
    const a = await uploaded(h.name);
    const b = await uploaded(h.name);
    expect((await put(h.name, "release-1", a)).status).toBe(201);
    expect((await put(h.name, "other", b)).status).toBe(201);
    const tag = await admin.tags.lookupTag({ name: `${h.name}:release-1` });
    const names = new RegExp(
      `tag ${h.name}:release-1 is immutable: immutability rule ${rule.id} \\(tag_pattern "release-\\.\\*" on registry ${h.registry.name}\\)`,
    );

    await expectCode(admin.tags.updateTag({ tag: { id: tag.id, digest: b.digest }, updateMask: { paths: ["digest"] } }), Code.FailedPrecondition, names);
    await expectCode(
      admin.tags.updateTag({ tag: { id: tag.id, name: "renamed" }, updateMask: { paths: ["name"] } }),
      Code.FailedPrecondition,
      /forbids renaming it/,
    );
    await expectCode(admin.tags.deleteTag({ id: tag.id }), Code.FailedPrecondition, /forbids deleting it/);
    // CreateTag never overwrites (ALREADY_EXISTS); a new protected tag can be created once.
    await expectCode(admin.tags.createTag({ tag: { repositoryId: h.repository.id, name: "release-1", digest: b.digest } }), Code.AlreadyExists);
    const created = await admin.tags.createTag({ tag: { repositoryId: h.repository.id, name: "release-2", digest: b.digest } });
    await expectCode(
      admin.tags.updateTag({ tag: { id: created.id, digest: a.digest }, updateMask: { paths: ["digest"] } }),
      Code.FailedPrecondition,
      /release-2 is immutable/,
    );
    // An unprotected tag may be renamed to nothing protected, and pointing it at the same digest is no move.
    expect((await admin.tags.updateTag({ tag: { id: tag.id, digest: a.digest }, updateMask: { paths: ["digest"] } })).digest).toBe(a.digest);

    const holds = new RegExp(`cannot be deleted: it holds tag ${h.name}:release-[12], which is immutable under immutability rule ${rule.id}`);
    await expectCode(admin.repositories.deleteRepository({ id: h.repository.id, force: true }), Code.FailedPrecondition, holds);
    await expectCode(admin.namespaces.deleteNamespace({ id: h.namespace.id, force: true }), Code.FailedPrecondition, holds);
    await expectCode(admin.registries.deleteRegistry({ id: h.registry.id, force: true }), Code.FailedPrecondition, holds);
    expect((await admin.tags.getTag({ id: tag.id })).digest).toBe(a.digest);

    // Once the rule is gone, everything goes (and the rule went with nothing: it is deleted first).
    await admin.immutabilityRules.deleteImmutabilityRule({ id: rule.id });
    await admin.registries.deleteRegistry({ id: h.registry.id, force: true });
    await expectCode(admin.repositories.getRepository({ id: h.repository.id }), Code.NotFound);
  });

  it("HOSTED: a tag's media type and size are its manifest's; UpdateTag cannot set others, protected or not", async () => {
    // Found by a probe: UpdateTag stored a media type and size the manifest contradicts, even on a protected tag.
    const h = await hosted();
    await addRule({ registryId: h.registry.id }, "release-.*");
    const a = await uploaded(h.name);
    const b = await uploaded(h.name);
    expect((await put(h.name, "release-1", a)).status).toBe(201);
    expect((await put(h.name, "free", a)).status).toBe(201);
    expect((await put(h.name, "other", b)).status).toBe(201);
    const truth = await admin.tags.lookupTag({ name: `${h.name}:other` });
    for (const name of ["release-1", "free"]) {
      const tag = await admin.tags.lookupTag({ name: `${h.name}:${name}` });
      const expected = { digest: a.digest, mediaType: tag.mediaType, sizeBytes: tag.sizeBytes };
      expect(expected.mediaType, name).not.toBe("");
      const updated = await admin.tags.updateTag({
        tag: { id: tag.id, mediaType: "text/plain", sizeBytes: 5n },
        updateMask: { paths: ["media_type", "size_bytes"] },
      });
      expect({ digest: updated.digest, mediaType: updated.mediaType, sizeBytes: updated.sizeBytes }, name).toEqual(expected);
      const read = await admin.tags.getTag({ id: tag.id });
      expect({ digest: read.digest, mediaType: read.mediaType, sizeBytes: read.sizeBytes }, name).toEqual(expected);
    }
    // Moved with other values named too: it takes the new manifest's.
    const free = await admin.tags.lookupTag({ name: `${h.name}:free` });
    const moved = await admin.tags.updateTag({
      tag: { id: free.id, digest: b.digest, mediaType: "text/plain", sizeBytes: 5n },
      updateMask: { paths: ["digest", "media_type", "size_bytes"] },
    });
    expect([moved.digest, moved.mediaType, moved.sizeBytes]).toEqual([b.digest, truth.mediaType, truth.sizeBytes]);
  });

  it("a forced delete of a scope whose rules protect nothing takes the rules with it", async () => {
    const h = await hosted();
    const rule = await addRule({ repositoryId: h.repository.id }, "v.*");
    expect((await put(h.name, "latest", await uploaded(h.name))).status).toBe(201);
    await admin.repositories.deleteRepository({ id: h.repository.id, force: true });
    await expectCode(admin.immutabilityRules.getImmutabilityRule({ id: rule.id }), Code.NotFound);
  });

  it("an index's child cannot be deleted while a protected tag points at the index", async () => {
    const h = await hosted();
    await addRule({ repositoryId: h.repository.id }, "stable");
    const amd = await uploaded(h.name);
    const arm = await uploaded(h.name);
    expect((await put(h.name, amd.digest, amd)).status).toBe(201);
    expect((await put(h.name, arm.digest, arm)).status).toBe(201);
    const index = makeIndex([amd.descriptor, arm.descriptor]);
    expect((await put(h.name, "stable", index)).status).toBe(201);
    // An index of the index: protection reaches through both.
    const outer = makeIndex([{ mediaType: index.mediaType, digest: index.digest, size: index.bytes.length }]);
    expect((await put(h.name, outer.digest, outer)).status).toBe(201);
    expectOciError(await reg.req("DELETE", `/v2/${h.name}/manifests/${arm.digest}`), 403, "DENIED", /it holds tag .*:stable/);
    expectOciError(await reg.req("DELETE", `/v2/${h.name}/manifests/${index.digest}`), 403, "DENIED", /it holds tag .*:stable/);
    // The outer index is not held by the tag: it may go.
    expect((await reg.req("DELETE", `/v2/${h.name}/manifests/${outer.digest}`)).status).toBe(202);
  });

  it("two first pushes of different manifests to a new protected tag: exactly one wins", async () => {
    const h = await hosted();
    await addRule({ repositoryId: h.repository.id }, "v.*");
    for (let round = 0; round < 5; round++) {
      const images = [await uploaded(h.name), await uploaded(h.name)];
      const answers = await Promise.all(images.map((image) => put(h.name, `v${round}`, image)));
      expect(answers.map((r) => r.status).sort()).toEqual([201, 403]);
      const winner = images[answers.findIndex((r) => r.status === 201)]!;
      expect((await admin.tags.lookupTag({ name: `${h.name}:v${round}` })).digest).toBe(winner.digest);
    }
  });

  it("rules over Connect: create, get, update with etags, list with pages, delete; bad input is INVALID_ARGUMENT", async () => {
    const h = await hosted();
    const rules = admin.immutabilityRules;
    const created = await rules.createImmutabilityRule({
      immutabilityRule: { scope: oneof({ registryId: h.registry.id }), tagPattern: "v.*", description: "releases" },
    });
    expect(created).toMatchObject({
      scope: { case: "registryId", value: h.registry.id },
      scopeName: h.registry.name,
      tagPattern: "v.*",
      description: "releases",
      etag: "1",
    });
    expect(created.createTime).toBeDefined();
    expect(await rules.getImmutabilityRule({ id: created.id })).toEqual(created);
    const repoRule = await addRule({ repositoryId: h.repository.id }, "latest");
    expect(repoRule).toMatchObject({ scope: { case: "repositoryId", value: h.repository.id }, scopeName: h.name });

    const updated = await rules.updateImmutabilityRule({
      immutabilityRule: { id: created.id, tagPattern: "v[0-9]+", etag: "1" },
      updateMask: { paths: ["tag_pattern"] },
    });
    expect(updated).toMatchObject({ tagPattern: "v[0-9]+", description: "releases", etag: "2" });
    await expectCode(
      rules.updateImmutabilityRule({ immutabilityRule: { id: created.id, description: "x", etag: "1" }, updateMask: { paths: ["description"] } }),
      Code.Aborted,
    );
    await expectCode(
      rules.updateImmutabilityRule({
        immutabilityRule: { id: created.id, scope: oneof({ namespaceId: h.namespace.id }) },
        updateMask: { paths: ["namespace_id"] },
      }),
      Code.InvalidArgument,
      /cannot be changed/,
    );
    // An empty mask replaces the mutable fields and leaves the scope alone.
    const replaced = await rules.updateImmutabilityRule({
      immutabilityRule: { id: created.id, tagPattern: "v.*", scope: oneof({ namespaceId: h.namespace.id }) },
    });
    expect(replaced).toMatchObject({ scope: { case: "registryId", value: h.registry.id }, tagPattern: "v.*", description: "" });

    const page1 = await rules.listImmutabilityRules({ repositoryId: h.repository.id, inherited: true, pageSize: 1 });
    expect(page1.totalSize).toBe(2);
    const page2 = await rules.listImmutabilityRules({ repositoryId: h.repository.id, inherited: true, pageSize: 1, pageToken: page1.nextPageToken });
    expect([...page1.immutabilityRules, ...page2.immutabilityRules].map((r) => r.id)).toEqual([created.id, repoRule.id]);
    expect(page2.nextPageToken).toBe("");
    await expectCode(rules.listImmutabilityRules({ repositoryId: h.repository.id, pageSize: 1, pageToken: page1.nextPageToken }), Code.InvalidArgument);
    const desc = await rules.listImmutabilityRules({ registryId: h.registry.id, orderBy: "update_time desc" });
    expect(desc.immutabilityRules.map((r) => r.id)).toEqual([created.id]);

    await rules.deleteImmutabilityRule({ id: repoRule.id, etag: "1" });
    await expectCode(rules.deleteImmutabilityRule({ id: created.id, etag: "1" }), Code.Aborted);
    await rules.deleteImmutabilityRule({ id: created.id });
    await expectCode(rules.getImmutabilityRule({ id: created.id }), Code.NotFound, created.id);
    await expectCode(rules.deleteImmutabilityRule({ id: created.id }), Code.NotFound);

    const scope = oneof({ namespaceId: h.namespace.id });
    for (const [pattern, why] of [
      ["", /tag_pattern: must not be empty/],
      ["(?=v1)v.*", /tag_pattern: .*RE2/],
      ["(v)\\1", /tag_pattern: .*invalid escape/],
      ["v{1001}", /tag_pattern: .*invalid repeat count/],
      ["[", /tag_pattern: .*missing closing \]/],
      ["v1\n", /tag_pattern: must not contain control characters/],
      ["v".repeat(257), /tag_pattern: at most 256 characters/],
    ] as const) {
      await expectCode(rules.createImmutabilityRule({ immutabilityRule: { scope, tagPattern: pattern } }), Code.InvalidArgument, why);
    }
    await expectCode(
      rules.updateImmutabilityRule({ immutabilityRule: { id: repoRule.id, tagPattern: "(?!x)" }, updateMask: { paths: ["tag_pattern"] } }),
      Code.InvalidArgument,
      /tag_pattern/,
    );
    await expectCode(
      rules.createImmutabilityRule({ immutabilityRule: { tagPattern: "v.*" } }),
      Code.InvalidArgument,
      /one of registry_id, namespace_id and repository_id is required/,
    );
    await expectCode(
      rules.createImmutabilityRule({ immutabilityRule: { scope: { case: "registryId", value: "nope" }, tagPattern: "v.*" } }),
      Code.InvalidArgument,
      /registry_id/,
    );
    await expectCode(
      rules.createImmutabilityRule({ immutabilityRule: { scope: oneof({ namespaceId: crypto.randomUUID() }), tagPattern: "v.*" } }),
      Code.NotFound,
      /namespace .* not found/,
    );
    await expectCode(
      rules.createImmutabilityRule({ immutabilityRule: { scope, tagPattern: "v.*", description: "d".repeat(1025) } }),
      Code.InvalidArgument,
      /description/,
    );
    await expectCode(rules.listImmutabilityRules({ registryId: h.registry.id, namespaceId: h.namespace.id }), Code.InvalidArgument, /at most one/);
    await expectCode(rules.listImmutabilityRules({ inherited: true }), Code.InvalidArgument, /inherited/);
    await expectCode(rules.listImmutabilityRules({ repositoryId: crypto.randomUUID() }), Code.NotFound);
    await expectCode(rules.listImmutabilityRules({ orderBy: "name" }), Code.InvalidArgument, /order_by/);

    // A REMOTE registry's tags mirror its upstream: no rules there.
    const remote = await admin.registries.createRegistry({ registry: { name: unique("remote"), kind: RegistryKind.REMOTE, url: "http://127.0.0.1:9" } });
    const remoteNs = await admin.namespaces.createNamespace({ namespace: { registryId: remote.id, name: "lib" } });
    await expectCode(addRule({ registryId: remote.id }, "v.*"), Code.FailedPrecondition, /HOSTED/);
    await expectCode(addRule({ namespaceId: remoteNs.id }, "v.*"), Code.FailedPrecondition, /REMOTE registry/);
  });

  it.each(Object.keys(transports))("rules over %s", async (transportName) => {
    const h = await hosted();
    const transport = transports[transportName]!(transportName.startsWith("grpc over") ? server.grpcUrl : base);
    const rules = createClient(ImmutabilityRuleService, transport);
    const rule = await rules.createImmutabilityRule({
      immutabilityRule: { scope: oneof({ repositoryId: h.repository.id }), tagPattern: "^v[0-9]+\\.[0-9]+\\.[0-9]+$" },
    });
    expect((await rules.getImmutabilityRule({ id: rule.id })).scope).toEqual({ case: "repositoryId", value: h.repository.id });
    await expectCode(
      rules.createImmutabilityRule({ immutabilityRule: { scope: oneof({ repositoryId: h.repository.id }), tagPattern: "(?<=v)1" } }),
      Code.InvalidArgument,
    );
    await rules.deleteImmutabilityRule({ id: rule.id });
  });

  it("rules over REST: /v1/immutability-rules and the scopes' collections", async () => {
    const h = await hosted();
    const json = { "content-type": "application/json" };
    const created = await adminFetch(`${base}/v1/immutability-rules`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ namespaceId: h.namespace.id, tagPattern: "release-.*", description: "by REST" }),
    });
    expect(created.status).toBe(200);
    const rule = (await created.json()) as { id: string; namespaceId: string; scopeName: string; etag: string };
    expect(rule).toMatchObject({ namespaceId: h.namespace.id, scopeName: `${h.registry.name}/team`, etag: "1" });
    const get = await adminFetch(`${base}/v1/immutability-rules/${rule.id}`);
    expect(((await get.json()) as { tagPattern: string }).tagPattern).toBe("release-.*");
    const listed = (await (await adminFetch(`${base}/v1/namespaces/${h.namespace.id}/immutability-rules`)).json()) as {
      immutabilityRules: { id: string }[];
      totalSize: number;
    };
    expect(listed).toMatchObject({ totalSize: 1, immutabilityRules: [{ id: rule.id }] });
    const inherited = (await (await adminFetch(`${base}/v1/repositories/${h.repository.id}/immutability-rules?inherited=true`)).json()) as {
      totalSize: number;
    };
    expect(inherited.totalSize).toBe(1);
    // proto3 JSON leaves zero out.
    expect(((await (await adminFetch(`${base}/v1/registries/${h.registry.id}/immutability-rules`)).json()) as { totalSize?: number }).totalSize ?? 0).toBe(0);
    const put = await adminFetch(`${base}/v1/immutability-rules/${rule.id}?update_mask=description`, {
      method: "PUT",
      headers: json,
      body: JSON.stringify({ description: "changed", etag: "1" }),
    });
    expect(await put.json()).toMatchObject({ description: "changed", tagPattern: "release-.*", etag: "2" });
    const bad = await adminFetch(`${base}/v1/immutability-rules`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ repositoryId: h.repository.id, tagPattern: "(a" }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/tag_pattern/) as unknown });
    const both = await adminFetch(`${base}/v1/immutability-rules`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ repositoryId: h.repository.id, namespaceId: h.namespace.id, tagPattern: "v.*" }),
    });
    expect(both.status).toBe(400);
    expect((await adminFetch(`${base}/v1/immutability-rules/${rule.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await adminFetch(`${base}/v1/immutability-rules/${rule.id}`)).status).toBe(404);
    const anonymous = await fetch(`${base}/v1/immutability-rules`, { method: "POST", headers: json, body: "{}" });
    expect(anonymous.status).toBe(401);
  });

  it("admins of a scope manage its rules; readers read them; writers cannot change them, and cannot move protected tags either", async () => {
    const h = await hosted();
    const otherNs = await admin.namespaces.createNamespace({ namespace: { registryId: h.registry.id, name: "other" } });
    const nsAdmin = await createAccount(admin, base);
    const writer = await createAccount(admin, base);
    const reader = await createAccount(admin, base);
    const outsider = await createAccount(admin, base);
    await bindRole(admin, nsAdmin.id, "admin", { namespaceId: h.namespace.id });
    await bindRole(admin, writer.id, "writer", { namespaceId: h.namespace.id });
    await bindRole(admin, reader.id, "reader", { namespaceId: h.namespace.id });

    await expectCode(
      addRule({ namespaceId: h.namespace.id }, "v.*", writer.clients),
      Code.PermissionDenied,
      `needs admin on namespace ${h.registry.name}/team`,
    );
    await expectCode(addRule({ repositoryId: h.repository.id }, "v.*", writer.clients), Code.PermissionDenied, /needs admin/);
    const nsRule = await addRule({ namespaceId: h.namespace.id }, "v.*", nsAdmin.clients);
    const repoRule = await addRule({ repositoryId: h.repository.id }, "stable", nsAdmin.clients);
    await expectCode(addRule({ registryId: h.registry.id }, "v.*", nsAdmin.clients), Code.PermissionDenied, `needs admin on registry ${h.registry.name}`);
    await expectCode(addRule({ namespaceId: otherNs.id }, "v.*", nsAdmin.clients), Code.PermissionDenied);
    const registryRule = await addRule({ registryId: h.registry.id }, "release-.*");
    await expectCode(
      nsAdmin.clients.immutabilityRules.updateImmutabilityRule({
        immutabilityRule: { id: registryRule.id, tagPattern: "x" },
        updateMask: { paths: ["tag_pattern"] },
      }),
      Code.PermissionDenied,
    );
    await expectCode(nsAdmin.clients.immutabilityRules.deleteImmutabilityRule({ id: registryRule.id }), Code.PermissionDenied);
    await expectCode(writer.clients.immutabilityRules.deleteImmutabilityRule({ id: nsRule.id }), Code.PermissionDenied);
    await nsAdmin.clients.immutabilityRules.updateImmutabilityRule({
      immutabilityRule: { id: repoRule.id, description: "kept" },
      updateMask: { paths: ["description"] },
    });

    // Readers of the namespace read its rules and the registry's (which apply there too); outsiders nothing.
    expect((await reader.clients.immutabilityRules.getImmutabilityRule({ id: nsRule.id })).id).toBe(nsRule.id);
    expect((await reader.clients.immutabilityRules.getImmutabilityRule({ id: registryRule.id })).id).toBe(registryRule.id);
    const seen = await reader.clients.immutabilityRules.listImmutabilityRules({ repositoryId: h.repository.id, inherited: true });
    expect(seen.immutabilityRules.map((r) => r.id).sort()).toEqual([nsRule.id, repoRule.id, registryRule.id].sort());
    await expectCode(outsider.clients.immutabilityRules.getImmutabilityRule({ id: nsRule.id }), Code.PermissionDenied);
    expect((await outsider.clients.immutabilityRules.listImmutabilityRules({})).totalSize).toBe(0);
    const anonymous = createClient(ImmutabilityRuleService, createConnectTransport({ baseUrl: base, httpVersion: "1.1" }));
    expect((await anonymous.listImmutabilityRules({})).totalSize).toBe(0);
    await expectCode(anonymous.getImmutabilityRule({ id: nsRule.id }), Code.Unauthenticated);

    // A writer pushes a new protected tag; moving it is the rule's refusal, not a missing role.
    const asWriter = new RegistryClient(base, basic(writer.name, writer.password!));
    const a = await uploaded(h.name, asWriter);
    const b = await uploaded(h.name, asWriter);
    expect((await put(h.name, "v1", a, asWriter)).status).toBe(201);
    expectOciError(await put(h.name, "v1", b, asWriter), 403, "DENIED", nsRule.id);
    // Its namespace admin may delete tags, but not this one.
    const asAdmin = new RegistryClient(base, basic(nsAdmin.name, nsAdmin.password!));
    expectOciError(await asAdmin.req("DELETE", `/v2/${h.name}/manifests/v1`), 403, "DENIED", nsRule.id);
  });

  it("records every rule change and every refusal in the audit log, naming the actor and the rule", async () => {
    const h = await hosted();
    const nsAdmin = await createAccount(admin, base);
    const writer = await createAccount(admin, base);
    await bindRole(admin, nsAdmin.id, "admin", { namespaceId: h.namespace.id });
    await bindRole(admin, writer.id, "writer", { namespaceId: h.namespace.id });
    const rule = await addRule({ namespaceId: h.namespace.id }, "1\\..*", nsAdmin.clients);
    await nsAdmin.clients.immutabilityRules.updateImmutabilityRule({
      immutabilityRule: { id: rule.id, tagPattern: "^1\\..*" },
      updateMask: { paths: ["tag_pattern"] },
    });
    await expectCode(addRule({ namespaceId: h.namespace.id }, "x", writer.clients), Code.PermissionDenied);

    const asWriter = new RegistryClient(base, basic(writer.name, writer.password!));
    const a = await uploaded(h.name, asWriter);
    const b = await uploaded(h.name, asWriter);
    expect((await put(h.name, "1.0", a, asWriter)).status).toBe(201);
    expect((await put(h.name, "1.0", b, asWriter)).status).toBe(403);
    const asAdmin = new RegistryClient(base, basic(nsAdmin.name, nsAdmin.password!));
    expect((await asAdmin.req("DELETE", `/v2/${h.name}/manifests/1.0`)).status).toBe(403);
    expect((await asAdmin.req("DELETE", `/v2/${h.name}/manifests/${a.digest}`)).status).toBe(403);
    const tag = await admin.tags.lookupTag({ name: `${h.name}:1.0` });
    await expectCode(writer.clients.tags.updateTag({ tag: { id: tag.id, digest: b.digest }, updateMask: { paths: ["digest"] } }), Code.FailedPrecondition);
    await expectCode(nsAdmin.clients.tags.deleteTag({ id: tag.id }), Code.FailedPrecondition);
    await expectCode(nsAdmin.clients.repositories.deleteRepository({ id: h.repository.id, force: true }), Code.FailedPrecondition);
    await nsAdmin.clients.immutabilityRules.deleteImmutabilityRule({ id: rule.id });

    const ruleEvents = await admin.audit.listAuditEvents({ resource: rule.id, orderBy: "event_time" });
    expect(ruleEvents.auditEvents.map((e) => [e.action, e.actorName, e.outcome, e.detail])).toEqual([
      ["immutability_rule.create", nsAdmin.name, AuditOutcome.SUCCESS, `tag_pattern "1\\..*" on namespace ${h.registry.name}/team`],
      ["immutability_rule.update", nsAdmin.name, AuditOutcome.SUCCESS, `tag_pattern "1\\..*" -> "^1\\..*" (on namespace ${h.registry.name}/team)`],
      ["immutability_rule.delete", nsAdmin.name, AuditOutcome.SUCCESS, `tag_pattern "^1\\..*" on namespace ${h.registry.name}/team`],
    ]);
    const denied = await admin.audit.listAuditEvents({ action: "immutability_rule.create", actor: writer.name });
    expect(denied.auditEvents.map((e) => [e.outcome, e.detail])).toEqual([[AuditOutcome.DENIED, `needs admin on namespace ${h.registry.name}/team`]]);

    const refusals = await eventually(async () => {
      const events = (await admin.audit.listAuditEvents({ orderBy: "event_time", pageSize: 1000 })).auditEvents.filter(
        (e) => e.outcome === AuditOutcome.DENIED && e.detail.includes(rule.id),
      );
      expect(events).toHaveLength(6);
      return events;
    });
    expect(refusals.map((e) => [e.action, e.actorName, e.resourceName])).toEqual([
      ["tag.move", writer.name, `${h.name}:1.0`],
      ["tag.delete", nsAdmin.name, `${h.name}:1.0`],
      ["manifest.delete", nsAdmin.name, `${h.name}@${a.digest}`],
      ["tag.move", writer.name, `${h.name}:1.0`],
      ["tag.delete", nsAdmin.name, `${h.name}:1.0`],
      ["repository.delete", nsAdmin.name, h.name],
    ]);
    expect(refusals[0]!.detail).toContain(`tag_pattern "^1\\..*"`);
    expect(refusals[0]!.requestId).not.toBe("");
    expect(refusals[3]!.resourceId).toBe(tag.id);
  });

  describe.skipIf(!skopeoReady)("with skopeo", () => {
    it("pushes 1.0 under ^1\\..*, refuses a different image over it (naming the rule), takes the same one again and a new 1.1", async () => {
      const h = await hosted();
      const rule = await addRule({ repositoryId: h.repository.id }, "^1\\..*");
      const first = await smallImage("immutable-first");
      const second = await smallImage("immutable-second");
      const endpoint: RegistryEndpoint = { host: `127.0.0.1:${server.http.port}` };
      expect(await pushImage(first, endpoint, h.name, "1.0")).toBe(first.digest);

      const refused = await pushImage(second, endpoint, h.name, "1.0").then(
        () => "",
        (err: Error) => err.message,
      );
      // logrus quotes skopeo's message: \" and \\ inside it.
      expect(refused).toMatch(/denied/i);
      const said = refused.replace(/\\(.)/g, "$1");
      expect(said).toContain(rule.id);
      expect(said).toContain(`tag_pattern "^1\\..*"`);
      expect(said).toContain(`${h.name}:1.0 is immutable`);
      expect((await skopeoInspect(dockerRef(endpoint, h.name, "1.0"))).Digest).toBe(first.digest);

      expect(await pushImage(first, endpoint, h.name, "1.0")).toBe(first.digest);
      expect(await pushImage(second, endpoint, h.name, "1.1")).toBe(second.digest);
      // skopeo deletes by digest: 1.0 points at it, so the manifest stays.
      const deleted = await skopeoDelete(dockerRef(endpoint, h.name, "1.0")).then(
        () => "",
        (err: Error) => err.message,
      );
      expect(deleted).toContain(rule.id);
      expectOciError(await reg.req("DELETE", `/v2/${h.name}/manifests/1.0`), 403, "DENIED", rule.id);
      const tag = await admin.tags.lookupTag({ name: `${h.name}:1.0` });
      await expectCode(admin.tags.deleteTag({ id: tag.id }), Code.FailedPrecondition, rule.id);
      await expectCode(
        admin.tags.updateTag({ tag: { id: tag.id, digest: second.digest }, updateMask: { paths: ["digest"] } }),
        Code.FailedPrecondition,
        rule.id,
      );
      expect((await skopeoInspect(dockerRef(endpoint, h.name, "1.0"))).Digest).toBe(first.digest);
    });
  });
});
