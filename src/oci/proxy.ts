// The pull-through proxy for REMOTE registries on /v2/<registry>/<namespace>/<repository...>/…:
// immutable content (manifests by digest, blobs) is served from the content store when cached and
// otherwise fetched from the upstream, verified against its digest, and cached on the way through
// (blobs via an upload session and BlobStore.commit, so the garbage collector's lock protocol
// holds); what a tag means is always asked upstream, never cached. Tag lists are the upstream's.
import { PassThrough, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { isDomainError, isStorageFull } from "../domain/errors.js";
import { contentRange, parseRangeHeader, resolveRange, sliceOf } from "../domain/byte-range.js";
import { parseManifest } from "../domain/manifest.js";
import { isDockerHub, upstreamPathOf } from "../domain/upstream-names.js";
import type { ImageRegistry, ResolvedImage } from "../store/images.js";
import type { UpstreamClient } from "../upstream/client.js";
import { verifyDigest } from "../domain/digest.js";
import { blobHeaders, serveStoredBlob } from "./blobs.js";
import type { OciDeps } from "./deps.js";
import { API_VERSION, header, pageSize, send, type Request, type Response } from "./http.js";
import { sendTags } from "./listings.js";
import { serveManifest } from "./manifests.js";
import type { ImageName } from "../domain/image-name.js";
import { DEFAULT_CACHE_POLICY } from "../registry/index.js";
import type { Reference } from "../domain/reference.js";

/** Tags of one upstream repository read for a listing, at most (a runaway upstream cannot exhaust memory). */
const MAX_UPSTREAM_TAGS = 100_000;

interface Upstream {
  client: UpstreamClient;
  /** The repository's path on the upstream (src/domain/upstream-names.ts). */
  path: string;
}

export class PullThrough {
  constructor(
    private readonly deps: OciDeps,
    private readonly upstreams: { for(registry: ImageRegistry): UpstreamClient },
  ) {}

  async manifest(req: Request, res: Response, name: ImageName, image: ResolvedImage, reference: Reference): Promise<void> {
    const upstream = this.upstream(name, image);
    let digest: string;
    if ("tag" in reference) {
      // What a tag names can change upstream at any time: always ask (a HEAD, cheap and not
      // counted as a pull by registries that limit pulls).
      const head = await upstream.client.getManifest(upstream.path, reference.tag, { method: "HEAD" });
      if (req.method === "HEAD") return sendManifestHead(res, head);
      digest = head.digest;
    } else {
      digest = reference.digest;
    }
    if (image.repositoryId) {
      const cached = await this.deps.store.images.getManifest(image.repositoryId, { digest });
      if (cached) {
        await this.deps.store.images.touch(image.repositoryId, digest, DEFAULT_CACHE_POLICY.touchIntervalMs);
        return serveManifest(req, res, cached);
      }
    }
    if (req.method === "HEAD") return sendManifestHead(res, await upstream.client.getManifest(upstream.path, digest, { method: "HEAD" }));
    // By digest: the client checks the bytes against it (data-loss otherwise), so what is cached is right.
    const fetched = await upstream.client.getManifest(upstream.path, digest);
    await this.cacheManifest(name, image, upstream, fetched.digest, fetched.mediaType, fetched.bytes!);
    serveManifest(req, res, { digest: fetched.digest, mediaType: fetched.mediaType, payload: fetched.bytes! });
  }

  async blob(req: Request, res: Response, name: ImageName, image: ResolvedImage, digest: string): Promise<void> {
    if (image.repositoryId) {
      const found = await this.deps.store.blobs.find(image.repositoryId, digest);
      if (found) {
        await this.deps.store.blobs.touch(digest, DEFAULT_CACHE_POLICY.touchIntervalMs);
        return serveStoredBlob(this.deps, req, res, digest, found.size);
      }
    }
    const upstream = this.upstream(name, image);
    if (req.method === "HEAD") {
      const info = await upstream.client.headBlob(upstream.path, digest);
      return send(res, 200, { ...blobHeaders(digest), ...(info.size === undefined ? {} : { "content-length": info.size }) });
    }
    const range = header(req, "range");
    if (range !== undefined) {
      // A part of a blob cannot be verified: fetch the whole blob into the cache, then serve the part.
      try {
        const size = await this.fetchBlob(name, image, upstream, digest, undefined);
        return await serveStoredBlob(this.deps, req, res, digest, size);
      } catch (err) {
        if (!isStorageFull(err)) throw err;
        // Caching is an optimisation: with the store full, stream the whole blob from the upstream
        // again through the verifier and send the client its part.
        this.deps.log.warn(
          { image: name.full, digest, ...err.logDetails },
          "pull-through: the content store is full; range served from the upstream, not cached",
        );
        await this.fetchBlob(name, image, upstream, digest, { res, range }, false);
        return;
      }
    }
    await this.fetchBlob(name, image, upstream, digest, { res });
  }

  async tags(res: Response, name: ImageName, image: ResolvedImage, q: URLSearchParams): Promise<void> {
    const n = pageSize(q);
    const last = q.get("last") || undefined;
    if (n === 0) return sendTags(res, name, [], 0);
    const upstream = this.upstream(name, image);
    // Upstreams may ignore n and last and need not sort (Distribution 2.8 does not): read them
    // all, then page here the way the spec says.
    const all: string[] = [];
    for await (const tag of upstream.client.allTags(upstream.path)) {
      if (all.length >= MAX_UPSTREAM_TAGS) break;
      all.push(tag);
    }
    all.sort();
    const after = last === undefined ? all : all.filter((t) => t > last);
    sendTags(res, name, after.slice(0, n + 1), n);
  }

  private upstream(name: ImageName, image: ResolvedImage): Upstream {
    const client = this.upstreams.for(image.registry);
    const path = upstreamPathOf(name.namespace, name.repository, { dockerHub: isDockerHub(image.registry.url), upstreamName: image.upstreamName });
    return { client, path };
  }

  /** The proxied repository's id, created (with its upstream path) on the first cache write. */
  private async repositoryId(name: ImageName, image: ResolvedImage, upstream: Upstream): Promise<string> {
    image.repositoryId ??= await this.deps.store.images.ensureRepository(image.registry, name.namespace, name.repository, upstream.path);
    return image.repositoryId;
  }

  /** Caches a verified manifest; a failure to cache is logged, never a failed pull. */
  private async cacheManifest(name: ImageName, image: ResolvedImage, upstream: Upstream, digest: string, mediaType: string, bytes: Buffer): Promise<void> {
    try {
      const manifest = parseManifest(bytes, mediaType);
      await this.deps.store.images.cacheManifest({ repositoryId: await this.repositoryId(name, image, upstream), digest, bytes, manifest });
    } catch (err) {
      this.deps.log.warn({ err, image: name.full, digest }, "pull-through: manifest served but not cached");
    }
  }

  /**
   * Fetches a whole blob from the upstream, verifying its digest on the way, into the cache
   * (unless `cache` is false) and, when `out` is given, to the client at the same time: all of
   * it, or the part `out.range` (a Range header) names. The cached copy is committed only when
   * every byte matched; a mismatch or a broken upstream ends the client's response early (never
   * a silent truncation) and caches nothing. A client that goes away does not stop the caching;
   * a cache that cannot be written (the store is full) does not stop the client's pull. Returns
   * the blob's size.
   */
  private async fetchBlob(
    name: ImageName,
    image: ResolvedImage,
    upstream: Upstream,
    digest: string,
    out: { res: Response; range?: string } | undefined,
    cache = true,
  ): Promise<number> {
    const { store, limits, log } = this.deps;
    const blob = await upstream.client.getBlob(upstream.path, digest);
    const size = blob.size;
    // An upstream that did not say the size gets the whole blob sent (a server may ignore Range).
    let range;
    try {
      const request = out?.range === undefined || size === undefined ? undefined : parseRangeHeader(out.range);
      range = request && resolveRange(request, size!);
    } catch (err) {
      blob.body.destroy();
      throw err;
    }
    const verifier = verifyDigest(digest, { size, what: `blob ${digest} of ${upstream.path} from upstream ${upstream.client.host}` });
    // Errors (a broken upstream, a digest mismatch) surface through the loop over the verifier below.
    pipeline(blob.body, verifier).catch(() => undefined);
    let upload;
    try {
      upload = cache ? await this.startCaching(name, image, upstream, digest, out !== undefined) : undefined;
    } catch (err) {
      blob.body.destroy();
      throw err;
    }
    const toCache = new PassThrough();
    toCache.on("error", () => undefined); // reported by the append below
    let cacheFailed: unknown;
    const caching = upload
      ? store.blobs
          .append(upload, 0, toCache, limits.blobMaxBytes)
          .then(() => store.blobs.commit(upload, digest, size))
          .catch((err: unknown) => {
            cacheFailed = err;
            toCache.destroy();
          })
      : undefined;
    const res = out?.res;
    if (res) {
      const headers = { ...API_VERSION, ...blobHeaders(digest) };
      if (range) res.writeHead(206, { ...headers, "content-length": range.end - range.start + 1, "content-range": contentRange(range, size!) });
      else res.writeHead(200, { ...headers, ...(size === undefined ? {} : { "content-length": size }) });
    }
    // The client gets each piece one piece late: the last one only once the digest is verified,
    // so a corrupt blob ends short of its Content-Length (an error for any HTTP client), never as
    // a complete answer with the wrong bytes.
    let held: Buffer | undefined;
    let position = 0;
    const forward = async (piece: Buffer) => {
      if (res && !res.destroyed) await write(res, piece);
    };
    try {
      for await (const chunk of verifier as AsyncIterable<Buffer>) {
        if (caching && cacheFailed === undefined) await write(toCache, chunk);
        const piece = range ? sliceOf(chunk, position, range) : chunk;
        position += chunk.length;
        if (piece.length === 0) continue;
        if (held) await forward(held);
        held = piece;
      }
      if (held) await forward(held);
    } catch (err) {
      toCache.destroy(isDomainError(err) ? err : new Error("upstream read failed"));
      await caching;
      if (upload) await store.blobs.cancel(upload).catch(() => undefined);
      throw err;
    }
    toCache.end();
    res?.end();
    await caching;
    if (upload && cacheFailed !== undefined) {
      await store.blobs.cancel(upload).catch(() => undefined);
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what was caught, as it was
      if (!res) throw cacheFailed;
      const logDetails = isDomainError(cacheFailed) ? cacheFailed.logDetails : undefined;
      log.warn({ err: cacheFailed, image: name.full, digest, ...logDetails }, "pull-through: blob served but not cached");
    }
    return size ?? verifier.bytes;
  }

  /**
   * An upload session for caching a blob; when the store is full and a client is waiting for
   * the bytes, undefined (the pull goes on uncached, and the log says why).
   */
  private async startCaching(name: ImageName, image: ResolvedImage, upstream: Upstream, digest: string, serving: boolean) {
    const { store, log } = this.deps;
    try {
      return await store.blobs.startUpload(await this.repositoryId(name, image, upstream));
    } catch (err) {
      if (!serving || !isStorageFull(err)) throw err;
      log.warn({ image: name.full, digest, ...err.logDetails }, "pull-through: the content store is full; blob served from the upstream, not cached");
      return undefined;
    }
  }
}

function sendManifestHead(res: Response, m: { digest: string; mediaType: string; size: number }): void {
  send(res, 200, { "content-type": m.mediaType, "content-length": m.size, "docker-content-digest": m.digest, etag: `"${m.digest}"` });
}

/** Writes one chunk, waiting for drain (or for the stream to close) when it is full. */
function write(stream: Writable, chunk: Buffer): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  if (stream.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
