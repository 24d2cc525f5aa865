// The data around a fuzz run.
//
// PROTECTED: written before the run and compared field for field and byte for byte after it.
// The fuzzer cannot address it: its ids are server-made UUIDs and its names carry 16 random hex
// digits, and neither is ever handed to a generator (they only reach the fuzzer in List answers,
// which it never reads). So nothing a fuzzed write does may change it; if something does (a
// cascade gone wrong, a shared blob deleted, an update that leaks into another row), the
// comparison fails.
//
// PLAYGROUND: a HOSTED registry with a pushed image and a webhook, a REMOTE registry (upstream 127.0.0.1:9,
// which refuses connections) with a credential, their namespaces, repositories and tags, and an
// open upload. Generators refer to its ids and names (values.ts Ref) so requests get past the
// validators into the store; fuzzed writes may change or delete it freely. It is rebuilt (under
// new names) before a batch when something of it is gone.
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { eq, inArray } from "drizzle-orm";
import { expect } from "vitest";
import { ImageService } from "../../../gen/artifact/v1/image_pb.js";
import { WebhookService } from "../../../gen/artifact/v1/webhook_pb.js";
import { RetentionService } from "../../../gen/artifact/v1/retention_pb.js";
import { ImmutabilityRuleService } from "../../../gen/artifact/v1/immutability_rule_pb.js";
import { RegistryKind } from "../../../gen/artifact/v1/registry_pb.js";
import { immutabilityRules, namespaces, registries, repositories, retentionPolicies, tags } from "../../../src/db/schema.js";
import { catalogClients, digestOf, type Clients } from "../clients.js";
import { MT, RegistryClient, sha256 } from "../registry-client.js";
import { transports, type TestServer } from "../server.js";
import type { Ref, RefName } from "./values.js";

export const UNREACHABLE_UPSTREAM = "http://127.0.0.1:9";

export class World {
  readonly c: Clients;
  readonly images: ReturnType<typeof createClient<typeof ImageService>>;
  readonly rules: ReturnType<typeof createClient<typeof ImmutabilityRuleService>>;
  readonly reg: RegistryClient;
  private values = {} as Record<RefName, string>;
  private ids: { tag?: string; remoteTag?: string } = {};
  private builds = 0;
  private readonly protectedData = { registries: [] as string[], images: [] as { name: string; refs: string[]; blobs: string[] }[] };

  constructor(private readonly server: TestServer) {
    const transport = transports["connect+json over HTTP/1.1"]!(server.httpUrl);
    this.c = catalogClients(transport);
    this.images = createClient(ImageService, transport);
    this.rules = createClient(ImmutabilityRuleService, transport);
    this.reg = new RegistryClient(server.httpUrl);
  }

  /** A playground value for a reference in a generated request. */
  readonly resolve = (r: Ref): string => this.values[r.name];

  /** Playground rebuilds so far (each one means a fuzzed write removed part of it). */
  get rebuilds(): number {
    return Math.max(0, this.builds - 1);
  }

  // ---- protected ----

