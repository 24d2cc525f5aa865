// The content store on S3-compatible object storage, for several replicas sharing one bucket.
// Keys under S3_PREFIX:
//   blobs/<algorithm>/<xx>/<hex>   one small index object per blob: its metadata names the data
//                                  object and the size. It is written last, so a blob is visible
//                                  only once its bytes are complete and verified.
//   data/<id>                      the bytes: an upload's multipart upload completed where it was
//                                  started, or a whole-blob write. Never copied: a commit publishes
//                                  the index instead of moving 512 MiB inside the bucket.
//   uploads/<id>                   an upload's state (JSON): its size, the parts sent so far, the
//                                  bytes after the last whole part, the sha256 so far when known.
//   uploads/<id>.tail.<size>       those trailing bytes (under one part), prepended to the next
//                                  append: S3 refuses parts under 5 MiB but the last.
// No upload state lives in a process: the next PATCH of an upload may reach any replica. What a
// process keeps is an optimisation only: the running hash of uploads appended here in order, and
// where blobs' bytes are. See docs/design-notes.md, "Content on object storage".
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { randomUUID, type Hash } from "node:crypto";
import { Readable } from "node:stream";
import { createDigestHash, digestAlgorithm, formatDigest } from "../domain/digest.js";
import { isDomainError } from "../domain/errors.js";
import { chunksOf } from "./body.js";
import {
  blobUnknown,
  checkLimit,
  checkOffset,
  checkRange,
  checkedUploadId,
  digestMismatch,
  offsetMismatch,
  sizeMismatch,
  tooLarge,
  uploadExists,
  uploadUnknown,
} from "./checks.js";
import type { Body, ByteRange, ContentDriver, SweepReport, WriteOptions } from "./driver.js";
import { KeyedMutex } from "./mutex.js";
import { createS3Client, isMissingKey, isNoSuchUpload, storeFailure, type S3Settings } from "./s3-client.js";

export type { S3Settings } from "./s3-client.js";

const MiB = 1 << 20;
/** S3's smallest part but the last. */
const MIN_PART = 5 * MiB;
/** S3's most parts in one multipart upload. */
const MAX_PARTS = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BLOB_KEY = /^(sha256|sha512)\/([a-f0-9]{2})\/([a-f0-9]+)$/;
const HEX_LENGTH = { sha256: 64, sha512: 128 } as const;
/** Upload hashes and blob locations kept in memory at most; a forgotten one costs a re-read or a HEAD. */
const MAX_TRACKED = 10_000;
/** Index objects looked at in parallel when the sweep collects which data objects are in use. */
const SWEEP_CONCURRENCY = 16;

export interface S3DriverOptions {
  /** Bytes per part (≥ 5 MiB). Parts are held in memory while they are sent: memory per upload ≈ (concurrency + 1) × part size. */
  partSize?: number;
  /** Parts of one upload or write sent at once. */
  partConcurrency?: number;
  /** Lifetime of presigned blob URLs (BLOB_REDIRECT). */
  presignSeconds?: number;
}

interface Part {
  n: number;
  etag: string;
  size: number;
}

interface UploadState {
  size: number;
  parts: Part[];
  /** The S3 UploadId of data/<id>, once the first whole part was sent. */
  multipart?: string;
  /** The bytes after the last part, in uploads/<id>.tail.<size>. */
  tail?: number;
  /** sha256 of the `size` bytes, when one process hashed them all in order. */
  sha256?: string;
  /** Changes with every write of the state: tells a process whether its running hash is current. */
  rev: string;
  /** The state before the last append: a writer that knows only that many bytes rolls back to it. */
  prev?: Omit<UploadState, "prev">;
  /** Set once the data object is complete and the index about to be written (see abort). */
  committing?: string;
}

interface Location {
  id: string;
  size: number;
}

export class S3Driver implements ContentDriver {
  readonly name = "s3";
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;
  private readonly partConcurrency: number;
  private readonly presignSeconds: number;
  private readonly uploadLocks = new KeyedMutex();
  private readonly digestLocks = new KeyedMutex();
  private readonly progress = new Map<string, { hash: Hash; rev: string }>();
  private readonly locations = new Map<string, Location>();
  private rehashed = 0;

