// ImageService: a thin adapter over the image core (src/registry), which reads HOSTED registries
// from this service's store and REMOTE ones through the pull-through cache (a cold read fills it,
// as a /v2/ pull does). This file only translates protocol: request fields to names, references
// and ranges; manifests and blobs to messages; RangeNotSatisfiable to OUT_OF_RANGE with the size.
import type { Writable } from "node:stream";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createContextKey, type ServiceImpl } from "@connectrpc/connect";
import {
  DescriptorSchema,
  ImageService,
  ManifestSummarySchema,
  type Descriptor as DescriptorMessage,
  type GetBlobResponseSchema,
  type GetManifestResponseSchema,
  type ListReferrersResponseSchema,
  type ManifestSummary,
} from "../../gen/artifact/v1/image_pb.js";
import { parseDigest } from "../domain/digest.js";
import { invalidArgument, RangeNotSatisfiable } from "../domain/errors.js";
import { parseImageName } from "../domain/image-name.js";
import type { Descriptor, ParsedManifest } from "../domain/manifest.js";
import { parseReference } from "../domain/reference.js";
import type { Registries } from "../registry/index.js";
import type { PageTokens } from "../store/page-token.js";
import { blobChunks } from "./blob-chunks.js";

type BlobMessage = MessageInitShape<typeof GetBlobResponseSchema>;

const OCTET_STREAM = "application/octet-stream";
/** Metadata key of an OUT_OF_RANGE error: the blob's size, so a REST edge can answer 416 with it. */
export const BLOB_SIZE_KEY = "x-blob-size";
/**
 * Set by an in-process caller that sends a blob's raw bytes on (the REST blob route): the bytes
 * are then written into this sink after the first message, which has no data, instead of
 * travelling as messages of copied chunks (a third of the speed). Over the wire (Connect, gRPC,
 * gRPC-Web) there is no sink and every byte is in the messages.
 */
export const RAW_BLOB_SINK = createContextKey<Writable | undefined>(undefined, { description: "raw blob sink" });
/**
 * Set by an in-process caller that wants only what a blob is (the REST route's HEAD, If-None-Match,
 * and the size a suffix range needs): one message with the size and no data, without reading the
 * bytes (from an upstream: a HEAD).
 */
export const BLOB_METADATA_ONLY = createContextKey<boolean>(false, { description: "blob metadata only" });

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 1000;
const MAX_ARTIFACT_TYPE = 255;

export function imageService(registries: Registries, pageTokens: PageTokens): ServiceImpl<typeof ImageService> {
  return {
    async getManifest(req, ctx): Promise<MessageInitShape<typeof GetManifestResponseSchema>> {
      const name = parseImageName(req.repository, "repository");
      const reference = parseReference(req.reference, "reference");
      const repository = await registries.repository(name, { manifest: reference });
      const m = await repository.getManifest(reference, { metadataOnly: req.metadataOnly, signal: ctx.signal });
      const response: MessageInitShape<typeof GetManifestResponseSchema> = { digest: m.digest, mediaType: m.mediaType, sizeBytes: BigInt(m.size) };
      if (req.metadataOnly || !m.bytes) return response;
      const lastPull = await repository.lastPullTime?.(m.digest);
      return { ...response, raw: m.bytes, summary: toSummary(m.parse()), lastPullTime: lastPull && timestampFromDate(lastPull) };
    },

    async listReferrers(req, ctx): Promise<MessageInitShape<typeof ListReferrersResponseSchema>> {
      const name = parseImageName(req.repository, "repository");
      const digest = parseDigest(req.digest);
      if (req.artifactType.length > MAX_ARTIFACT_TYPE) throw invalidArgument(`artifact_type: longer than ${MAX_ARTIFACT_TYPE} characters`);
      if (req.pageSize < 0) throw invalidArgument(`page_size: must not be negative (got ${req.pageSize})`);
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : Math.min(req.pageSize, MAX_PAGE_SIZE);
      // A token is bound to the image and the filter; its cursor is the last digest returned.
      const fingerprint = JSON.stringify(["referrers", name.full, digest, req.artifactType]);
      const after = req.pageToken === "" ? undefined : String(pageTokens.decode(fingerprint, req.pageToken).value);
      const repository = await registries.repository(name, { manifest: { digest } });
      // The image must exist, as for GetManifest (the /v2/ referrers API answers an empty index instead).
      await repository.getManifest({ digest }, { metadataOnly: true, signal: ctx.signal });
      const rows = await repository.referrers(digest, { artifactType: req.artifactType || undefined, after, limit: pageSize + 1 });
      const page = rows.slice(0, pageSize);
      const last = page.at(-1);
      return {
        referrers: page.map(toDescriptor),
        nextPageToken: rows.length > pageSize && last ? pageTokens.encode(fingerprint, { value: last.digest, id: last.digest, total: 0 }) : "",
      };
    },

    async *getBlob(req, ctx): AsyncGenerator<BlobMessage> {
      const name = parseImageName(req.repository, "repository");
      const digest = parseDigest(req.digest);
      const offset = nonNegative("offset", req.offset);
      const length = nonNegative("length", req.length);
      const repository = await registries.repository(name);
      // What the repository's manifests call the blob, asked beside the read (no added round trip).
      const mediaType = repository.blobMediaType(digest).then((type) => type ?? OCTET_STREAM);
      mediaType.catch(() => {}); // a failed read below is the error to report
      if (ctx.values.get(BLOB_METADATA_ONLY)) {
        const info = await repository.statBlob(digest, { signal: ctx.signal });
        yield { sizeBytes: BigInt(info.size), mediaType: await mediaType, offset: 0n, data: new Uint8Array() };
        return;
      }
      const range = offset === 0 && length === 0 ? undefined : { offset, length };
      // A part of a blob not cached yet is read directly and only length-checked (see BlobReadOptions).
      const blob = await repository.getBlob(digest, { range, partial: "direct", signal: ctx.signal }).catch((err: unknown) => {
        throw err instanceof RangeNotSatisfiable ? outOfRange(err) : err;
      });
      let first: { sizeBytes: bigint; mediaType: string };
      try {
        first = { sizeBytes: BigInt(blob.size), mediaType: await mediaType };
      } catch (err) {
        blob.discard();
        throw err;
      }
      const start = blob.range?.start ?? 0;
      const sink = ctx.values.get(RAW_BLOB_SINK);
      if (sink) {
        // The first message says what the blob is; the bytes go straight into the caller's sink.
        yield { ...first, offset: BigInt(start), data: new Uint8Array() };
        await blob.pipeTo(sink);
        return;
      }
      let position = start;
      for await (const data of blobChunks(await blob.read(), blob.length, `blob ${digest} of ${name.full}`)) {
        yield position === start ? { ...first, offset: BigInt(position), data } : { offset: BigInt(position), data };
        position += data.length;
      }
      // An empty read still says what the blob is.
      if (position === start) yield { ...first, offset: BigInt(start), data: new Uint8Array() };
    },
  };
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

// ---- manifests to messages ------------------------------------------------------------------

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