  async seedProtected(): Promise<void> {
    const suffix = randomBytes(8).toString("hex");
    const { c, reg } = this;
    const hosted = await c.registries.createRegistry({
      registry: { name: `keep-${suffix}`, kind: RegistryKind.HOSTED, description: "protected: ünïcödé, quotes \" and 'ticks', emoji 🐳" },
    });
    const app = `${hosted.name}/team/app`;
    const image = await reg.pushImage(app, "1.0", { annotations: { "org.opencontainers.image.title": "protected ✓" } });
    expect((await reg.putManifest(app, "stable", image.bytes, image.mediaType)).status).toBe(201);
    const cli = `${hosted.name}/team/tools/cli`;
    const other = await reg.pushImage(cli, "2.0", { layerBytes: 70_000 });
    const [ns] = (await c.namespaces.listNamespaces({ registryId: hosted.id })).namespaces;
    await c.namespaces.updateNamespace({ namespace: { id: ns!.id, description: "protected namespace" }, updateMask: { paths: ["description"] } });
    for (const repo of (await c.repositories.listRepositories({ namespaceId: ns!.id })).repositories) {
      await c.repositories.updateRepository({ repository: { id: repo.id, description: `protected ${repo.name}` }, updateMask: { paths: ["description"] } });
    }

    const remote = await c.registries.createRegistry({
      registry: {
        name: `keepr-${suffix}`,
        kind: RegistryKind.REMOTE,
        url: UNREACHABLE_UPSTREAM,
        insecure: true,
        description: "protected remote",
        credential: { kind: { case: "basic", value: { username: "keeper", password: `pw-${suffix}` } } },
        syncFilter: { repositoryPrefix: "lib/", tagPattern: "v[0-9]+" },
      },
    });
    const rns = await c.namespaces.createNamespace({ namespace: { registryId: remote.id, name: "lib", description: "protected" } });
    const rrepo = await c.repositories.createRepository({ repository: { namespaceId: rns.id, name: "x/y" } });
    await c.tags.createTag({ tag: { repositoryId: rrepo.id, name: "v1", digest: digestOf(7), mediaType: MT.ociManifest, sizeBytes: 1234n } });

    this.protectedData.registries = [hosted.id, remote.id];
    this.protectedData.images = [
      { name: app, refs: ["1.0", "stable", image.digest], blobs: [sha256(image.config), sha256(image.layer)] },
      { name: cli, refs: ["2.0", other.digest], blobs: [sha256(other.config), sha256(other.layer)] },
    ];
  }

  /**
   * Everything the protected data is, read back every way there is: stored rows (the sealed
   * credential included), Get and List answers, ImageService manifests, and over /v2/ the
   * manifests, blobs and tag lists as bytes.
   */
  async snapshotProtected(): Promise<Record<string, unknown>> {
    const { c, server } = this;
    const out: Record<string, unknown> = {};
    for (const registryId of this.protectedData.registries) {
      out[`row registry ${registryId}`] = await server.store.registries.get(registryId);
      out[`GetRegistry ${registryId}`] = await c.registries.getRegistry({ id: registryId });
      const namespaces = await c.namespaces.listNamespaces({ registryId });
      out[`ListNamespaces ${registryId}`] = namespaces;
      for (const ns of namespaces.namespaces) {
        out[`row namespace ${ns.id}`] = await server.store.namespaces.get(ns.id);
        const repos = await c.repositories.listRepositories({ namespaceId: ns.id });
        out[`ListRepositories ${ns.id}`] = repos;
        for (const repo of repos.repositories) {
          out[`row repository ${repo.id}`] = await server.store.repositories.get(repo.id);
          const tags = await c.tags.listTags({ repositoryId: repo.id });
          out[`ListTags ${repo.id}`] = tags;
          for (const tag of tags.tags) out[`row tag ${tag.id}`] = await server.store.tags.get(tag.id);
        }
      }
    }
    for (const image of this.protectedData.images) {
      const tags = await this.reg.req("GET", `/v2/${image.name}/tags/list`);
      out[`/v2/ tags/list ${image.name}`] = { status: tags.status, body: tags.body.toString("utf8") };
      for (const ref of image.refs) {
        const got = await this.reg.req("GET", `/v2/${image.name}/manifests/${ref}`);
        out[`/v2/ manifest ${image.name}:${ref}`] = {
          status: got.status,
          type: got.headers.get("content-type"),
          digest: got.headers.get("docker-content-digest"),
          bytes: got.body.toString("base64"),
        };
        out[`GetManifest ${image.name}:${ref}`] = await this.images.getManifest({ repository: image.name, reference: ref });
      }
      for (const digest of image.blobs) {
        const got = await this.reg.req("GET", `/v2/${image.name}/blobs/${digest}`);
        out[`/v2/ blob ${image.name}@${digest}`] = { status: got.status, length: got.body.length, sha256: sha256(got.body) };
      }
    }
    return withoutPullTimes(out);
  }

