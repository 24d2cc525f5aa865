// A repository of a HOSTED registry: manifests and tags in the catalog tables (src/store), blob
// bytes in the content store (src/content). The same class is the cache of a pull-through
// repository (pull-through.ts): then its writes come from the upstream, never from a client, and
// the repository is created with the upstream path it stands for.
import type { Logger } from "pino";
import type { ContentDriver, Body } from "../content/driver.js";
import { resolveRange, type RangeRequest } from "../domain/byte-range.js";
import { digestAlgorithm, digestOf } from "../domain/digest.js";
import { blobUnknown, dataLoss, digestInvalid, manifestUnknown, nameUnknown, unsupported } from "../domain/errors.js";
import type { ImageName } from "../domain/image-name.js";
import { parseManifest, type Descriptor, type ParsedManifest } from "../domain/manifest.js";
import { referenceSuffix, type Reference } from "../domain/reference.js";
import type { Store } from "../store/index.js";
import type { ResolvedImage, StoredManifest } from "../store/images.js";
import type { UploadRow } from "../store/blobs.js";
import { StoredBlob } from "./blob-content.js";
import type {
  BlobContent,
  BlobInfo,
  BlobReadOptions,
  CachePolicy,
  Manifest,
  ManifestReadOptions,
  PushedManifest,
  Repository,
  TagPage,
  UploadSession,
  WriteOptions,
} from "./index.js";

export interface CoreDeps {
  store: Store;
  content: ContentDriver;
  log: Logger;
  /** Largest blob one upload (or one cache fill) may carry (BLOB_MAX_BYTES). */
  blobMaxBytes: number;
  cachePolicy: CachePolicy;
  /** BLOB_REDIRECT: /v2/ blob reads answer 307 to the content store's presigned URL when it has one. */
  blobRedirect?: boolean;
}

/** The manifest the resolver fetched with the name (one round trip), for the reference it was asked for. */
export interface Prefetched {
  reference: Reference;
  manifest: StoredManifest | undefined;
  /** From the read cache: its bytes were verified against the digest when they were kept. */
  verified?: boolean;
  /** The read cache's ticket taken before the query (store/hot-cache.ts): a verified manifest is kept under it. */
  ticket?: number;
}

class HostedUpload implements UploadSession {
  constructor(readonly row: UploadRow) {}
  get id(): string {
    return this.row.id;
  }
  get size(): number {
    return this.row.sizeBytes;
  }
}

const row = (session: UploadSession): UploadRow => {
  if (!(session instanceof HostedUpload)) throw new Error("an upload session of another repository kind");
  return session.row;
};

export class HostedRepository implements Repository {
  readonly kind = "hosted";

  /**
   * `cacheOf`: this repository is the cache of a REMOTE registry's repository with this upstream
   * path, recorded when the first cache write creates it.
   */
  constructor(
    private readonly deps: CoreDeps,
    readonly name: ImageName,
    private readonly image: ResolvedImage,
    private prefetched?: Prefetched,
    private readonly cacheOf?: { upstreamPath: string },
  ) {}

  /** The repository's row id, or undefined while it does not exist. */
  get repositoryId(): string | undefined {
    return this.image.repositoryId;
  }

  // ---- reads ----

  async getManifest(reference: Reference, options: ManifestReadOptions = {}): Promise<Manifest> {
    const prefetched = this.prefetched;
    let manifest: Manifest;
    if (prefetched?.verified && prefetched.manifest && sameReference(prefetched.reference, reference)) {
      this.prefetched = undefined;
      manifest = this.manifestOf(prefetched.manifest);
    } else {
      const stored = await this.storedManifest(this.existing(), reference);
      if (!stored) throw manifestUnknown(`manifest unknown: ${this.name.full}${referenceSuffix(reference)}`);
      manifest = this.checked(stored);
      if (prefetched?.ticket !== undefined && prefetched.manifest === stored) {
        this.deps.store.images.keepManifest(this.name, this.image, reference, stored, prefetched.ticket);
      }
    }
    // A pull is a read of the bytes (a HEAD, metadata_only, is a check): noted in memory only,
    // written with the others every PULL_TIME_FLUSH_MS (src/store/pull-times.ts).
    if (!options.metadataOnly) this.deps.store.pullTimes.record(this.image.repositoryId!, "tag" in reference ? reference.tag : undefined, manifest.digest);
    return manifest;
  }

  /** When the manifest was last pulled (written pulls only: up to PULL_TIME_FLUSH_MS behind). */
  lastPullTime(digest: string): Promise<Date | undefined> {
    return this.deps.store.images.lastPullTime(this.existing(), digest);
  }

