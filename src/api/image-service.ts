// ImageService: manifests and blobs of HOSTED registries from this service's store, of REMOTE
// registries from their upstream (blobs from the pull-through cache when it holds them). Every
// byte from an upstream is checked against its digest where a digest can tell (manifests always,
// whole blobs while streaming; ranges only by length). The content store verified its bytes when
// it stored them: its blobs are served as /v2/ serves them, length-checked, not hashed again.
import { Readable, type Writable } from "node:stream";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  DescriptorSchema,
  ImageService,
  ManifestSummarySchema,
  type Descriptor as DescriptorMessage,
  GetBlobResponseSchema,
  GetManifestResponseSchema,
  type ManifestSummary,
} from "../../gen/artifact/v1/image_pb.js";
import type { ContentDriver } from "../content/driver.js";
import { DomainError, invalidArgument, isDomainError, notFound, RangeNotSatisfiable } from "../domain/errors.js";
import { resolveRange } from "../domain/byte-range.js";
import { DEFAULT_CACHE_POLICY } from "../registry/index.js";
import { parseManifest, type Descriptor, type ParsedManifest } from "../domain/manifest.js";
import { checkDigest, checkMediaType } from "../domain/names.js";
import type { Store } from "../store/index.js";
import { digestAlgorithm, digestOf } from "../domain/digest.js";
import type { Blob } from "../upstream/client.js";
import type { RegistryUpstreams } from "../upstream/registries.js";
import { blobChunks } from "./blob-chunks.js";
import { locateImage, type ImageSource } from "./image-source.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";
import { parseReference, referenceSuffix, type Reference } from "../domain/reference.js";

const OCTET_STREAM = "application/octet-stream";
/** Metadata key of an OUT_OF_RANGE error: the blob's size, so a REST edge can answer 416 with it. */
export const BLOB_SIZE_KEY = "x-blob-size";
/**
 * Set by an in-process caller that sends a blob's raw bytes on (the REST blob route): a blob in
 * the content store is then written into this sink after the first message, which has no data,
 * instead of travelling as messages of copied chunks (a third of the speed). Over the wire
 * (Connect, gRPC, gRPC-Web) there is no sink and every byte is in the messages.
 */
export const RAW_BLOB_SINK = createContextKey<Writable | undefined>(undefined, { description: "raw blob sink" });

export function imageService(store: Store, content: ContentDriver, upstreams: RegistryUpstreams): ServiceImpl<typeof ImageService> {
  return {
    async getManifest(req, ctx): Promise<MessageInitShape<typeof GetManifestResponseSchema>> {
      const name = parseImageName(req.repository, "repository");
      const reference = parseReference(req.reference, "reference");
      const source = await locateImage(store, upstreams, name);
      const m = source.kind === "hosted" ? await hostedManifest(store, source, reference) : await remoteManifest(source, reference, req.metadataOnly, ctx);
      const response: MessageInitShape<typeof GetManifestResponseSchema> = { digest: m.digest, mediaType: m.mediaType, sizeBytes: BigInt(m.size) };
      if (req.metadataOnly || !m.bytes) return response;
      return { ...response, raw: m.bytes, summary: toSummary(summaryOf({ ...m, bytes: m.bytes }, source, reference)) };
    },

    async *getBlob(req, ctx): AsyncGenerator<MessageInitShape<typeof GetBlobResponseSchema>> {
      const name = parseImageName(req.repository, "repository");
      const digest = req.digest;
      const problem = checkDigest(digest);
      if (problem) throw invalidArgument(`digest: ${problem}`);
      const offset = nonNegative("offset", req.offset);
      const length = nonNegative("length", req.length);
      const source = await locateImage(store, upstreams, name);
      const stored =
        source.kind === "hosted"
          ? await storedSpan(store, source.repositoryId, source.name, digest, offset, length)
          : await cachedSpan(store, source, digest, offset, length);
      const sink = ctx.values.get(RAW_BLOB_SINK);
      if (stored && sink && content.pipeTo) {
        // An in-process caller that takes raw bytes: the first message says what the blob is,
        // and the store writes the bytes straight into the caller's sink (as /v2/ serves them).
        yield { sizeBytes: BigInt(stored.total), mediaType: OCTET_STREAM, offset: BigInt(offset), data: new Uint8Array() };
        if (stored.end > offset) await content.pipeTo(digest, stored.whole ? undefined : { start: offset, end: stored.end - 1 }, sink, () => {});
        return;
      }
      const blob = stored
        ? await readStored(content, stored)
        : await remoteBlob(source as Extract<ImageSource, { kind: "remote" }>, digest, offset, length, ctx);
      let position = offset;
      let first = true;
      for await (const data of blobChunks(blob)) {
        yield first ? { sizeBytes: BigInt(blob.total), mediaType: blob.mediaType, offset: BigInt(position), data } : { offset: BigInt(position), data };
        first = false;
        position += data.length;
      }
      // An empty read still says what the blob is.
      if (first) yield { sizeBytes: BigInt(blob.total), mediaType: blob.mediaType, offset: BigInt(offset), data: new Uint8Array() };
    },
  };
}