  // ---- playground ----

  /** Makes sure the playground is whole (rebuilding it when a fuzzed write removed part of it) and has an open upload. */
  async refresh(what = { playground: true, upload: true }): Promise<void> {
    if (what.playground || this.builds === 0) await this.check();
    if (what.upload || this.values.uploadId === "") await this.openUpload();
  }

  private async check(): Promise<void> {
    // One query for both tags and everything above them: a tag that exists has its parents.
    const rows = await this.server.database.db
      .select({
        tagId: tags.id,
        tagName: tags.name,
        digest: tags.digest,
        size: tags.sizeBytes,
        repository: repositories.name,
        namespace: namespaces.name,
        registry: registries.name,
        kind: registries.kind,
        version: registries.version,
      })
      .from(tags)
      .innerJoin(repositories, eq(tags.repositoryId, repositories.id))
      .innerJoin(namespaces, eq(repositories.namespaceId, namespaces.id))
      .innerJoin(registries, eq(namespaces.registryId, registries.id))
      .where(
        inArray(
          tags.id,
          [this.ids.tag, this.ids.remoteTag].filter((id) => id !== undefined),
        ),
      );
    const hosted = rows.find((r) => r.tagId === this.ids.tag);
    const remote = rows.find((r) => r.tagId === this.ids.remoteTag);
    if (!hosted || !remote || hosted.kind !== "hosted") {
      await this.build();
    } else {
      // Renames and re-pushes are fine: follow them.
      Object.assign(this.values, {
        hostedRegistryName: hosted.registry,
        remoteRegistryName: remote.registry,
        namespaceName: hosted.namespace,
        repositoryName: hosted.repository,
        tagName: hosted.tagName,
        hostedImage: `${hosted.registry}/${hosted.namespace}/${hosted.repository}`,
        remoteImage: `${remote.registry}/${remote.namespace}/${remote.repository}`,
        manifestDigest: hosted.digest,
        manifestSize: String(hosted.size),
        etag: String(hosted.version),
      });
      const [rule] = await this.server.database.db
        .select({ id: immutabilityRules.id })
        .from(immutabilityRules)
        .where(eq(immutabilityRules.id, this.values.immutabilityRuleId));
      if (!rule) this.values.immutabilityRuleId = await this.addRule(this.values.repositoryId);
      const [policy] = await this.server.database.db
        .select({ id: retentionPolicies.id })
        .from(retentionPolicies)
        .where(eq(retentionPolicies.id, this.values.retentionPolicyId));
      if (!policy) this.values.retentionPolicyId = await this.addPolicy(this.values.repositoryId);
    }
  }

  /** A retention policy on the playground's repository that keeps every tag (fuzzed updates and runs may change that). */
  private async addPolicy(repositoryId: string): Promise<string> {
    const policy = await createClient(RetentionService, transports["connect+json over HTTP/1.1"]!(this.server.httpUrl)).createRetentionPolicy({
      retentionPolicy: {
        scope: { case: "repositoryId", value: repositoryId },
        keep: { kind: { case: "matching", value: { tagPattern: ".*" } } },
        description: "fuzz playground",
      },
    });
    return policy.id;
  }

  /** An immutability rule on the playground's repository that protects none of its tags (fuzzed writes may change that). */
  private async addRule(repositoryId: string): Promise<string> {
    const rule = await this.rules.createImmutabilityRule({
      immutabilityRule: { scope: { case: "repositoryId", value: repositoryId }, tagPattern: "^fz-never-[0-9]+$", description: "fuzz playground" },
    });
    return rule.id;
  }

