// The contract of src/registry/index.ts as tests: every Repository implementation runs this suite
// unchanged (test/registry.test.ts runs it for the HOSTED repository and for the pull-through one
// over a real docker-registry upstream, on both databases), as the content drivers run
// test/content-conformance.ts. Each subject is seeded with the same content; reads must answer
// alike, writes where the implementation takes them and refusals where it does not.
import { randomBytes } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImageName } from "../src/domain/image-name.js";
import { DomainError, RangeNotSatisfiable, type ErrorKind } from "../src/domain/errors.js";
import type { BlobContent, Registries, Repository } from "../src/registry/index.js";
import { expectDomainError, readAll } from "./content-conformance.js";
import { makeImage, MT, sha256, type PushedImage } from "./support/registry-client.js";

/** What every subject holds before the suite runs, in repository `CoreSubject.name`. */
export interface SeedContent {
  /** An image whose layer is big enough to arrive in several pieces (300 KiB). */
  image: PushedImage;
  /** An artifact whose subject is `image`, pushed by digest. */
  referrer: PushedImage;
  /** Tags that all name `image`. */
  tags: string[];
}

export interface CoreSubject {
  registries: Registries;
  /** The repository holding the seed content. */
  name: ImageName;
  /** A repository of the same registry that does not exist. */
  missing: ImageName;
  /** Takes uploads, pushes and deletes (HOSTED); otherwise refuses every write. */
  writes: boolean;
  cleanup(): Promise<void>;
}

const nameOf = (registry: string, namespace: string, repository: string): ImageName => ({
  registry,
  namespace,
  repository,
  full: `${registry}/${namespace}/${repository}`,
});

class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.chunks.push(chunk);
    done();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

async function bytesOf(blob: BlobContent, how: "read" | "pipeTo"): Promise<Buffer> {
  if (how === "read") return readAll(await blob.read());
  const sink = new Collector();
  let readyBefore = false;
  let delivered = false;
  await blob.pipeTo(sink, { ready: () => (readyBefore = sink.chunks.length === 0), delivered: () => (delivered = true) });
  expect({ readyBefore, delivered }).toEqual({ readyBefore: true, delivered: true });
  return sink.bytes;
}

export function seedContent(): SeedContent {
  const image = makeImage({ layerBytes: 300 * 1024 });
  const referrer = makeImage({ subject: image.descriptor, artifactType: "application/vnd.example.sbom+json" });
  return { image, referrer, tags: ["1.0", "1.1", "latest", "b2"] };
}

