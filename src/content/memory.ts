// A content store in process memory, for tests: the same verification, ranges, uploads and errors
// as the filesystem driver, and nothing survives the process.
import { Readable } from "node:stream";
import { chunksOf, type Limit } from "./body.js";
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
import { digestAlgorithm, digestOf } from "../domain/digest.js";
import type { Body, ByteRange, ContentDriver } from "./driver.js";
import { KeyedMutex } from "./mutex.js";

const READ_CHUNK = 1 << 20;

interface Upload {
  chunks: Buffer[];
  size: number;
  modifiedTime: Date;
}

export class MemoryDriver implements ContentDriver {
  readonly name = "memory";
  private readonly blobs = new Map<string, { bytes: Buffer; modifiedTime: Date }>();
  private readonly uploads = new Map<string, Upload>();
  private readonly uploadLocks = new KeyedMutex();

  async stat(digest: string): Promise<{ size: number } | undefined> {
    digestAlgorithm(digest);
    const blob = this.blobs.get(digest);
    return blob && { size: blob.bytes.length };
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    digestAlgorithm(digest);
    const blob = this.blobs.get(digest);
    if (!blob) throw blobUnknown(digest);
    if (range) checkRange(range, blob.bytes.length, digest);
    const bytes = range ? blob.bytes.subarray(range.start, range.end + 1) : blob.bytes;
    return Readable.from(slices(bytes));
  }

  async write(digest: string, body: Body, expectedSize?: number): Promise<{ size: number }> {
    digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    const limit = expectedSize === undefined ? undefined : { bytes: expectedSize, error: () => sizeMismatch(expectedSize, `more than ${expectedSize}`) };
    const bytes = Buffer.concat(await collect(body, limit));
    verify(bytes, digest, expectedSize);
    if (!this.blobs.has(digest)) this.blobs.set(digest, { bytes, modifiedTime: new Date() });
    return { size: bytes.length };
  }

  async delete(digest: string): Promise<void> {
    digestAlgorithm(digest);
    this.blobs.delete(digest);
  }

  async *list(): AsyncIterable<{ digest: string; modifiedTime: Date }> {
    for (const [digest, { modifiedTime }] of this.blobs) yield { digest, modifiedTime };
  }

  async uploadSize(uploadId: string): Promise<number | undefined> {
    return this.uploads.get(checkedUploadId(uploadId))?.size;
  }

  async startUpload(uploadId: string): Promise<void> {
    const id = checkedUploadId(uploadId);
    if (this.uploads.has(id)) throw uploadExists(id);
    this.uploads.set(id, { chunks: [], size: 0, modifiedTime: new Date() });
  }

  async append(uploadId: string, offset: number, body: Body, maxBytes?: number, dropTail = false): Promise<number> {
    const id = checkedUploadId(uploadId);
    checkOffset(offset);
    checkLimit("maxBytes", maxBytes);
    return this.uploadLocks.run(id, async () => {
      const upload = this.uploads.get(id);
      if (!upload) throw uploadUnknown(id);
      if (dropTail && upload.size > offset) {
        const kept = Buffer.concat(upload.chunks).subarray(0, offset);
        upload.chunks = offset > 0 ? [kept] : [];
        upload.size = offset;
      }
      if (upload.size !== offset) throw offsetMismatch(id, offset, upload.size);
      const limit = maxBytes === undefined ? undefined : { bytes: maxBytes - offset, error: () => tooLarge(maxBytes) };
      // Collected first and added only when complete: an append is all or nothing.
      const chunks = await collect(body, limit);
      for (const chunk of chunks) {
        upload.chunks.push(chunk);
        upload.size += chunk.length;
      }
      upload.modifiedTime = new Date();
      return upload.size;
    });
  }

  async commit(uploadId: string, digest: string, expectedSize?: number): Promise<{ size: number }> {
    const id = checkedUploadId(uploadId);
    digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    return this.uploadLocks.run(id, async () => {
      const upload = this.uploads.get(id);
      if (!upload) throw uploadUnknown(id);
      this.uploads.delete(id); // gone whether it verifies or not
      const bytes = Buffer.concat(upload.chunks);
      verify(bytes, digest, expectedSize);
      this.blobs.set(digest, { bytes, modifiedTime: new Date() });
      return { size: bytes.length };
    });
  }

  async abort(uploadId: string): Promise<void> {
    this.uploads.delete(checkedUploadId(uploadId));
  }

  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedTime: Date }> {
    for (const [uploadId, { modifiedTime }] of this.uploads) yield { uploadId, modifiedTime };
  }
}

async function collect(body: Body, limit: Limit | undefined): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunksOf(body)) {
    size += chunk.byteLength;
    if (limit !== undefined && size > limit.bytes) throw limit.error();
    chunks.push(Buffer.from(chunk)); // a copy: the source may reuse its buffer
  }
  return chunks;
}

function verify(bytes: Buffer, digest: string, expectedSize: number | undefined): void {
  if (expectedSize !== undefined && bytes.length !== expectedSize) throw sizeMismatch(expectedSize, bytes.length);
  const actual = digestOf(bytes, digestAlgorithm(digest));
  if (actual !== digest) throw digestMismatch(digest, actual);
}

function* slices(bytes: Buffer): Generator<Buffer> {
  for (let at = 0; at < bytes.length; at += READ_CHUNK) yield bytes.subarray(at, at + READ_CHUNK);
}