  /** A manifest by digest when this repository holds it (the pull-through cache's question: no error when not). */
  async findManifest(digest: string): Promise<Manifest | undefined> {
    const id = this.repositoryId;
    const stored = id === undefined ? undefined : await this.storedManifest(id, { digest });
    return stored && this.checked(stored);
  }

  async statBlob(digest: string): Promise<BlobInfo> {
    return { digest, size: await this.blobSize(digest) };
  }

  async getBlob(digest: string, options: BlobReadOptions = {}): Promise<BlobContent> {
    return this.storedBlob(digest, await this.blobSize(digest), options.range);
  }

  /** The size of a blob this repository may read, or undefined (the pull-through cache's question). */
  async findBlob(digest: string): Promise<number | undefined> {
    const id = this.repositoryId;
    return id === undefined ? undefined : (await this.deps.store.blobs.find(id, digest))?.size;
  }

  /** The stored bytes of a blob of `size` bytes, or the part `range` names of them. */
  storedBlob(digest: string, size: number, range: RangeRequest | undefined): BlobContent {
    const part = range && resolveRange(range, size, `blob ${digest} of ${this.name.full}`);
    return new StoredBlob(this.deps.content, digest, size, part, this.deps.blobRedirect);
  }

  async listTags(page: { n: number; last?: string }): Promise<TagPage> {
    const id = this.existing();
    if (page.n === 0) return { json: "[]" };
    return this.deps.store.images.tagNamesPage(id, page.n, page.last, this.image.registry.kind === "hosted");
  }

  async blobMediaType(digest: string): Promise<string | undefined> {
    const id = this.repositoryId;
    return id === undefined ? undefined : this.deps.store.images.blobMediaType(id, digest);
  }

  async referrers(digest: string, filter: { artifactType?: string; after?: string; limit: number }): Promise<Descriptor[]> {
    const id = this.repositoryId;
    return id === undefined ? [] : this.deps.store.images.referrers(id, digest, filter);
  }

  // ---- writes ----

  async putManifest(reference: Reference, bytes: Uint8Array, contentType: string | undefined, options: WriteOptions = {}): Promise<PushedManifest> {
    const manifest = parseManifest(bytes, contentType);
    // Hashed with the reference's algorithm when it names one, sha256 otherwise.
    const digest = digestOf(bytes, "digest" in reference ? digestAlgorithm(reference.digest) : "sha256");
    if ("digest" in reference && digest !== reference.digest) {
      throw digestInvalid(`manifest digest ${digest} does not match the reference ${reference.digest}`);
    }
    const tag = "tag" in reference ? reference.tag : undefined;
    return this.deps.store.images.pushManifest({ repositoryId: await this.forWrite(), digest, bytes, manifest, tag, actor: options.actor });
  }

  async deleteManifest(reference: Reference, options: WriteOptions = {}): Promise<void> {
    const id = this.existing();
    const images = this.deps.store.images;
    const deleted =
      "digest" in reference ? await images.deleteManifest(id, reference.digest, options.actor) : await images.deleteTag(id, reference.tag, options.actor);
    if (!deleted) throw manifestUnknown(`manifest unknown: ${this.name.full}${referenceSuffix(reference)}`);
  }

  /**
   * A blob that a manifest of the repository still lists is refused the way the spec refuses a
   * blob delete (UNSUPPORTED): deleting it would leave that manifest pullable without it.
   */
  async deleteBlob(digest: string): Promise<void> {
    const result = await this.deps.store.blobs.unlink(this.existing(), digest);
    if (result.outcome === "unknown") throw this.blobUnknown(digest);
    if (result.outcome === "in-use") {
      throw unsupported(`blob ${digest} is still used by manifest ${result.manifest} of ${this.name.full}; delete the manifest first`);
    }
  }

  async mountBlob(digest: string, from?: ImageName): Promise<boolean> {
    const repositoryId = await this.forWrite();
    let fromRepositoryId: string | undefined;
    if (from) {
      fromRepositoryId = (await this.deps.store.images.resolve(from.registry, from.namespace, from.repository))?.repositoryId;
      if (!fromRepositoryId) return false;
    }
    return (await this.deps.store.blobs.mount(repositoryId, digest, fromRepositoryId)) !== undefined;
  }

  async putBlob(body: Body, digest: string, expectedSize?: number): Promise<void> {
    const session = await this.startUpload();
    try {
      await this.appendUpload(session, body);
      await this.commitUpload(session, digest, expectedSize);
    } catch (err) {
      await this.cancelUpload(session).catch(() => undefined);
      throw err;
    }
  }

  async startUpload(): Promise<UploadSession> {
    return new HostedUpload(await this.deps.store.blobs.startUpload(await this.forWrite()));
  }

