// The image core: what /v2/ (src/oci), ImageService (src/api/image-service.ts) and the REST raw
// blob route (src/http/rest-blob.ts, through ImageService) call to read and write images. Those
// edges only translate protocol (paths, headers, status codes, messages); every rule about images
// lives behind this interface, once.
//
//   edges ──► Registries.repository(name) ──► Repository
//                                               ├─ HostedRepository       (hosted.ts: src/store + src/content)
//                                               └─ PullThroughRepository  (pull-through.ts), a decorator:
//                                                    wraps a HostedRepository (the cache) and an
//                                                    upstream client, under a CachePolicy
//
// - A Repository is one repository of one registry, named `<registry>/<namespace>/<repository>`.
//   HOSTED registries get a HostedRepository; REMOTE ones a PullThroughRepository over the
//   HostedRepository of the same name (the cache: its rows and blobs are where pulled content is
//   kept). Edges never ask which one they hold (`kind` is for logs and tests).
// - Errors are domain errors (src/domain/errors.ts), mapped once at each edge. Unknown registry or
//   repository: not-found/name-unknown; unknown manifest: manifest-unknown; blob: blob-unknown;
//   bytes the blob does not have: RangeNotSatisfiable (with the size); a write to a REMOTE
//   registry: failed-precondition/unsupported.
// - Round trips: Registries.repository() is one query (registry, namespace and repository
//   together); with `prefetch.manifest` the same query also fetches that manifest, so a HOSTED
//   manifest pull is one round trip in all. Blob reads add one (the blob's row), tag lists one
//   unless the page is cached (store/versioned-cache.ts).
// - Bytes: every byte an upstream sends is verified against its digest before a read ends cleanly
//   and before it enters the cache (a part that cannot be verified is length-checked, and never
//   cached). Blobs enter the cache through an upload session and BlobStore.commit, under the same
//   digest lock protocol as a push (store/digest-locks.ts), so garbage collection holds.
import type { Readable, Writable } from "node:stream";
import type { ByteRange, RangeRequest } from "../domain/byte-range.js";
import type { ImageName } from "../domain/image-name.js";
import type { Descriptor, ParsedManifest } from "../domain/manifest.js";
import type { Reference } from "../domain/reference.js";
import type { Body } from "../content/driver.js";
import type { EventActor } from "../domain/events.js";

export interface Registries {
  /**
   * The repository `name` names, HOSTED or pull-through; not-found (name-unknown) when no registry
   * has that name. A repository that does not exist yet is still returned: reads of it fail with
   * name-unknown, and the first push (HOSTED, when the registry allows it) or cache write
   * (REMOTE) creates it. `prefetch.manifest` is the manifest the caller will ask for first.
   */
  repository(name: ImageName, prefetch?: { manifest: Reference }): Promise<Repository>;
  /** Up to `limit` repositories of every registry as full names, in name order, after `after`. */
  catalog(limit: number, after?: ImageName): Promise<string[]>;
}

export interface Repository {
  readonly name: ImageName;
  readonly kind: "hosted" | "pull-through";

  // ---- reads ----
  /** A manifest by tag or digest; with `metadataOnly`, `bytes` may be absent (an upstream's HEAD). */
  getManifest(reference: Reference, options?: ManifestReadOptions): Promise<Manifest>;
  /** What a blob is, without its bytes (HEAD). */
  statBlob(digest: string, options?: CallOptions): Promise<BlobInfo>;
  /** The media type the manifests here give a blob (config or layer), when one lists it. */
  blobMediaType(digest: string): Promise<string | undefined>;
  /** A blob, or a part of it; its size is known before the first byte. */
  getBlob(digest: string, options?: BlobReadOptions): Promise<BlobContent>;
  /** Tag names in byte order after `last`, at most `n`. */
  listTags(page: { n: number; last?: string }, options?: CallOptions): Promise<TagPage>;
  /** Manifests of this repository whose subject is `digest`, in digest order; none when the repository does not exist. */
  referrers(digest: string, filter: { artifactType?: string; after?: string; limit: number }): Promise<Descriptor[]>;
  /** HOSTED: when the manifest was last pulled (undefined: never, or not known here). */
  lastPullTime?(digest: string): Promise<Date | undefined>;

  // ---- writes (HOSTED; a pull-through repository refuses them: a REMOTE registry is read-only) ----
  putManifest(reference: Reference, bytes: Uint8Array, contentType: string | undefined, options?: WriteOptions): Promise<PushedManifest>;
  /** By digest: the manifest and its tags. By tag: the tag only (the manifest stays until GC). */
  deleteManifest(reference: Reference, options?: WriteOptions): Promise<void>;
  /** Unlinks the blob (the bytes go when GC finds them unused); refused while a manifest here lists it. */
  deleteBlob(digest: string): Promise<void>;
  /** A blob another repository (`from`), or any repository, holds, made readable here; false when it cannot be. */
  mountBlob(digest: string, from?: ImageName): Promise<boolean>;
  /** A whole blob in one go, verified against `digest`; nothing is left behind when it fails. */
  putBlob(body: Body, digest: string, expectedSize?: number): Promise<void>;
  startUpload(): Promise<UploadSession>;
  getUpload(id: string): Promise<UploadSession>;
  /** Appends `body` at the session's size; all or nothing. Returns the new size. */
  appendUpload(session: UploadSession, body: Body): Promise<number>;
  /** Verifies the session's bytes against `digest` and publishes them as that blob. */
  commitUpload(session: UploadSession, digest: string, expectedSize?: number): Promise<void>;
  cancelUpload(session: UploadSession): Promise<void>;
}