// ---- manifests ---------------------------------------------------------------------------------

interface ManifestRead {
  digest: string;
  mediaType: string;
  size: number;
  /** Absent for metadata-only reads of an upstream (HEAD). */
  bytes?: Uint8Array;
}

async function hostedManifest(store: Store, source: Extract<ImageSource, { kind: "hosted" }>, reference: Reference): Promise<ManifestRead> {
  const stored = await store.images.getManifest(source.repositoryId, reference);
  if (!stored) throw notFound(`manifest ${source.name.full}${referenceSuffix(reference)} not found`);
  const bytes = stored.payload;
  // The stored digest was computed at push; the bytes must still have it.
  const actual = digestOf(bytes, digestAlgorithm(stored.digest));
  if (actual !== stored.digest) {
    throw new DomainError("data-loss", `manifest ${source.name.full}@${stored.digest} is damaged in the store: its bytes have digest ${actual}`, {
      reason: "digest-mismatch",
    });
  }
  return { digest: stored.digest, mediaType: stored.mediaType, size: bytes.byteLength, bytes };
}

async function remoteManifest(
  source: Extract<ImageSource, { kind: "remote" }>,
  reference: Reference,
  metadataOnly: boolean,
  ctx: HandlerContext,
): Promise<ManifestRead> {
  const ref = "tag" in reference ? reference.tag : reference.digest;
  const m = await source.client.getManifest(source.path, ref, { method: metadataOnly ? "HEAD" : "GET", signal: ctx.signal });
  return { digest: m.digest, mediaType: m.mediaType, size: m.size, bytes: m.bytes };
}

/** What the manifest says. Bytes that do not parse are the upstream's fault, or damage in our store: never the client's. */
function summaryOf(m: ManifestRead & { bytes: Uint8Array }, source: ImageSource, reference: Reference): ParsedManifest {
  try {
    return parseManifest(m.bytes, m.mediaType);
  } catch (err) {
    if (!isDomainError(err)) throw err;
    const what = `manifest ${source.name.full}${referenceSuffix(reference)}`;
    if (source.kind === "remote") throw new DomainError("unknown", `upstream ${source.client.host} sent ${what} that is not valid (${err.message})`);
    throw new DomainError("data-loss", `${what} is damaged in the store (${err.message})`);
  }
}

function toDescriptor(d: Descriptor): DescriptorMessage {
  const p = d.platform;
  return create(DescriptorSchema, {
    mediaType: d.mediaType,
    digest: d.digest,
    sizeBytes: BigInt(d.size),
    artifactType: d.artifactType ?? "",
    annotations: d.annotations ?? {},
    platform:
      p && typeof p === "object"
        ? {
            os: stringOr(p.os),
            architecture: stringOr(p.architecture),
            variant: stringOr(p.variant),
            osVersion: stringOr(p["os.version"]),
            osFeatures: Array.isArray(p["os.features"]) ? p["os.features"].filter((f): f is string => typeof f === "string") : [],
          }
        : undefined,
  });
}

const stringOr = (v: unknown) => (typeof v === "string" ? v : "");

function toSummary(m: ParsedManifest): ManifestSummary {
  const referenced = m.isIndex ? m.manifests : [...(m.config ? [m.config] : []), ...m.layers];
  return create(ManifestSummarySchema, {
    config: m.config ? toDescriptor(m.config) : undefined,
    layers: m.layers.map(toDescriptor),
    manifests: m.manifests.map(toDescriptor),
    subject: m.subject ? toDescriptor(m.subject) : undefined,
    artifactType: m.artifactType ?? "",
    annotations: m.annotations ?? {},
    referencedSizeBytes: BigInt(referenced.reduce((sum, d) => sum + d.size, 0)),
  });
}

// ---- blobs -------------------------------------------------------------------------------------

interface BlobRead {
  body: Readable;
  digest: string;
  /** Size of the whole blob. */
  total: number;
  /** Bytes `body` delivers. */
  length: number;
  whole: boolean;
  /** From the content store (see blob-chunks.ts). */
  stored?: boolean;
  mediaType: string;
  what: string;
}

function nonNegative(field: string, value: bigint): number {
  if (value < 0n) throw invalidArgument(`${field}: must not be negative (got ${value})`);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`${field}: too large (got ${value})`);
  return Number(value);
}

/** OUT_OF_RANGE, with the blob's size in the metadata (a REST edge answers 416 with it). */
function outOfRange(err: RangeNotSatisfiable): ConnectError {
  return new ConnectError(err.message, Code.OutOfRange, { [BLOB_SIZE_KEY]: String(err.size) });
}

/** The bytes [offset, end) of a blob of `total` bytes that a read of `length` (0: to the end) covers. */
function span(what: string, total: number, offset: number, length: number): { end: number } {
  try {
    const range = resolveRange({ offset, length }, total, what);
    return { end: range ? range.end + 1 : total };
  } catch (err) {
    throw err instanceof RangeNotSatisfiable ? outOfRange(err) : err;
  }
}

