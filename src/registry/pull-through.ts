// A repository of a REMOTE registry, read through a cache: a decorator over the Repository
// interface that wraps the HostedRepository of the same name (the cache) and the registry's
// upstream client, under a CachePolicy. Immutable content (manifests by digest, blobs) is served
// from the cache when it is there, otherwise fetched, verified against its digest and kept on the
// way through; what a tag names is always asked upstream. Writes are refused: a REMOTE registry is
// a read-only pull-through cache here. (Distribution's registry/proxy has the same shape.)
import type { Logger } from "pino";
import { coversWhole, resolveRange } from "../domain/byte-range.js";
import { isStorageFull, unknownFault, unsupported } from "../domain/errors.js";
import type { ImageName } from "../domain/image-name.js";
import { parseManifest, type Descriptor } from "../domain/manifest.js";
import type { Reference } from "../domain/reference.js";
import type { Manifest as UpstreamManifest, UpstreamClient } from "../upstream/client.js";
import type { HostedRepository } from "./hosted.js";
import type {
  BlobContent,
  BlobInfo,
  BlobReadOptions,
  CachePolicy,
  CallOptions,
  Manifest,
  ManifestReadOptions,
  PushedManifest,
  Repository,
  TagPage,
  UploadSession,
} from "./index.js";
import { directPart, sizeOf, streamedTransfer, transfer, type Transfer } from "./upstream-blob.js";

/** Tags of one upstream repository read for a listing, at most (a runaway upstream cannot exhaust memory). */
const MAX_UPSTREAM_TAGS = 100_000;

export interface Upstream {
  /** Made on first use: content already cached is served even when the client cannot be made (a credential no key opens). */
  client(): UpstreamClient;
  /** The repository's path on the upstream (src/domain/upstream-names.ts). */
  path: string;
}

export class PullThroughRepository implements Repository {
  readonly kind = "pull-through";

  constructor(
    private readonly cache: HostedRepository,
    private readonly upstream: Upstream,
    private readonly policy: CachePolicy,
    private readonly log: Logger,
  ) {}

  get name(): ImageName {
    return this.cache.name;
  }

  // ---- reads ----

  async getManifest(reference: Reference, options: ManifestReadOptions = {}): Promise<Manifest> {
    const client = this.upstream.client();
    const { path } = this.upstream;
    let digest: string;
    if ("tag" in reference) {
      // What a tag names can change upstream at any time: always ask (a HEAD, cheap and not
      // counted as a pull by registries that limit pulls).
      const head = await client.getManifest(path, reference.tag, { method: "HEAD", signal: options.signal });
      if (options.metadataOnly) return this.fromUpstream(head);
      digest = head.digest;
    } else {
      digest = reference.digest;
    }
    if (this.policy.manifests) {
      const cached = await this.cache.findManifest(digest);
      if (cached) {
        await this.cache.touchManifest(digest);
        return cached;
      }
    }
    if (options.metadataOnly) return this.fromUpstream(await client.getManifest(path, digest, { method: "HEAD", signal: options.signal }));
    // By digest: the client checks the bytes against it (data-loss otherwise), so what is kept is right.
    const fetched = await client.getManifest(path, digest, { signal: options.signal });
    if (this.policy.manifests) await this.keepManifest(fetched);
    return this.fromUpstream(fetched);
  }

  async statBlob(digest: string, options: CallOptions = {}): Promise<BlobInfo> {
    const cached = await this.cachedBlob(digest);
    if (cached !== undefined) return { digest, size: cached };
    return { digest, size: await sizeOf(this.upstream.client(), this.upstream.path, digest, undefined, options.signal) };
  }

  async getBlob(digest: string, options: BlobReadOptions = {}): Promise<BlobContent> {
    const cached = await this.cachedBlob(digest);
    if (cached !== undefined) return this.cache.storedBlob(digest, cached, options.range);
    const client = this.upstream.client();
    const { path } = this.upstream;
    if (options.range && options.partial === "direct") return directPart(client, path, digest, options.range, options.signal);
    // The whole blob, so it can be verified and kept. Until the upstream answers there is nothing
    // to keep, so a caller that goes away cancels the request (else it waits, and retries, for
    // nobody); once bytes flow, a reader that goes away no longer stops the caching.
    const answer = await untilAnswered(options.signal, (signal) => client.getBlob(path, digest, { signal }));
    const t: Transfer = {
      body: answer.body,
      digest,
      size: 0,
      what: `blob ${digest} of ${path} from upstream ${client.host}`,
      cache: this.policy.blobs ? this.cache : undefined,
      log: this.log,
      logFields: { image: this.name.full, digest },
    };
    let range;
    try {
      t.size = await sizeOf(client, path, digest, answer.size);
      range = options.range && resolveRange(options.range, t.size, `blob ${digest} of ${this.name.full}`);
    } catch (err) {
      answer.body.destroy();
      throw err;
    }
    if (coversWhole(range, t.size) || !t.cache) return streamedTransfer(t, range);
    // A part cannot be verified: the whole blob goes into the cache first, and the part is served from there.
    try {
      await transfer(t);
      return this.cache.storedBlob(digest, t.size, options.range);
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      // Caching is an optimisation: with the store full, the whole blob streams from the upstream
      // again through the verifier, and the reader gets its part (the last piece once verified).
      this.log.warn({ ...t.logFields, ...err.logDetails }, "pull-through: the content store is full; range served from the upstream, not cached");
      const again = await client.getBlob(path, digest);
      return streamedTransfer({ ...t, body: again.body, cache: undefined }, range);
    }
  }