export function registryCoreConformance(label: string, content: SeedContent, make: (content: SeedContent) => Promise<CoreSubject>): void {
  describe(`registry core conformance: ${label}`, () => {
    let subject: CoreSubject;
    let repo: Repository;
    const { image, referrer } = content;
    const layer = () => image.layer;
    const layerDigest = () => sha256(image.layer);

    beforeAll(async () => {
      subject = await make(content);
      repo = await subject.registries.repository(subject.name);
    });
    afterAll(async () => {
      await subject?.cleanup();
    });

    describe("names", () => {
      it("an unknown registry is name-unknown; a repository that does not exist yet is returned, and reading it is not-found", async () => {
        await expectDomainError(subject.registries.repository(nameOf("no-such-registry", "team", "app")), "not-found", "name-unknown");
        const missing = await subject.registries.repository(subject.missing);
        expect(missing.name).toEqual(subject.missing);
        const error = await expectDomainErrorKind(missing.getManifest({ tag: "1.0" }), "not-found");
        expect(["name-unknown", "manifest-unknown"]).toContain(error.reason);
        await expectDomainErrorKind(missing.listTags({ n: 10 }), "not-found");
        expect(await missing.referrers(image.digest, { limit: 10 })).toEqual([]);
      });
    });

    describe("manifests", () => {
      it("by tag and by digest: the exact bytes, digest, media type and size, and what they say", async () => {
        for (const reference of [{ tag: "1.0" }, { digest: image.digest }]) {
          const m = await repo.getManifest(reference);
          expect({ digest: m.digest, mediaType: m.mediaType, size: m.size }).toEqual({
            digest: image.digest,
            mediaType: MT.ociManifest,
            size: image.bytes.length,
          });
          expect(Buffer.from(m.bytes!).equals(image.bytes)).toBe(true);
          expect(m.parse().layers.map((l) => l.digest)).toEqual([layerDigest()]);
        }
      });

      it("metadata only (HEAD): digest, media type and size", async () => {
        for (const reference of [{ tag: "latest" }, { digest: image.digest }]) {
          const m = await repo.getManifest(reference, { metadataOnly: true });
          expect({ digest: m.digest, mediaType: m.mediaType, size: m.size }).toEqual({
            digest: image.digest,
            mediaType: MT.ociManifest,
            size: image.bytes.length,
          });
        }
      });

      it("the prefetched manifest of the resolver is the one asked for, and only that one", async () => {
        const prefetched = await subject.registries.repository(subject.name, { manifest: { tag: "1.1" } });
        expect((await prefetched.getManifest({ tag: "1.1" })).digest).toBe(image.digest);
        expect((await prefetched.getManifest({ digest: referrer.digest })).digest).toBe(referrer.digest);
        const other = await subject.registries.repository(subject.name, { manifest: { tag: "1.1" } });
        await expectDomainError(other.getManifest({ tag: "no-such-tag" }), "not-found", "manifest-unknown");
      });

      it("an unknown tag or digest is manifest-unknown", async () => {
        await expectDomainError(repo.getManifest({ tag: "no-such-tag" }), "not-found", "manifest-unknown");
        await expectDomainError(repo.getManifest({ digest: sha256("no such manifest") }), "not-found", "manifest-unknown");
      });
    });

    describe("blobs", () => {
      it("stat: the size, without the bytes; an unknown blob is blob-unknown", async () => {
        expect(await repo.statBlob(layerDigest())).toEqual({ digest: layerDigest(), size: layer().length });
        await expectDomainError(repo.statBlob(sha256("no such blob")), "not-found", "blob-unknown");
        await expectDomainError(repo.getBlob(sha256("no such blob")), "not-found", "blob-unknown");
      });

      it.each(["read", "pipeTo"] as const)("whole, byte for byte, by %s; the size is known before the first byte", async (how) => {
        for (let round = 0; round < 2; round++) {
          const blob = await repo.getBlob(layerDigest());
          expect({ size: blob.size, length: blob.length, range: blob.range }).toEqual({ size: layer().length, length: layer().length, range: undefined });
          expect((await bytesOf(blob, how)).equals(layer())).toBe(true);
        }
      });

      it("HTTP ranges: start-end, start-, the last n bytes, an end past the last byte", async () => {
        const size = layer().length;
        const cases: [Parameters<Repository["getBlob"]>[1], number, number][] = [
          [{ range: { start: 10, end: 99 } }, 10, 99],
          [{ range: { start: size - 100 } }, size - 100, size - 1],
          [{ range: { suffix: 50 } }, size - 50, size - 1],
          [{ range: { start: 1000, end: size + 1000 } }, 1000, size - 1],
          [{ range: { start: 0 } }, 0, size - 1],
        ];
        for (const [options, start, end] of cases) {
          const blob = await repo.getBlob(layerDigest(), options);
          expect({ range: blob.range, length: blob.length, size: blob.size }).toEqual({ range: { start, end }, length: end - start + 1, size });
          expect((await bytesOf(blob, "pipeTo")).equals(layer().subarray(start, end + 1))).toBe(true);
        }
      });

      it("offset and length, read directly or verified whole first: the same bytes", async () => {
        const size = layer().length;
        for (const partial of ["direct", "verify-whole"] as const) {
          const part = await repo.getBlob(layerDigest(), { range: { offset: 7, length: 65_536 }, partial });
          expect(part.range).toEqual({ start: 7, end: 7 + 65_535 });
          expect((await bytesOf(part, "read")).equals(layer().subarray(7, 7 + 65_536))).toBe(true);
          const tail = await repo.getBlob(layerDigest(), { range: { offset: size - 10, length: 1000 }, partial });
          expect((await bytesOf(tail, "read")).equals(layer().subarray(size - 10))).toBe(true);
          // Offset 0 and a length that covers everything is the whole blob.
          const whole = await repo.getBlob(layerDigest(), { range: { offset: 0, length: size + 1 }, partial });
          expect(whole.range).toBeUndefined();
          expect((await bytesOf(whole, "read")).equals(layer())).toBe(true);
        }
      });

      it("a range with nothing in the blob is RangeNotSatisfiable, with the size", async () => {
        const size = layer().length;
        for (const options of [
          { range: { start: size } },
          { range: { suffix: 0 } },
          { range: { offset: size, length: 0 }, partial: "direct" as const },
          { range: { offset: size + 5, length: 1 } },
        ]) {
          const error = await repo.getBlob(layerDigest(), options).then(
            () => undefined,
            (err: unknown) => err,
          );
          expect(error, JSON.stringify(options)).toBeInstanceOf(RangeNotSatisfiable);
          expect((error as RangeNotSatisfiable).size).toBe(size);
        }
      });

      it("discard lets go of bytes never read, and the next read is whole", async () => {
        (await repo.getBlob(layerDigest())).discard();
        expect((await bytesOf(await repo.getBlob(layerDigest()), "read")).equals(layer())).toBe(true);
      });
    });

    describe("tags and referrers", () => {
      it("tags in byte order, paged with n and last; n = 0 is an empty page", async () => {
        const sorted = [...content.tags].sort();
        const all = await repo.listTags({ n: 1000 });
        expect({ tags: JSON.parse(all.json) as string[], next: all.next }).toEqual({ tags: sorted, next: undefined });
        const first = await repo.listTags({ n: 2 });
        expect({ tags: JSON.parse(first.json) as string[], next: first.next }).toEqual({ tags: sorted.slice(0, 2), next: sorted[1] });
        const rest = await repo.listTags({ n: 2, last: first.next });
        expect({ tags: JSON.parse(rest.json) as string[], next: rest.next }).toEqual({ tags: sorted.slice(2, 4), next: undefined });
        expect(JSON.parse((await repo.listTags({ n: 0 })).json)).toEqual([]);
      });

      it("referrers: a manifest whose subject is the image, once the repository holds it; artifactType filters", async () => {
        // A pull-through repository knows what it has read: reading the artifact once puts it in the cache.
        expect((await repo.getManifest({ digest: referrer.digest })).digest).toBe(referrer.digest);
        const listed = await repo.referrers(image.digest, { limit: 10 });
        expect(listed).toEqual([
          { mediaType: MT.ociManifest, digest: referrer.digest, size: referrer.bytes.length, artifactType: "application/vnd.example.sbom+json" },
        ]);
        expect(await repo.referrers(image.digest, { artifactType: "application/vnd.other", limit: 10 })).toEqual([]);
        expect(await repo.referrers(image.digest, { after: referrer.digest, limit: 10 })).toEqual([]);
      });
    });

    describe("writes", () => {
      const fresh = () => nameOf(subject.name.registry, "written", `repo-${randomBytes(4).toString("hex")}`);

      it("uploads: start, append in parts, status, commit; the blob reads back", async () => {
        const target = await subject.registries.repository(fresh());
        if (!subject.writes) return expectRefused(target.startUpload());
        const bytes = randomBytes(70_000);
        const session = await target.startUpload();
        expect(session.size).toBe(0);
        expect(await target.appendUpload(session, Readable.from([bytes.subarray(0, 30_000)]))).toBe(30_000);
        const resumed = await target.getUpload(session.id);
        expect(resumed.size).toBe(30_000);
        expect(await target.appendUpload(resumed, Readable.from([bytes.subarray(30_000)]))).toBe(70_000);
        await target.commitUpload(await target.getUpload(session.id), sha256(bytes));
        await expectDomainError(target.getUpload(session.id), "not-found", "upload-unknown");
        expect((await bytesOf(await target.getBlob(sha256(bytes)), "read")).equals(bytes)).toBe(true);
      });

      it("uploads: a wrong digest is refused and keeps nothing; cancel forgets the session", async () => {
        const target = await subject.registries.repository(fresh());
        if (!subject.writes) return expectRefused(target.putBlob(Readable.from([Buffer.from("x")]), sha256("x")));
        const bytes = randomBytes(1000);
        await expectDomainError(target.putBlob(Readable.from([bytes]), sha256("something else")), "invalid-argument", "digest-mismatch");
        await expectDomainError(target.statBlob(sha256("something else")), "not-found", "blob-unknown");
        await target.putBlob(Readable.from([bytes]), sha256(bytes), bytes.length);
        expect(await target.statBlob(sha256(bytes))).toEqual({ digest: sha256(bytes), size: bytes.length });
        const session = await target.startUpload();
        await target.cancelUpload(session);
        await expectDomainError(target.getUpload(session.id), "not-found", "upload-unknown");
      });

      it("mount: a blob another repository holds; nothing to mount is false", async () => {
        const target = await subject.registries.repository(fresh());
        if (!subject.writes) return expectRefused(target.mountBlob(layerDigest(), subject.name));
        expect(await target.mountBlob(sha256("nothing"), subject.name)).toBe(false);
        expect(await target.mountBlob(layerDigest(), subject.missing)).toBe(false);
        expect(await target.mountBlob(layerDigest(), subject.name)).toBe(true);
        expect(await target.statBlob(layerDigest())).toEqual({ digest: layerDigest(), size: layer().length });
      });

      it("push a manifest by tag and by digest; a wrong digest or a missing blob is refused", async () => {
        const target = await subject.registries.repository(fresh());
        if (!subject.writes) return expectRefused(target.putManifest({ tag: "v1" }, image.bytes, image.mediaType));
        await expectDomainError(target.putManifest({ tag: "v1" }, image.bytes, image.mediaType), "failed-precondition", "manifest-blob-unknown");
        for (const blob of image.blobs) await target.putBlob(Readable.from([blob]), sha256(blob));
        await expectDomainError(target.putManifest({ digest: sha256("other") }, image.bytes, image.mediaType), "invalid-argument", "digest-invalid");
        expect(await target.putManifest({ tag: "v1" }, image.bytes, image.mediaType)).toEqual({ digest: image.digest, subjectDigest: undefined });
        expect(await target.putManifest({ digest: image.digest }, image.bytes, image.mediaType)).toEqual({ digest: image.digest, subjectDigest: undefined });
        expect((await target.getManifest({ tag: "v1" })).digest).toBe(image.digest);
        expect(JSON.parse((await target.listTags({ n: 10 })).json)).toEqual(["v1"]);
      });

      it("deletes: a tag (the manifest stays), the manifest, then its blobs (refused while a manifest lists them)", async () => {
        const target = await subject.registries.repository(fresh());
        if (!subject.writes) return expectRefused(repo.deleteManifest({ tag: "1.0" }));
        for (const blob of image.blobs) await target.putBlob(Readable.from([blob]), sha256(blob));
        await target.putManifest({ tag: "v1" }, image.bytes, image.mediaType);
        await expectDomainError(target.deleteBlob(layerDigest()), "failed-precondition", "unsupported");
        await target.deleteManifest({ tag: "v1" });
        await expectDomainError(target.getManifest({ tag: "v1" }), "not-found", "manifest-unknown");
        expect((await target.getManifest({ digest: image.digest })).digest).toBe(image.digest);
        await target.deleteManifest({ digest: image.digest });
        await expectDomainError(target.deleteManifest({ digest: image.digest }), "not-found", "manifest-unknown");
        await target.deleteBlob(layerDigest());
        await expectDomainError(target.statBlob(layerDigest()), "not-found", "blob-unknown");
        await expectDomainError(target.deleteBlob(layerDigest()), "not-found", "blob-unknown");
      });

      it("a repository that refuses writes creates nothing", async () => {
        if (subject.writes) return;
        const name = fresh();
        const target = await subject.registries.repository(name);
        for (const write of [
          () => target.startUpload(),
          () => target.getUpload("00000000-0000-4000-8000-000000000000"),
          () => target.deleteBlob(layerDigest()),
          () => target.putBlob(Readable.from([layer()]), layerDigest()),
        ]) {
          await expectRefused(write());
        }
        expect(await subject.registries.catalog(1000)).not.toContain(name.full);
      });
    });
  });
}

async function expectRefused(promise: Promise<unknown>): Promise<void> {
  await expectDomainError(promise, "failed-precondition", "unsupported");
}

async function expectDomainErrorKind(promise: Promise<unknown>, kind: ErrorKind) {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, `expected DomainError ${kind}`).toBeInstanceOf(DomainError);
  expect((error as DomainError).kind, (error as DomainError).message).toBe(kind);
  return error as DomainError;
}
