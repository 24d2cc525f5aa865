// The registry core (src/registry) against its conformance suite: the HOSTED repository over the
// store and the content store, and the pull-through repository over a real upstream (Debian's
// docker-registry, CNCF Distribution 2.8) holding the same content, each on PGlite and, when
// TEST_DATABASE_URL is set, PostgreSQL. No server: the core is what both edges call.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createContentDriver } from "../src/content/index.js";
import type { ImageName } from "../src/domain/image-name.js";
import { createRegistries } from "../src/registry/index.js";
import { Sealer } from "../src/secrets.js";
import { createStore } from "../src/store/index.js";
import { AddressPolicy, parseAllowedNetworks } from "../src/upstream/address-policy.js";
import { RegistryUpstreams } from "../src/upstream/registries.js";
import { databaseKinds, openTestDatabase, quietLog, type DatabaseKind } from "./support/database.js";
import { startDistribution, type Distribution } from "./support/distribution.js";
import { havePeers } from "./support/peers.js";
import { removeWhenProcessEnds } from "./support/reaper.js";
import { RegistryClient, sha256 } from "./support/registry-client.js";
import { expectDomainError, readAll } from "./content-conformance.js";
import { testUpstreamLimits } from "./support/upstream-settings.js";
import { registryCoreConformance, seedContent, type CoreSubject, type SeedContent } from "./registry-conformance.js";

const ready = havePeers("test/registry.test.ts", "docker-registry");

const name = (registry: string, namespace: string, repository: string): ImageName => ({
  registry,
  namespace,
  repository,
  full: `${registry}/${namespace}/${repository}`,
});