  async listTags(page: { n: number; last?: string }, options: CallOptions = {}): Promise<TagPage> {
    if (page.n === 0) return { json: "[]" };
    // Upstreams may ignore n and last and need not sort (Distribution 2.8 does not): read them
    // all, then page here the way the spec says.
    const all: string[] = [];
    for await (const tag of this.upstream.client().allTags(this.upstream.path, { signal: options.signal })) {
      if (all.length >= MAX_UPSTREAM_TAGS) break;
      all.push(tag);
    }
    all.sort();
    const after = page.last === undefined ? all : all.filter((t) => t > page.last!);
    const items = after.slice(0, page.n);
    return { json: JSON.stringify(items), next: after.length > page.n ? items[items.length - 1] : undefined };
  }

  /** Only what the cache holds: referrers are not asked upstream. */
  referrers(digest: string, filter: { artifactType?: string; after?: string; limit: number }): Promise<Descriptor[]> {
    return this.cache.referrers(digest, filter);
  }

  // ---- writes: refused ----

  async putManifest(): Promise<PushedManifest> {
    throw this.readOnly();
  }
  async deleteManifest(): Promise<void> {
    throw this.readOnly();
  }
  async deleteBlob(): Promise<void> {
    throw this.readOnly();
  }
  async mountBlob(): Promise<boolean> {
    throw this.readOnly();
  }
  async putBlob(): Promise<void> {
    throw this.readOnly();
  }
  async startUpload(): Promise<UploadSession> {
    throw this.readOnly();
  }
  async getUpload(): Promise<UploadSession> {
    throw this.readOnly();
  }
  async appendUpload(): Promise<number> {
    throw this.readOnly();
  }
  async commitUpload(): Promise<void> {
    throw this.readOnly();
  }
  async cancelUpload(): Promise<void> {
    throw this.readOnly();
  }

  // ---- internals ----

  private readOnly() {
    return unsupported(`registry "${this.name.registry}" is REMOTE: it is a read-only pull-through cache of its upstream here; push to a HOSTED registry`);
  }

  /** The size of the cached blob (marked used), or undefined when the cache does not hold it. */
  private async cachedBlob(digest: string): Promise<number | undefined> {
    if (!this.policy.blobs) return undefined;
    const size = await this.cache.findBlob(digest);
    if (size !== undefined) await this.cache.touchBlob(digest);
    return size;
  }

  /** Keeps a verified manifest; a failure to keep it is logged, never a failed pull. */
  private async keepManifest(fetched: UpstreamManifest): Promise<void> {
    try {
      await this.cache.keepManifest(fetched.digest, fetched.bytes!, parseManifest(fetched.bytes!, fetched.mediaType));
    } catch (err) {
      this.log.warn({ err, image: this.name.full, digest: fetched.digest }, "pull-through: manifest served but not cached");
    }
  }

  private fromUpstream(m: UpstreamManifest): Manifest {
    const host = this.upstream.client().host;
    return {
      digest: m.digest,
      mediaType: m.mediaType,
      size: m.size,
      bytes: m.bytes,
      parse: () => {
        if (!m.bytes) throw new Error(`manifest ${m.digest} was read without its bytes`);
        try {
          return parseManifest(m.bytes, m.mediaType);
        } catch (err) {
          throw unknownFault(`upstream ${host} sent manifest ${this.name.full}@${m.digest} that is not valid (${(err as Error).message})`);
        }
      },
    };
  }
}

/** Runs `request` with a signal that follows `caller`'s only until the request resolves. */
async function untilAnswered<T>(caller: AbortSignal | undefined, request: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
  if (!caller) return request(undefined);
  const controller = new AbortController();
  const abort = () => controller.abort(caller.reason);
  if (caller.aborted) abort();
  else caller.addEventListener("abort", abort, { once: true });
  try {
    return await request(controller.signal);
  } finally {
    caller.removeEventListener("abort", abort);
  }
}