/** A blob in the content store, and the part of it a read covers. */
interface StoredSpan {
  digest: string;
  total: number;
  offset: number;
  /** The read ends before this byte. */
  end: number;
  whole: boolean;
  what: string;
}

async function storedSpan(store: Store, repositoryId: string, name: ImageName, digest: string, offset: number, length: number): Promise<StoredSpan> {
  const found = await store.blobs.find(repositoryId, digest);
  if (!found) throw new DomainError("not-found", `blob ${digest} of ${name.full} not found`, { reason: "blob-unknown" });
  return spanOf(found.size, name, digest, offset, length);
}

function spanOf(total: number, name: ImageName, digest: string, offset: number, length: number): StoredSpan {
  const what = `blob ${digest} of ${name.full}`;
  const { end } = span(what, total, offset, length);
  return { digest, total, offset, end, whole: offset === 0 && end === total, what };
}

async function readStored(content: ContentDriver, s: StoredSpan): Promise<BlobRead> {
  const body = await content.read(s.digest, s.whole ? undefined : { start: s.offset, end: s.end - 1 });
  return { body, digest: s.digest, total: s.total, length: s.end - s.offset, whole: s.whole, stored: true, mediaType: OCTET_STREAM, what: s.what };
}

/**
 * A REMOTE blob that /v2/'s pull-through already cached (verified when it was stored) is read
 * from the content store, as /v2/ reads it, instead of from the upstream again; undefined when
 * it is not cached.
 */
async function cachedSpan(
  store: Store,
  source: Extract<ImageSource, { kind: "remote" }>,
  digest: string,
  offset: number,
  length: number,
): Promise<StoredSpan | undefined> {
  const found = source.repositoryId === undefined ? undefined : await store.blobs.find(source.repositoryId, digest);
  if (!found) return undefined;
  await store.blobs.touch(digest, DEFAULT_CACHE_POLICY.touchIntervalMs);
  return spanOf(found.size, source.name, digest, offset, length);
}

async function remoteBlob(
  source: Extract<ImageSource, { kind: "remote" }>,
  digest: string,
  offset: number,
  length: number,
  ctx: HandlerContext,
): Promise<BlobRead> {
  const { client, path } = source;
  const ranged = offset > 0 || length > 0;
  const range = ranged ? { start: offset, end: length > 0 ? offset + length - 1 : undefined } : undefined;
  let blob: Blob;
  try {
    blob = await client.getBlob(path, digest, { range, signal: ctx.signal });
  } catch (err) {
    // 416 from the upstream: say how big the blob is, as for HOSTED blobs.
    if (!isDomainError(err) || err.reason !== "range-mismatch") throw err;
    const info = await client.headBlob(path, digest, { signal: ctx.signal });
    throw outOfRange(new RangeNotSatisfiable(`offset ${offset} is beyond the end of blob ${digest} of ${source.name.full}`, info.size ?? 0));
  }
  const what = `blob ${digest} of ${path} from upstream ${client.host}`;
  const mediaType = blob.mediaType && !checkMediaType(blob.mediaType) ? blob.mediaType : OCTET_STREAM;
  const sizeUnknown = () => new DomainError("unknown", `upstream ${client.host} did not say the size of ${what}`);
  try {
    if (blob.status === 206) {
      const r = blob.contentRange!;
      if (r.start !== offset) throw new DomainError("unknown", `upstream ${client.host} answered a range of ${what} from byte ${r.start}, not ${offset}`);
      const total = r.total ?? (await client.headBlob(path, digest, { signal: ctx.signal })).size;
      if (total === undefined) throw sizeUnknown();
      const bodyLength = r.end - r.start + 1;
      return { body: blob.body, digest, total, length: bodyLength, whole: offset === 0 && bodyLength === total, mediaType, what };
    }
    const total = blob.size ?? (await client.headBlob(path, digest, { signal: ctx.signal })).size;
    if (total === undefined) throw sizeUnknown();
    const { end } = span(what, total, offset, length);
    const whole = offset === 0 && end === total;
    // An upstream that ignores Range sends everything: cut the range out here.
    const body = whole ? blob.body : Readable.from(slice(blob.body, offset, end - offset));
    return { body, digest, total, length: end - offset, whole, mediaType, what };
  } catch (err) {
    blob.body.destroy();
    throw err;
  }
}

/** `length` bytes from `skip` bytes into `body`; stops reading there. */
async function* slice(body: Readable, skip: number, length: number): AsyncGenerator<Buffer> {
  let position = 0;
  const end = skip + length;
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      const from = Math.max(skip - position, 0);
      const to = Math.min(end - position, piece.length);
      position += piece.length;
      if (to > from) yield piece.subarray(from, to);
      if (position >= end) return;
    }
  } finally {
    body.destroy();
  }
}