export interface CallOptions {
  /** Ends the call's upstream requests early (a caller that went away, a deadline). */
  signal?: AbortSignal;
}

export interface WriteOptions {
  /** Who makes the change: the event it writes (src/store/events.ts) names them. */
  actor?: EventActor;
}

export interface ManifestReadOptions extends CallOptions {
  metadataOnly?: boolean;
}

export interface BlobReadOptions extends CallOptions {
  /** A part of the blob; absent: all of it. */
  range?: RangeRequest;
  /**
   * How a part of a blob the cache does not hold is read from an upstream (a part cannot be
   * checked against the blob's digest). "verify-whole" (the default, /v2/'s promise): the whole
   * blob is fetched, verified and cached first, then the part is served from the cache.
   * "direct" (ImageService's documented contract): only the part is fetched, checked by its
   * length, and not cached — a few bytes of a 10 GiB layer cost a few bytes.
   */
  partial?: "verify-whole" | "direct";
}

export interface Manifest {
  digest: string;
  mediaType: string;
  size: number;
  /** The exact bytes; absent only for `metadataOnly` reads answered without them. */
  bytes?: Uint8Array;
  /**
   * What the bytes say. Bytes that do not parse are never the caller's fault: damage in our store
   * (data-loss) or an upstream's (unknown, naming it).
   */
  parse(): ParsedManifest;
}

export interface PushedManifest {
  digest: string;
  subjectDigest?: string;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

/**
 * A blob's bytes, read once: by pipeTo(), by read(), or let go with discard(). The bytes end
 * cleanly only when every one is right: verified against the digest (from an upstream), verified
 * when stored (from the content store), or, for a part of an upstream blob read directly,
 * length-checked. Otherwise the read fails before its last bytes are handed over, so no consumer
 * mistakes a damaged blob for a complete one.
 */
export interface BlobContent {
  readonly digest: string;
  /** Size of the whole blob. */
  readonly size: number;
  /** The part these bytes are (as resolved from the request); undefined: the whole blob. */
  readonly range: ByteRange | undefined;
  /** Bytes this read delivers. */
  readonly length: number;
  /**
   * Writes the bytes into `sink` (not ending it) as fast as it takes them, and resolves once they
   * are written and the work behind them is done (keeping them in the cache). `ready` runs once
   * the bytes are found, before the first one (where headers go): a failure before it is an
   * ordinary error, one after it leaves the sink short. `delivered` runs once the sink holds every
   * byte, right (where the response ends: a client need not wait for the cache). The sink must
   * be done with a chunk once its write callback ran (an HTTP response is; a stream that queues
   * chunks for a reader is not: use read()): the chunk's buffer may be reused after that.
   */
  pipeTo(sink: Writable, hooks?: PipeHooks): Promise<void>;
  /**
   * The bytes as a stream, opened before the first byte (a missing blob fails here), ending once
   * the work behind them is done (a reader that reached the end finds the blob cached).
   */
  read(): Promise<Readable>;
  /** Lets go of the bytes unread. */
  discard(): void;
  /**
   * Where the client may fetch these bytes itself (BLOB_REDIRECT: a short-lived presigned URL of
   * the object store), or undefined: they are served through pipeTo()/read(). Not a read: the
   * bytes may still be read or discarded afterwards.
   */
  location?(): Promise<string | undefined>;
}

export interface PipeHooks {
  ready?(): void;
  delivered?(): void;
}

/** A page of tag names. */
export interface TagPage {
  /** The names as a JSON array (a HOSTED page is built by the database: a page of 1,000 costs one string). */
  json: string;
  /** The last name of the page, when another page follows. */
  next?: string;
}

/** An upload in progress: its bytes so far. */
export interface UploadSession {
  readonly id: string;
  readonly size: number;
}

/** What a pull-through repository keeps of what it reads from its upstream (pull-through.ts). */
export interface CachePolicy {
  /** Manifests by digest (also those a tag led to), verified against their digest, are kept. */
  readonly manifests: boolean;
  /** Blobs are kept, verified while they stream; a blob whose bytes did not match is never kept. */
  readonly blobs: boolean;
  /** What a tag names can change upstream at any moment: always asked, never kept. */
  readonly tags: false;
  /**
   * A hit marks the cached manifest or blob used, so garbage collection keeps it another grace
   * period, at most once in this many milliseconds however often it is read.
   */
  readonly touchIntervalMs: number;
}

export const DEFAULT_CACHE_POLICY: CachePolicy = { manifests: true, blobs: true, tags: false, touchIntervalMs: 60_000 };

export { createRegistries } from "./resolver.js";