  async getUpload(id: string): Promise<UploadSession> {
    return new HostedUpload(await this.deps.store.blobs.getUpload(this.existing(), id));
  }

  appendUpload(session: UploadSession, body: Body): Promise<number> {
    const upload = row(session);
    return this.deps.store.blobs.append(upload, upload.sizeBytes, body, this.deps.blobMaxBytes);
  }

  async commitUpload(session: UploadSession, digest: string, expectedSize?: number): Promise<void> {
    await this.deps.store.blobs.commit(row(session), digest, expectedSize);
  }

  cancelUpload(session: UploadSession): Promise<void> {
    return this.deps.store.blobs.cancel(row(session));
  }

  // ---- what the pull-through cache adds ----

  /** Keeps a manifest fetched from the upstream (verified against its digest by the client). */
  async keepManifest(digest: string, bytes: Uint8Array, manifest: ParsedManifest): Promise<void> {
    await this.deps.store.images.cacheManifest({ repositoryId: await this.forWrite(), digest, bytes, manifest });
  }

  /**
   * Keeps a blob of `size` bytes streamed from an upstream, in one write (no upload session).
   * `body` ends only when the bytes matched the digest (the relay's verifier, src/registry/upstream-blob.ts),
   * and nobody waits for the write: the reader was served as the bytes came. `written`: ContentDriver's WriteOptions.
   */
  async keepBlob(digest: string, size: number, body: Body, written?: (bytes: number) => void): Promise<void> {
    await this.deps.store.blobs.keep(await this.forWrite(), digest, body, size, { verifiedBody: true, background: true, written });
  }

  /** Marks a cached manifest and a cached blob used (at most once per the policy's interval). */
  async touchManifest(digest: string): Promise<void> {
    if (this.repositoryId) await this.deps.store.images.touch(this.repositoryId, digest, this.deps.cachePolicy.touchIntervalMs);
  }

  async touchBlob(digest: string): Promise<void> {
    await this.deps.store.blobs.touch(digest, this.deps.cachePolicy.touchIntervalMs);
  }

  // ---- internals ----

  private existing(): string {
    const id = this.repositoryId;
    if (id === undefined) throw this.unknownRepository();
    return id;
  }

  private unknownRepository() {
    return nameUnknown(`repository ${this.name.namespace}/${this.name.repository} not found in registry "${this.name.registry}"`);
  }

  /** The repository, created by the first push when the registry allows it (a cache: always). */
  private async forWrite(): Promise<string> {
    if (this.image.repositoryId) return this.image.repositoryId;
    if (!this.cacheOf && !this.image.registry.autoCreate) throw this.unknownRepository();
    const { registry } = this.image;
    this.image.repositoryId = await this.deps.store.images.ensureRepository(registry, this.name.namespace, this.name.repository, this.cacheOf?.upstreamPath);
    return this.image.repositoryId;
  }

  private async storedManifest(repositoryId: string, reference: Reference): Promise<StoredManifest | undefined> {
    const prefetched = this.prefetched;
    this.prefetched = undefined;
    if (prefetched && sameReference(prefetched.reference, reference)) return prefetched.manifest;
    return this.deps.store.images.getManifest(repositoryId, reference);
  }

  private async blobSize(digest: string): Promise<number> {
    const found = await this.deps.store.blobs.find(this.existing(), digest);
    if (!found) throw this.blobUnknown(digest);
    return found.size;
  }

  private blobUnknown(digest: string) {
    return blobUnknown(`blob ${digest} not found in ${this.name.full}`);
  }

  /** The stored digest was computed at push; the bytes must still have it. */
  private checked(stored: StoredManifest): Manifest {
    const bytes = stored.payload;
    const what = `manifest ${this.name.full}@${stored.digest}`;
    const actual = digestOf(bytes, digestAlgorithm(stored.digest));
    if (actual !== stored.digest) throw dataLoss(`${what} is damaged in the store: its bytes have digest ${actual}`, "digest-mismatch");
    return this.manifestOf(stored);
  }

  private manifestOf(stored: StoredManifest): Manifest {
    const bytes = stored.payload;
    const what = `manifest ${this.name.full}@${stored.digest}`;
    return {
      digest: stored.digest,
      mediaType: stored.mediaType,
      size: bytes.byteLength,
      bytes,
      parse: () => {
        try {
          return parseManifest(bytes, stored.mediaType);
        } catch (err) {
          throw dataLoss(`${what} is damaged in the store (${(err as Error).message})`);
        }
      },
    };
  }
}

const sameReference = (a: Reference, b: Reference): boolean =>
  "tag" in a && "tag" in b ? a.tag === b.tag : "digest" in a && "digest" in b && a.digest === b.digest;