  constructor(settings: S3Settings, options: S3DriverOptions = {}, client?: S3Client) {
    this.client = client ?? createS3Client(settings);
    this.bucket = settings.bucket;
    this.prefix = settings.prefix;
    this.partSize = Math.max(MIN_PART, options.partSize ?? 16 * MiB);
    this.partConcurrency = Math.max(1, options.partConcurrency ?? 4);
    this.presignSeconds = options.presignSeconds ?? 300;
  }

  /** Bytes that commits had to read back to hash (appends spread over processes, a restart, sha512). */
  get rehashedBytes(): number {
    return this.rehashed;
  }

  /** Checks that the bucket answers with these credentials, so a bad setting fails at start-up. */
  async init(): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
  }

  async stat(digest: string): Promise<{ size: number } | undefined> {
    const location = await this.locate(digest, true);
    return location && { size: location.size };
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    for (let attempt = 0; ; attempt++) {
      const location = await this.locate(digest, attempt > 0);
      if (!location) throw blobUnknown(digest);
      if (range) checkRange(range, location.size, digest);
      if (location.size === 0) return Readable.from([]);
      try {
        const answer = await this.client.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: this.dataKey(location.id), Range: range ? `bytes=${range.start}-${range.end}` : undefined }),
        );
        return answer.Body as Readable;
      } catch (err) {
        // Deleted (and perhaps written again) since this process learnt where it was.
        if (isMissingKey(err) && attempt === 0) continue;
        if (isMissingKey(err)) throw blobUnknown(digest);
        return storeFailure(this.bucket, "read blob")(err);
      }
    }
  }

  /**
   * A URL that reads the blob straight from the object store for `presignSeconds`, or undefined
   * when the store does not hold it. A client's Range header is honoured by the store itself.
   * Where the bytes are is asked of the index every time (one HEAD): what this process remembers
   * may be stale, since another replica may have deleted the blob and a push stored it again
   * under a new data object, and unlike read() a redirect cannot notice and look again.
   */
  async presignRead(digest: string): Promise<string | undefined> {
    const location = await this.locate(digest, true);
    if (!location) return undefined;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.dataKey(location.id) }), {
      expiresIn: this.presignSeconds,
    });
  }

  async write(digest: string, body: Body, expectedSize?: number, options: WriteOptions = {}): Promise<{ size: number }> {
    const algorithm = digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    const id = randomUUID();
    const key = this.dataKey(id);
    const hash = options.verifiedBody && expectedSize !== undefined ? undefined : createDigestHash(algorithm);
    const parts = new PartSender(this, key, 1, undefined);
    let size = 0;
    let stored = false;
    try {
      for await (const chunk of chunksOf(body)) {
        if (expectedSize !== undefined && size + chunk.byteLength > expectedSize) throw sizeMismatch(expectedSize, `more than ${expectedSize}`);
        hash?.update(chunk);
        size += chunk.byteLength;
        await parts.push(chunk);
      }
      if (expectedSize !== undefined && size !== expectedSize) throw sizeMismatch(expectedSize, size);
      if (hash) {
        const actual = formatDigest(algorithm, hash);
        if (actual !== digest) throw digestMismatch(digest, actual);
      }
      const { sent, rest, multipart } = await parts.finish();
      if (multipart === undefined) {
        await this.put(key, rest, "write blob");
      } else {
        const last = rest.length > 0 ? [await parts.sendPart(sent.length + 1, rest)] : [];
        await this.complete(key, multipart, [...sent, ...last]);
      }
      stored = true;
      await this.publish(digest, id, size);
      return { size };
    } catch (err) {
      await parts.abandon();
      if (stored) await this.deleteKey(key).catch(() => undefined);
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    digestAlgorithm(digest);
    await this.digestLocks.run(digest, async () => {
      const location = await this.locate(digest, true);
      this.locations.delete(digest);
      if (!location) return;
      // The index first: a reader never finds an index whose bytes are gone.
      await this.deleteKey(this.blobKey(digest));
      await this.deleteKey(this.dataKey(location.id));
    });
  }

  async *list(): AsyncIterable<{ digest: string; modifiedTime: Date }> {
    for await (const object of this.listKeys("blobs/")) {
      const match = BLOB_KEY.exec(object.key);
      if (!match) continue;
      const [, algorithm, shard, hex] = match as unknown as [string, "sha256" | "sha512", string, string];
      if (hex.length !== HEX_LENGTH[algorithm] || !hex.startsWith(shard)) continue;
      yield { digest: `${algorithm}:${hex}`, modifiedTime: object.modified };
    }
  }

  async uploadSize(uploadId: string): Promise<number | undefined> {
    return (await this.loadState(checkedUploadId(uploadId)))?.size;
  }

  async startUpload(uploadId: string): Promise<void> {
    const id = checkedUploadId(uploadId);
    await this.uploadLocks.run(id, async () => {
      if (await this.loadState(id)) throw uploadExists(id);
      const hash = createDigestHash("sha256");
      const state: UploadState = { size: 0, parts: [], sha256: formatDigest("sha256", hash.copy()), rev: randomUUID() };
      await this.saveState(id, state);
      this.track(id, hash, state.rev);
    });
  }

  async append(uploadId: string, offset: number, body: Body, maxBytes?: number, dropTail = false): Promise<number> {
    const id = checkedUploadId(uploadId);
    checkOffset(offset);
    checkLimit("maxBytes", maxBytes);
    return this.uploadLocks.run(id, async () => {
      let state = await this.loadState(id);
      if (!state) throw uploadUnknown(id);
      // The database lags the store by at most one append (a crash between the two): go back to
      // the state before it. The parts it sent are overwritten by the next ones.
      if (dropTail && state.size > offset && state.prev?.size === offset) {
        state = { ...state.prev, multipart: state.multipart ?? state.prev.multipart };
      }
      if (state.size !== offset) throw offsetMismatch(id, offset, state.size);

      // The running hash: this process's, when it is current; from scratch when nothing was
      // appended yet (the upload was opened on another replica: POST and PATCH balanced apart).
      const known = this.progress.get(id);
      const hash = known?.rev === state.rev ? known.hash.copy() : state.size === 0 ? createDigestHash("sha256") : undefined;
      const parts = new PartSender(this, this.dataKey(id), state.parts.length + 1, state.multipart);
      let added = 0;
      let tailWritten: string | undefined;
      try {
        if (state.tail) await parts.push(await this.getBytes(this.tailKey(id, state.size), "read upload"));
        for await (const chunk of chunksOf(body)) {
          if (maxBytes !== undefined && offset + added + chunk.byteLength > maxBytes) throw tooLarge(maxBytes);
          hash?.update(chunk);
          added += chunk.byteLength;
          await parts.push(chunk);
        }
        const { sent, rest, multipart } = await parts.finish();
        const size = offset + added;
        if (rest.length > 0) {
          tailWritten = this.tailKey(id, size);
          await this.put(tailWritten, rest, "append upload");
        }
        const { prev: older, ...previous } = state;
        const next: UploadState = {
          size,
          parts: [...state.parts, ...sent],
          multipart,
          tail: rest.length > 0 ? rest.length : undefined,
          sha256: hash ? formatDigest("sha256", hash.copy()) : undefined,
          rev: randomUUID(),
          prev: previous,
        };
        await this.saveState(id, next);
        this.track(id, hash, next.rev);
        // The state before the previous one can no longer be rolled back to: its tail goes.
        if (older?.tail && older.size !== state.size && older.size !== size) {
          await this.deleteKey(this.tailKey(id, older.size)).catch(() => undefined);
        }
        return size;
      } catch (err) {
        // All or nothing: the state still says `offset`; parts sent are overwritten by the next
        // append (a multipart upload this append started is aborted).
        await parts.abandon();
        if (tailWritten && tailWritten !== this.tailKey(id, state.size)) await this.deleteKey(tailWritten).catch(() => undefined);
        throw err;
      }
    });
  }

  async commit(uploadId: string, digest: string, expectedSize?: number): Promise<{ size: number }> {
    const id = checkedUploadId(uploadId);
    const algorithm = digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    return this.uploadLocks.run(id, async () => {
      const state = await this.loadState(id);
      if (!state) throw uploadUnknown(id);
      const { size } = state;
      try {
        if (expectedSize !== undefined && size !== expectedSize) throw sizeMismatch(expectedSize, size);
        await this.assemble(id, state);
        // The digest without reading the bytes back when one process hashed them in order (the
        // state carries it to whichever replica commits); else read them back.
        const actual = algorithm === "sha256" && state.sha256 !== undefined ? state.sha256 : await this.hashObject(this.dataKey(id), algorithm, size);
        if (actual !== digest) throw digestMismatch(digest, actual);
      } catch (err) {
        if (isDomainError(err, "invalid-argument")) {
          // The client sent the wrong bytes or the wrong digest: it has to start again.
          await this.removeUpload(id, state);
        }
        throw err;
      }
      await this.saveState(id, { ...state, committing: digest });
      await this.publish(digest, id, size);
      await this.removeUpload(id, { ...state, multipart: undefined }, true);
      return { size };
    });
  }

  async abort(uploadId: string): Promise<void> {
    const id = checkedUploadId(uploadId);
    await this.uploadLocks.run(id, async () => {
      const state = await this.loadState(id);
      if (!state) return;
      // A commit that stopped after publishing leaves its bytes to the blob.
      const published = state.committing !== undefined && (await this.locate(state.committing, true))?.id === id;
      await this.removeUpload(id, state, published);
    });
  }

  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedTime: Date }> {
    for await (const object of this.listKeys("uploads/")) {
      const name = object.key;
      if (UUID.test(name)) yield { uploadId: name, modifiedTime: object.modified };
    }
  }

  /**
   * What a crashed process or a lost race left behind, older than `cutoff`: multipart uploads
   * no upload state names (a whole-blob write that died), tails of uploads that are gone, and
   * data objects no index names (a crash between writing the bytes and the index; two replicas
   * writing the same blob at once).
   */
  async sweep(cutoff: Date): Promise<SweepReport> {
    const report: SweepReport = { removed: 0 };
    const states = new Map<string, UploadState | undefined>();
    const stateOf = async (id: string) => {
      if (!states.has(id)) states.set(id, await this.loadState(id));
      return states.get(id);
    };
    for await (const upload of this.listMultipartUploads()) {
      if (upload.initiated >= cutoff) continue;
      const state = await stateOf(upload.id);
      if (state?.multipart === upload.uploadId) continue;
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.dataKey(upload.id), UploadId: upload.uploadId }))
        .catch(ignoreMissing);
      report.removed++;
    }
    for await (const object of this.listKeys("uploads/")) {
      const id = object.key.slice(0, 36);
      if (object.modified >= cutoff || !UUID.test(id) || object.key === id) continue;
      if (!(await stateOf(id))) {
        await this.deleteKey(this.key(`uploads/${object.key}`));
        report.removed++;
      }
    }
    const candidates: string[] = [];
    for await (const object of this.listKeys("data/")) {
      if (object.modified < cutoff && UUID.test(object.key) && !(await stateOf(object.key))) candidates.push(object.key);
    }
    if (candidates.length > 0) {
      const used = await this.dataInUse();
      for (const id of candidates) {
        if (used.has(id)) continue;
        await this.deleteKey(this.dataKey(id));
        report.removed++;
      }
    }
    return report;
  }

  // --- the pieces ---------------------------------------------------------------------------

  private key(rest: string): string {
    return `${this.prefix}${rest}`;
  }

  private blobKey(digest: string): string {
    const algorithm = digestAlgorithm(digest);
    const hex = digest.slice(algorithm.length + 1);
    return this.key(`blobs/${algorithm}/${hex.slice(0, 2)}/${hex}`);
  }

  dataKey(id: string): string {
    return this.key(`data/${id}`);
  }

  private stateKey(id: string): string {
    return this.key(`uploads/${id}`);
  }

  private tailKey(id: string, size: number): string {
    return this.key(`uploads/${id}.tail.${size}`);
  }

  /** Where a blob's bytes are: from memory unless `fresh`, else from its index object. */
  private async locate(digest: string, fresh: boolean): Promise<Location | undefined> {
    const known = fresh ? undefined : this.locations.get(digest);
    if (known) return known;
    const key = this.blobKey(digest);
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      const id = head.Metadata?.data ?? "";
      const size = Number(head.Metadata?.size);
      if (!UUID.test(id) || !Number.isSafeInteger(size) || size < 0) {
        throw new Error(`index object ${key} does not name its data (metadata ${JSON.stringify(head.Metadata ?? {})})`);
      }
      const location = { id, size };
      this.remember(digest, location);
      return location;
    } catch (err) {
      if (isMissingKey(err)) {
        this.locations.delete(digest);
        return undefined;
      }
      return storeFailure(this.bucket, "find blob")(err);
    }
  }

  private remember(digest: string, location: Location): void {
    this.locations.delete(digest);
    this.locations.set(digest, location);
    if (this.locations.size > MAX_TRACKED) this.locations.delete(this.locations.keys().next().value!);
  }

  /**
   * Makes blob `digest` visible with the bytes of data/<id>, unless the store already holds it
   * (then those bytes go). Within a process one writer per digest at a time; across processes
   * two writers of one digest at once may both write the index, and the loser's bytes stay
   * until the sweep finds no index naming them.
   */
  private async publish(digest: string, id: string, size: number): Promise<void> {
    await this.digestLocks.run(digest, async () => {
      const existing = await this.locate(digest, true);
      if (existing && existing.id !== id) {
        await this.deleteKey(this.dataKey(id));
        return;
      }
      if (!existing) {
        await this.client
          .send(
            new PutObjectCommand({ Bucket: this.bucket, Key: this.blobKey(digest), Body: "", ContentLength: 0, Metadata: { data: id, size: String(size) } }),
          )
          .catch(storeFailure(this.bucket, "publish blob"));
      }
      this.remember(digest, { id, size });
    });
  }

  /** Makes data/<id> hold the upload's bytes: completes its multipart upload, or copies a lone tail. */
  private async assemble(id: string, state: UploadState): Promise<void> {
    const key = this.dataKey(id);
    if (state.multipart !== undefined && state.parts.length > 0) {
      const parts = [...state.parts];
      if (state.tail) {
        const n = parts.length + 1;
        const copied = await this.client
          .send(
            new UploadPartCopyCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: state.multipart,
              PartNumber: n,
              CopySource: this.copySource(this.tailKey(id, state.size)),
            }),
          )
          .catch((err: unknown) => (isNoSuchUpload(err) ? undefined : storeFailure(this.bucket, "commit upload")(err)));
        if (copied) parts.push({ n, etag: copied.CopyPartResult?.ETag ?? "", size: state.tail });
      }
      try {
        await this.complete(key, state.multipart, parts);
      } catch (err) {
        // Completed already by a commit that stopped before publishing: the object is there.
        if (!(isDomainError(err, "unavailable") && isNoSuchUpload(err.cause))) throw err;
        if ((await this.objectSize(key)) !== state.size) throw uploadUnknown(id);
      }
    } else if (state.tail) {
      await this.client
        .send(new CopyObjectCommand({ Bucket: this.bucket, Key: key, CopySource: this.copySource(this.tailKey(id, state.size)) }))
        .catch(storeFailure(this.bucket, "commit upload"));
    } else {
      await this.put(key, Buffer.alloc(0), "commit upload");
    }
  }

  /** Removes an upload's state, tails and multipart upload; its data object too unless `keepData`. */
  private async removeUpload(id: string, state: UploadState, keepData = false): Promise<void> {
    this.progress.delete(id);
    if (state.multipart !== undefined) {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.dataKey(id), UploadId: state.multipart })).catch(ignoreMissing);
    }
    for await (const object of this.listKeys(`uploads/${id}.tail.`)) await this.deleteKey(this.key(`uploads/${id}.tail.${object.key}`));
    if (!keepData) await this.deleteKey(this.dataKey(id));
    await this.deleteKey(this.stateKey(id));
  }

  private async loadState(id: string): Promise<UploadState | undefined> {
    try {
      return JSON.parse((await this.getBytes(this.stateKey(id), "read upload", true)).toString("utf8")) as UploadState;
    } catch (err) {
      if (isDomainError(err, "not-found")) return undefined;
      throw err;
    }
  }

  private async saveState(id: string, state: UploadState): Promise<void> {
    await this.put(this.stateKey(id), Buffer.from(JSON.stringify(state)), "record upload");
  }

  private track(id: string, hash: Hash | undefined, rev: string): void {
    this.progress.delete(id);
    if (!hash) return;
    this.progress.set(id, { hash, rev });
    if (this.progress.size > MAX_TRACKED) this.progress.delete(this.progress.keys().next().value!);
  }

  /** An object's bytes (small objects only: states and tails). `missingIsNotFound`: absent → DomainError not-found. */
  private async getBytes(key: string, operation: string, missingIsNotFound = false): Promise<Buffer> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await answer.Body!.transformToByteArray());
    } catch (err) {
      if (missingIsNotFound && isMissingKey(err)) throw uploadUnknown(key);
      return storeFailure(this.bucket, operation)(err);
    }
  }

  /** Reads an object back to compute its digest (counted in rehashedBytes). */
  private async hashObject(key: string, algorithm: "sha256" | "sha512", size: number): Promise<string> {
    const hash = createDigestHash(algorithm);
    if (size > 0) {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })).catch(storeFailure(this.bucket, "read upload"));
      for await (const chunk of answer.Body as Readable) {
        hash.update(chunk as Buffer);
        this.rehashed += (chunk as Buffer).length;
      }
    }
    return formatDigest(algorithm, hash);
  }

  private async objectSize(key: string): Promise<number | undefined> {
    try {
      return (await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))).ContentLength;
    } catch (err) {
      if (isMissingKey(err)) return undefined;
      return storeFailure(this.bucket, "find upload")(err);
    }
  }

  async put(key: string, body: Buffer, operation: string): Promise<void> {
    await this.client
      .send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length }))
      .catch(storeFailure(this.bucket, operation));
  }

  private async deleteKey(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })).catch((err: unknown) => {
      if (!isMissingKey(err)) storeFailure(this.bucket, "delete")(err);
    });
  }

  async createMultipart(key: string): Promise<string> {
    const created = await this.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }))
      .catch(storeFailure(this.bucket, "start upload"));
    return created.UploadId!;
  }

  async uploadPart(key: string, multipart: string, n: number, bytes: Buffer): Promise<Part> {
    if (n > MAX_PARTS) throw tooLarge(MAX_PARTS * this.partSize);
    const sent = await this.client
      .send(new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: multipart, PartNumber: n, Body: bytes, ContentLength: bytes.length }))
      .catch(storeFailure(this.bucket, "send part"));
    return { n, etag: sent.ETag ?? "", size: bytes.length };
  }

  async abortMultipart(key: string, multipart: string): Promise<void> {
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: multipart })).catch(() => undefined);
  }

  private async complete(key: string, multipart: string, parts: Part[]): Promise<void> {
    await this.client
      .send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: multipart,
          MultipartUpload: { Parts: [...parts].sort((a, b) => a.n - b.n).map((p) => ({ PartNumber: p.n, ETag: p.etag })) },
        }),
      )
      .catch(storeFailure(this.bucket, "complete upload"));
  }

  get partBytes(): number {
    return this.partSize;
  }

  get partsInFlight(): number {
    return this.partConcurrency;
  }

  private copySource(key: string): string {
    return `${this.bucket}/${key.split("/").map(encodeURIComponent).join("/")}`;
  }

  /** Keys under the prefix + `under`, without the prefix and `under`, with their modification times. */
  private async *listKeys(under: string): AsyncIterable<{ key: string; modified: Date }> {
    const prefix = this.key(under);
    let token: string | undefined;
    do {
      const page = await this.client
        .send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }))
        .catch(storeFailure(this.bucket, "list"));
      for (const object of page.Contents ?? []) {
        if (object.Key) yield { key: object.Key.slice(prefix.length), modified: object.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async *listMultipartUploads(): AsyncIterable<{ id: string; uploadId: string; initiated: Date }> {
    const prefix = this.key("data/");
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client
        .send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
        .catch(storeFailure(this.bucket, "list uploads"));
      for (const upload of page.Uploads ?? []) {
        const id = upload.Key?.slice(prefix.length) ?? "";
        if (UUID.test(id) && upload.UploadId) yield { id, uploadId: upload.UploadId, initiated: upload.Initiated ?? new Date(0) };
      }
      if (!page.IsTruncated) return;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  /** The data objects some index names (one HEAD per blob, SWEEP_CONCURRENCY at once). */
  private async dataInUse(): Promise<Set<string>> {
    const used = new Set<string>();
    const digests: string[] = [];
    for await (const blob of this.list()) digests.push(blob.digest);
    let next = 0;
    const worker = async () => {
      while (next < digests.length) {
        const location = await this.locate(digests[next++]!, true);
        if (location) used.add(location.id);
      }
    };
    await Promise.all(Array.from({ length: SWEEP_CONCURRENCY }, worker));
    return used;
  }
}

/**
 * Cuts a stream of bytes into parts and sends them as a multipart upload, `partsInFlight` at
 * once; the multipart upload is created with the first whole part, so a blob smaller than a
 * part is never one. What is left under a part when the bytes end is the caller's.
 */
class PartSender {
  /** The part being filled (allocated with its first byte), and how much of it is. */
  private current: Buffer | undefined;
  private filled = 0;
  private readonly sent: Part[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private creating: Promise<string> | undefined;

  constructor(
    private readonly driver: S3Driver,
    private readonly key: string,
    private nextPart: number,
    private multipart: string | undefined,
  ) {}

  /**
   * Copies `chunk` into the part being filled (one copy per byte, no buffer held twice) and sends
   * each part that fills up, waiting while `partsInFlight` are out.
   */
  async push(chunk: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure.error;
    const size = this.driver.partBytes;
    for (let at = 0; at < chunk.byteLength;) {
      this.current ??= Buffer.allocUnsafe(size);
      const taken = Math.min(size - this.filled, chunk.byteLength - at);
      this.current.set(chunk.subarray(at, at + taken), this.filled);
      this.filled += taken;
      at += taken;
      if (this.filled === size) {
        const part = this.current;
        this.current = undefined;
        this.filled = 0;
        await this.start(part);
      }
    }
  }

  /** Waits for every part; returns them, and the bytes after the last one. */
  async finish(): Promise<{ sent: Part[]; rest: Buffer; multipart: string | undefined }> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure.error;
    const rest = this.current ? this.current.subarray(0, this.filled) : Buffer.alloc(0);
    this.current = undefined;
    this.filled = 0;
    return { sent: [...this.sent].sort((a, b) => a.n - b.n), rest, multipart: this.multipart };
  }

  /** Sends one more part now (the last one of a whole-blob write). */
  async sendPart(n: number, bytes: Buffer): Promise<Part> {
    return this.driver.uploadPart(this.key, await this.uploadId(), n, bytes);
  }

  /** After a failure: waits for parts still going out; a multipart upload this sender started is aborted. */
  async abandon(): Promise<void> {
    await Promise.allSettled(this.inFlight);
    if (this.creating) await this.driver.abortMultipart(this.key, await this.creating.catch(() => ""));
  }

  private uploadId(): Promise<string> {
    if (this.multipart !== undefined) return Promise.resolve(this.multipart);
    this.creating ??= this.driver.createMultipart(this.key).then((id) => (this.multipart = id));
    return this.creating;
  }

  private async start(bytes: Buffer): Promise<void> {
    while (this.inFlight.size >= this.driver.partsInFlight) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure.error;
    const n = this.nextPart++;
    const sending = this.uploadId()
      .then((multipart) => this.driver.uploadPart(this.key, multipart, n, bytes))
      .then(
        (part) => void this.sent.push(part),
        (error: unknown) => void (this.failure ??= { error }),
      )
      .finally(() => this.inFlight.delete(sending));
    this.inFlight.add(sending);
  }
}

function ignoreMissing(err: unknown): void {
  if (!isMissingKey(err) && !isNoSuchUpload(err)) throw err;
}