/** The core as the server builds it, on a database of `kind` and a content store in a temp dir. */
async function openCore(kind: DatabaseKind) {
  const database = await openTestDatabase(kind);
  const dataDir = mkdtempSync(join(tmpdir(), "artifact-core-"));
  removeWhenProcessEnds(dataDir);
  const content = await createContentDriver({ dataDir });
  const store = await createStore(database.db, content);
  // Every upstream of the tests listens on loopback.
  const policy = new AddressPolicy({ allowed: parseAllowedNetworks("127.0.0.0/8").networks });
  const upstreams = new RegistryUpstreams(
    new Sealer({ sealing: randomBytes(32) }),
    testUpstreamLimits({ retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 50 } }),
    policy,
  );
  const registries = createRegistries({ store, content, log: quietLog, upstreams, blobMaxBytes: 1 << 30 });
  return {
    store,
    content,
    registries,
    async close() {
      await upstreams.close();
      await database.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

type Core = Awaited<ReturnType<typeof openCore>>;

async function hosted(kind: DatabaseKind, content: SeedContent): Promise<CoreSubject> {
  const core = await openCore(kind);
  await core.store.registries.create({ name: "local", kind: "hosted" });
  const subject = name("local", "team", "app");
  // Seeded through the core's own writes: the suite's reads then check what they stored.
  const repo = await core.registries.repository(subject);
  for (const image of [content.image, content.referrer]) {
    for (const blob of image.blobs) await repo.putBlob(Readable.from([blob]), sha256(blob));
  }
  for (const tag of content.tags) await repo.putManifest({ tag }, content.image.bytes, content.image.mediaType);
  await repo.putManifest({ digest: content.referrer.digest }, content.referrer.bytes, content.referrer.mediaType);
  return { registries: core.registries, name: subject, missing: name("local", "team", "nothing"), writes: true, cleanup: () => core.close() };
}

async function pullThrough(kind: DatabaseKind, content: SeedContent, upstream?: Distribution): Promise<CoreSubject & { core: Core; upstream: Distribution }> {
  upstream ??= await startDistribution();
  try {
    // The same content, pushed to the upstream over the Distribution API.
    const client = new RegistryClient(upstream.url);
    for (const image of [content.image, content.referrer]) {
      for (const blob of image.blobs) await client.uploadBlob("team/app", blob);
    }
    for (const tag of content.tags) await client.putManifest("team/app", tag, content.image.bytes, content.image.mediaType);
    await client.putManifest("team/app", content.referrer.digest, content.referrer.bytes, content.referrer.mediaType);
    const core = await openCore(kind);
    await core.store.registries.create({ name: "mirror", kind: "remote", url: upstream.url });
    return {
      core,
      upstream,
      registries: core.registries,
      name: name("mirror", "team", "app"),
      missing: name("mirror", "team", "nothing"),
      writes: false,
      async cleanup() {
        await core.close();
        await upstream.stop();
      },
    };
  } catch (err) {
    await upstream.stop();
    throw err;
  }
}

if (ready) {
  for (const kind of databaseKinds()) {
    registryCoreConformance(`hosted on ${kind}`, seedContent(), (content) => hosted(kind, content));
    registryCoreConformance(`pull-through on ${kind}`, seedContent(), (content) => pullThrough(kind, content));
  }
}

// What the pull-through decorator adds to the contract: its CachePolicy, seen from the outside.
describe.skipIf(!ready).each(databaseKinds())("pull-through cache policy on %s", (kind) => {
  const content = seedContent();
  let subject: Awaited<ReturnType<typeof pullThrough>>;
  beforeAll(async () => {
    subject = await pullThrough(kind, content);
  });
  afterAll(async () => {
    await subject?.cleanup();
  });

  it("keeps what a read verified (blobs, manifests by digest), serves it with the upstream gone, and never keeps what a tag names", async () => {
    const { image } = content;
    const layer = sha256(image.layer);
    const repo = await subject.registries.repository(subject.name);
    expect(await subject.core.content.stat(layer)).toBeUndefined();
    // A part of a blob not cached, read directly, is only length-checked: it is not kept.
    const part = await repo.getBlob(layer, { range: { offset: 5, length: 100 }, partial: "direct" });
    expect((await readAll(await part.read())).equals(image.layer.subarray(5, 105))).toBe(true);
    expect(await subject.core.content.stat(layer)).toBeUndefined();
    // A whole read is: once the stream ends, the blob is in the content store and readable here.
    expect((await readAll(await (await repo.getBlob(layer)).read())).equals(image.layer)).toBe(true);
    expect(await subject.core.content.stat(layer)).toEqual({ size: image.layer.length });
    expect((await repo.getManifest({ tag: "1.0" })).digest).toBe(image.digest);

    await subject.upstream.kill();
    try {
      const offline = await subject.registries.repository(subject.name);
      expect((await readAll(await (await offline.getBlob(layer)).read())).equals(image.layer)).toBe(true);
      const part = await offline.getBlob(layer, { range: { start: 1, end: 10 } });
      expect((await readAll(await part.read())).equals(image.layer.subarray(1, 11))).toBe(true);
      expect(await offline.statBlob(layer)).toEqual({ digest: layer, size: image.layer.length });
      expect(Buffer.from((await offline.getManifest({ digest: image.digest })).bytes!).equals(image.bytes)).toBe(true);
      // Tags are always asked upstream: with it gone, a pull by tag fails, clearly.
      await expectDomainError(offline.getManifest({ tag: "1.0" }), "unavailable");
      // Never read, so never kept.
      await expectDomainError(offline.getBlob(sha256(image.config)), "unavailable");
    } finally {
      await subject.upstream.restart();
    }
  });

  it("a blob whose upstream bytes do not match its digest fails the read before it ends, and is not kept", async () => {
    const { image } = content;
    const config = sha256(image.config);
    await subject.upstream.corruptBlob(config, "flip");
    const repo = await subject.registries.repository(subject.name);
    const blob = await repo.getBlob(config);
    await expect(readAll(await blob.read())).rejects.toMatchObject({ kind: "data-loss", reason: "digest-mismatch" });
    expect(await subject.core.content.stat(config)).toBeUndefined();
    await expectDomainError(
      subject.core.registries.repository(subject.name).then((r) => r.getBlob(config, { range: { start: 0, end: 1 } })),
      "data-loss",
      "digest-mismatch",
    );
    expect(await subject.core.content.stat(config)).toBeUndefined();
  });
});