  private async openUpload(): Promise<void> {
    const upload = await this.reg.req("POST", `/v2/${this.values.hostedImage}/blobs/uploads/`);
    const id = /\/blobs\/uploads\/([^/?]+)/.exec(upload.headers.get("location") ?? "")?.[1];
    this.values.uploadId = id ?? "00000000-0000-4000-8000-000000000000";
  }

  private async build(): Promise<void> {
    const n = ++this.builds;
    const { c, reg } = this;
    const hosted = await c.registries.createRegistry({ registry: { name: `fz-h${n}`, kind: RegistryKind.HOSTED } });
    const image = await reg.pushImage(`${hosted.name}/team/app`, "v1");
    const ns = (await c.namespaces.listNamespaces({ registryId: hosted.id })).namespaces[0]!;
    const repo = (await c.repositories.listRepositories({ namespaceId: ns.id })).repositories[0]!;
    const tag = (await c.tags.listTags({ repositoryId: repo.id })).tags[0]!;
    const remote = await c.registries.createRegistry({
      registry: { name: `fz-r${n}`, kind: RegistryKind.REMOTE, url: UNREACHABLE_UPSTREAM, credential: { kind: { case: "token", value: "fuzz-token" } } },
    });
    const rns = await c.namespaces.createNamespace({ namespace: { registryId: remote.id, name: "lib" } });
    const rrepo = await c.repositories.createRepository({ repository: { namespaceId: rns.id, name: "x" } });
    const rtag = await c.tags.createTag({
      tag: { repositoryId: rrepo.id, name: "v1", digest: image.digest, mediaType: image.mediaType, sizeBytes: BigInt(image.bytes.length) },
    });
    // A webhook whose endpoint refuses connections (loopback is allowed in tests): deliveries and TestWebhook fail fast.
    const webhook = await createClient(WebhookService, transports["connect+json over HTTP/1.1"]!(this.server.httpUrl)).createWebhook({
      webhook: { registryId: hosted.id, url: `${UNREACHABLE_UPSTREAM}/hook`, secret: "a-webhook-secret-0123456789" },
    });
    const ruleId = await this.addRule(repo.id);
    const policyId = await this.addPolicy(repo.id);
    this.ids = { tag: tag.id, remoteTag: rtag.id };
    this.values = {
      hostedRegistryId: hosted.id,
      remoteRegistryId: remote.id,
      namespaceId: ns.id,
      repositoryId: repo.id,
      tagId: tag.id,
      remoteRepositoryId: rrepo.id,
      remoteTagId: rtag.id,
      webhookId: webhook.id,
      hostedRegistryName: hosted.name,
      remoteRegistryName: remote.name,
      namespaceName: ns.name,
      repositoryName: repo.name,
      hostedImage: `${hosted.name}/${ns.name}/${repo.name}`,
      remoteImage: `${remote.name}/lib/x`,
      manifestDigest: image.digest,
      configDigest: sha256(image.config),
      layerDigest: sha256(image.layer),
      configSize: String(image.config.length),
      layerSize: String(image.layer.length),
      manifestSize: String(image.bytes.length),
      tagName: tag.name,
      etag: hosted.etag,
      uploadId: "",
      immutabilityRuleId: ruleId,
      retentionPolicyId: policyId,
    };
  }
}

/**
 * The snapshot without last pull times: the snapshot's own GETs are pulls, and pulls move them by
 * design (src/store/pull-times.ts); nothing else in protected data may change.
 */
function withoutPullTimes(value: unknown): Record<string, unknown> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v === null || typeof v !== "object" || v instanceof Date || v instanceof Uint8Array) return v;
    const copy: Record<string, unknown> = {};
    for (const [k, inner] of Object.entries(v)) if (k !== "lastPullTime") copy[k] = strip(inner);
    // Messages keep their prototype (toEqual compares it).
    return Object.setPrototypeOf(copy, Object.getPrototypeOf(v) as object | null) as unknown;
  };
  return strip(value) as Record<string, unknown>;
}
