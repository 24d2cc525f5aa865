// The content store on a local (or shared POSIX) file system, under DATA_DIR/blobs:
//   <algorithm>/<first two hex digits>/<hex>   blobs, immutable, content addressed
//   uploads/<upload id>                        bytes of uploads in progress
//   tmp/<random>                               whole-blob writes in flight
// Everything is on one file system, so rename() moves a verified, fsynced file into place atomically:
// a reader sees the whole blob or none. The layout holds no state besides the files, so another process
// (after a restart, or a replica sharing the directory) picks up where this one stopped.
// One file past 400 lines on purpose: every operation depends on this layout and its
// fsync-then-rename protocol, which is easier to check for crash safety when read in one place.
import { randomUUID, type Hash } from "node:crypto";
import type { BigIntStats, Dirent } from "node:fs";
import { mkdir, open, opendir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable, Writable } from "node:stream";
import { invalidArgument, isDomainError } from "../domain/errors.js";
import { chunksOf, type Limit } from "./body.js";
import {
  blobUnknown,
  checkLimit,
  checkOffset,
  checkRange,
  checkedUploadId,
  digestMismatch,
  fileTooLarge,
  offsetMismatch,
  sizeMismatch,
  storageFull,
  tooLarge,
  uploadExists,
  uploadUnknown,
} from "./checks.js";
import { createDigestHash, digestAlgorithm, formatDigest, type DigestAlgorithm } from "../domain/digest.js";
import type { Body, ByteRange, ContentDriver, SweepReport, WriteOptions } from "./driver.js";
import { KeyedMutex } from "./mutex.js";

/** Bytes per read and per write: large enough for disk throughput, small enough to keep memory flat. */
const IO_CHUNK = 1 << 20;
/**
 * While a big body streams in, every this many bytes written start an fdatasync in the
 * background: the disk writes behind the network instead of after it, and the fsync that makes
 * the blob durable at the end finds little left to do (a 512 MiB push: the whole file was dirty
 * at that point, about a second of waiting on this machine).
 */
const SYNC_BEHIND = 32 << 20;
// Serving reads 256 KiB at a time into two buffers used in turn: no allocation and no page faults
// per chunk, and the next read overlaps the socket write; the two buffers stay in the CPU's caches
// between the read's copy and the socket's. Measured for a warm 512 MiB `/v2/` read of the service
// as shipped (compiled; bench/README.md, "The server compiled, as shipped"), 10 reads per size in
// one sitting: 256 KiB 2,160-2,770 MB/s at 0.22-0.29 CPU-seconds; 1 MiB 1,840-2,210 at 0.30;
// 512 KiB 1,540-2,260; 128 KiB 1,580-2,510. (Under tsx 1 MiB had measured best: December 2.)
const SEND_CHUNK = 256 << 10;
const ALGORITHMS: readonly DigestAlgorithm[] = ["sha256", "sha512"];
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const SHARD = /^[a-f0-9]{2}$/;
const HEX = /^[a-f0-9]+$/;
const UPLOAD_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Upload hashes kept in memory at most; a forgotten one only costs a re-read at commit. */
const MAX_TRACKED_UPLOADS = 10_000;

/** The running sha256 of an upload's bytes, valid while the file is the one it was computed for. */
interface Progress {
  hash: Hash;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
}

export interface FilesystemDriverOptions {
  /**
   * How errors that reach clients name the root: the setting an operator knows it by
   * ("DATA_DIR/blobs"), never the machine's absolute path (that goes to the log).
   */
  label?: string;
}

export class FilesystemDriver implements ContentDriver {
  readonly name = "filesystem";
  readonly root: string;
  private readonly label: string;
  private readonly uploadsDir: string;
  private readonly tmpDir: string;
  private readonly progress = new Map<string, Progress>();
  private readonly uploadLocks = new KeyedMutex();
  private rehashed = 0;

  constructor(root: string, options: FilesystemDriverOptions = {}) {
    this.root = resolve(root);
    this.label = options.label ?? "the content store's directory";
    this.uploadsDir = join(this.root, "uploads");
    this.tmpDir = join(this.root, "tmp");
  }

  /** Bytes that commits had to re-read to hash (after a restart, for sha512, or appends made elsewhere). */
  get rehashedBytes(): number {
    return this.rehashed;
  }

  /** Creates the directory layout, so a root that cannot be written fails at start-up, not at the first push. */
  async init(): Promise<void> {
    for (const dir of [this.tmpDir, this.uploadsDir, ...ALGORITHMS.map((a) => join(this.root, a))]) {
      await makeDirectory(dir);
    }
  }

  async stat(digest: string): Promise<{ size: number } | undefined> {
    const path = this.blobPath(digest);
    try {
      const info = await stat(path);
      return info.isFile() ? { size: info.size } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async read(digest: string, range?: ByteRange): Promise<Readable> {
    const path = this.blobPath(digest);
    // Open first: the stream then reads this inode even if the blob is deleted or replaced meanwhile.
    const file = await open(path, "r").catch((err: unknown) => {
      throw isMissing(err) ? blobUnknown(digest) : err;
    });
    try {
      const { size } = await file.stat();
      if (range) checkRange(range, size, digest);
      return file.createReadStream({ start: range?.start ?? 0, end: range?.end, highWaterMark: IO_CHUNK });
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  async pipeTo(digest: string, range: ByteRange | undefined, sink: Writable, ready: () => void): Promise<void> {
    const file = await open(this.blobPath(digest), "r").catch((err: unknown) => {
      throw isMissing(err) ? blobUnknown(digest) : err;
    });
    try {
      const { size } = await file.stat();
      if (range) checkRange(range, size, digest);
      const end = range ? range.end + 1 : size;
      ready();
      const buffers = [Buffer.allocUnsafe(Math.min(SEND_CHUNK, end)), Buffer.allocUnsafe(Math.min(SEND_CHUNK, end))];
      let written: Promise<void> = Promise.resolve();
      for (let position = range?.start ?? 0, turn = 0; position < end; turn++) {
        const buffer = buffers[turn % 2]!;
        const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, end - position), position);
        if (bytesRead === 0) throw new Error(`blob ${digest} ended at ${position} of ${end} bytes`);
        // The other buffer may be reused only once the sink has taken it.
        await written;
        written = writeTo(sink, buffer.subarray(0, bytesRead));
        // Awaited on the next turn; until then a failure must not count as unhandled.
        written.catch(() => {});
        position += bytesRead;
      }
      await written;
    } finally {
      await file.close();
    }
  }

  async write(digest: string, body: Body, expectedSize?: number, options: WriteOptions = {}): Promise<{ size: number }> {
    const temp = join(this.tmpDir, randomUUID());
    return this.writeBlob(temp, digest, body, expectedSize, options).catch(this.storageFailure(temp));
  }

  private async writeBlob(temp: string, digest: string, body: Body, expectedSize: number | undefined, options: WriteOptions): Promise<{ size: number }> {
    const algorithm = digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    const target = this.blobPath(digest);
    await makeDirectory(this.tmpDir);
    const file = await open(temp, "wx", 0o644);
    let closed = false;
    let placed = false;
    try {
      // A verified body ends only when its bytes matched (WriteOptions): hashing them again here
      // would cost the event loop a second sha256 of every byte.
      const hash = options.verifiedBody && expectedSize !== undefined ? undefined : createDigestHash(algorithm);
      const limit = expectedSize === undefined ? undefined : { bytes: expectedSize, error: () => sizeMismatch(expectedSize, `more than ${expectedSize}`) };
      // In the background the syncs behind the writes only slow them down (on a busy disk each
      // one stalls the writes queued behind it): the fsync below is the one durability needs.
      const size = await streamInto(file, 0, body, hash, limit, !options.background, options.written);
      if (expectedSize !== undefined && size !== expectedSize) throw sizeMismatch(expectedSize, size);
      if (hash) {
        const actual = formatDigest(algorithm, hash);
        if (actual !== digest) throw digestMismatch(digest, actual);
      }
      await file.sync();
      await file.close();
      closed = true;
      // A concurrent writer of the same digest renames identical bytes over these: harmless.
      await this.place(temp, target);
      placed = true;
      return { size };
    } finally {
      // Removing the partial file frees its space, so this works on a full disk too.
      if (!closed) await file.close().catch(() => undefined);
      if (!placed) await rm(temp, { force: true }).catch(() => undefined);
    }
  }

  async delete(digest: string): Promise<void> {
    const path = this.blobPath(digest);
    await rm(path, { force: true }).catch(this.storageFailure(path));
  }

  async *list(): AsyncIterable<{ digest: string; modifiedTime: Date }> {
    for (const algorithm of ALGORITHMS) {
      const algorithmDir = join(this.root, algorithm);
      for await (const shard of entries(algorithmDir)) {
        if (!shard.isDirectory() || !SHARD.test(shard.name)) continue;
        const shardDir = join(algorithmDir, shard.name);
        for await (const entry of entries(shardDir)) {
          const { name } = entry;
          if (!entry.isFile() || name.length !== HEX_LENGTH[algorithm] || !HEX.test(name) || !name.startsWith(shard.name)) {
            continue;
          }
          const modifiedTime = await mtimeOf(join(shardDir, name));
          if (modifiedTime) yield { digest: `${algorithm}:${name}`, modifiedTime };
        }
      }
    }
  }

  async uploadSize(uploadId: string): Promise<number | undefined> {
    try {
      const info = await stat(this.uploadPath(uploadId));
      return info.isFile() ? info.size : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async startUpload(uploadId: string): Promise<void> {
    const path = this.uploadPath(uploadId);
    const fail = this.storageFailure(path);
    await makeDirectory(this.uploadsDir).catch(fail);
    const file = await open(path, "wx", 0o644).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw uploadExists(uploadId);
      return fail(err);
    });
    await file.close();
    this.progress.delete(checkedUploadId(uploadId));
    // The upload must survive a crash: its directory entry is durable before the client hears of it.
    await syncDirectory(this.uploadsDir).catch(fail);
  }

  async append(uploadId: string, offset: number, body: Body, maxBytes?: number, dropTail = false): Promise<number> {
    const id = checkedUploadId(uploadId);
    const path = this.uploadPath(id);
    checkOffset(offset);
    checkLimit("maxBytes", maxBytes);
    const appending = this.uploadLocks.run(id, async () => {
      const file = await this.openUpload(path, id, "r+");
      try {
        let before = await file.stat({ bigint: true });
        if (dropTail && before.size > BigInt(offset)) {
          await file.truncate(offset);
          await file.sync();
          this.progress.delete(id);
          before = await file.stat({ bigint: true });
        }
        if (before.size !== BigInt(offset)) throw offsetMismatch(id, offset, Number(before.size));
        const known = this.progress.get(id);
        const valid = known !== undefined && sameFile(known, before);
        // Keep hashing incrementally only while every append of this upload happened here.
        const hash = valid ? known.hash.copy() : offset === 0 ? createDigestHash("sha256") : undefined;
        const limit = maxBytes === undefined ? undefined : { bytes: maxBytes - offset, error: () => tooLarge(maxBytes) };
        try {
          const added = await streamInto(file, offset, body, hash, limit);
          // Durable before the caller records the new size (an upload survives a crash).
          await file.sync();
          this.track(id, hash, await file.stat({ bigint: true }));
          return offset + added;
        } catch (err) {
          // All or nothing: back to the size the caller (and the database) knows, so a retry or a
          // resumed upload continues from `offset`. Shrinking a file needs no space; should it fail
          // anyway, the caller's next append (dropTail) cuts the bytes it never recorded.
          try {
            await file.truncate(offset);
            await file.sync();
            this.track(id, valid ? known.hash : undefined, await file.stat({ bigint: true }));
          } catch {
            this.progress.delete(id);
          }
          throw err;
        }
      } finally {
        await file.close();
      }
    });
    return appending.catch(this.storageFailure(path));
  }

  async commit(uploadId: string, digest: string, expectedSize?: number): Promise<{ size: number }> {
    const id = checkedUploadId(uploadId);
    const path = this.uploadPath(id);
    const algorithm = digestAlgorithm(digest);
    checkLimit("expected size", expectedSize);
    const target = this.blobPath(digest);
    const committing = this.uploadLocks.run(id, async () => {
      const file = await this.openUpload(path, id, "r");
      let size: number;
      try {
        const info = await file.stat({ bigint: true });
        size = Number(info.size);
        if (expectedSize !== undefined && size !== expectedSize) throw sizeMismatch(expectedSize, size);
        const known = this.progress.get(id);
        const actual =
          algorithm === "sha256" && known !== undefined && sameFile(known, info)
            ? formatDigest("sha256", known.hash.copy())
            : await this.hashFile(file, algorithm);
        if (actual !== digest) throw digestMismatch(digest, actual);
        await file.sync();
      } catch (err) {
        if (isDomainError(err, "invalid-argument")) {
          // The client sent the wrong bytes or the wrong digest: it has to start again.
          this.progress.delete(id);
          await rm(path, { force: true });
        }
        throw err;
      } finally {
        await file.close();
      }
      // Failing here (no room for a new shard directory) keeps the upload: a retry commits it.
      // The uploads directory (the old name gone) is synced with the blob's (the new name).
      await this.place(path, target, [this.uploadsDir]);
      this.progress.delete(id);
      return { size };
    });
    return committing.catch(this.storageFailure(target));
  }

  async abort(uploadId: string): Promise<void> {
    const path = this.uploadPath(uploadId);
    this.progress.delete(checkedUploadId(uploadId));
    await rm(path, { force: true }).catch(this.storageFailure(path));
  }

  async *listUploads(): AsyncIterable<{ uploadId: string; modifiedTime: Date }> {
    for await (const entry of entries(this.uploadsDir)) {
      if (!entry.isFile() || !UPLOAD_NAME.test(entry.name)) continue;
      const modifiedTime = await mtimeOf(join(this.uploadsDir, entry.name));
      if (modifiedTime) yield { uploadId: entry.name, modifiedTime };
    }
  }

  /** Whole-blob writes a crashed process left in tmp/, last changed before `cutoff`. */
  async sweep(cutoff: Date): Promise<SweepReport> {
    return { removed: await this.sweepTemp(Date.now() - cutoff.getTime()) };
  }

  /**
   * Removes whole-blob writes that a crashed process left behind, older than `olderThanMs`
   * (old enough that no live write can own them). Returns how many were removed.
   */
  async sweepTemp(olderThanMs = 60 * 60 * 1000): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for await (const entry of entries(this.tmpDir)) {
      const path = join(this.tmpDir, entry.name);
      const modifiedTime = await mtimeOf(path);
      if (modifiedTime && modifiedTime.getTime() < cutoff) {
        await rm(path, { force: true, recursive: true });
        removed++;
      }
    }
    return removed;
  }

  /**
   * A rejection handler for a change to the store: what the file system says when it has no
   * room, from whichever call (ENOSPC, EDQUOT: storage-full; EFBIG: too-large), becomes the
   * domain error that says so; anything else is rethrown as it is. `path` (the file being
   * written) is for the operator's log only.
   */
  private storageFailure(path: string): (err: unknown) => never {
    return (err) => {
      const e = err as NodeJS.ErrnoException | undefined;
      const code = e?.code;
      if (code !== "ENOSPC" && code !== "EDQUOT" && code !== "EFBIG") throw err;
      const logDetails = { path: e?.path ?? path, code, syscall: e?.syscall };
      if (code === "EFBIG") throw fileTooLarge(this.label, logDetails, err);
      throw storageFull(
        code === "ENOSPC" ? `no space left on the device holding ${this.label}` : `the disk quota for ${this.label} is used up`,
        logDetails,
        err,
      );
    };
  }

  private blobPath(digest: string): string {
    const algorithm = digestAlgorithm(digest);
    const hex = digest.slice(algorithm.length + 1);
    return this.inside(join(this.root, algorithm, hex.slice(0, 2), hex));
  }

  private uploadPath(uploadId: string): string {
    return this.inside(join(this.uploadsDir, checkedUploadId(uploadId)));
  }

  /** Belt and braces: names were validated by the grammar, and still no path leaves the root. */
  private inside(path: string): string {
    if (!resolve(path).startsWith(this.root + sep)) {
      throw invalidArgument("name resolves outside the content store");
    }
    return path;
  }

  private async openUpload(path: string, uploadId: string, flags: "r" | "r+"): Promise<FileHandle> {
    return open(path, flags).catch((err: unknown) => {
      throw isMissing(err) ? uploadUnknown(uploadId) : err;
    });
  }

  /** Re-reads a file to compute its digest. */
  private async hashFile(file: FileHandle, algorithm: DigestAlgorithm): Promise<string> {
    const hash = createDigestHash(algorithm);
    const buffer = Buffer.allocUnsafe(IO_CHUNK);
    for (let position = 0; ;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      position += bytesRead;
      this.rehashed += bytesRead;
    }
    return formatDigest(algorithm, hash);
  }

  private track(uploadId: string, hash: Hash | undefined, info: BigIntStats): void {
    this.progress.delete(uploadId);
    if (hash === undefined) return;
    this.progress.set(uploadId, { hash, ino: info.ino, size: info.size, mtimeNs: info.mtimeNs });
    if (this.progress.size > MAX_TRACKED_UPLOADS) {
      const oldest = this.progress.keys().next().value;
      if (oldest !== undefined) this.progress.delete(oldest);
    }
  }

  /**
   * Renames a complete, fsynced file to `target` and makes the new directory entry durable, and
   * with it the directories in `alsoSync`. The directories are synced at once, not one after the
   * other: each fsync waits for a journal commit, and the later ones find theirs already done.
   */
  private async place(source: string, target: string, alsoSync: string[] = []): Promise<void> {
    const dir = dirname(target);
    const created = await makeDirectory(dir);
    await rename(source, target);
    // Sync the blob's directory, and each parent whose entry for a directory created just now is new.
    const toSync = [dir, ...alsoSync];
    if (created !== undefined) {
      for (let p = dir; p !== dirname(created) && p.startsWith(this.root + sep);) {
        p = dirname(p);
        toSync.push(p);
      }
    }
    await Promise.all(toSync.map((d) => syncDirectory(d)));
  }
}

/**
 * Streams `body` into `file` at `position`, hashing as it goes. Batches small chunks into writes of
 * about IO_CHUNK and keeps one write in flight while the next batch is read, so at most about
 * 2 × IO_CHUNK is held whatever the size. Returns the bytes written.
 */
async function streamInto(
  file: FileHandle,
  position: number,
  body: Body,
  hash: Hash | undefined,
  limit: Limit | undefined,
  syncBehind = true,
  written?: (bytes: number) => void,
): Promise<number> {
  let received = 0;
  let flushed = 0;
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let inFlight: Promise<void> = Promise.resolve();
  let failure: { error: unknown } | undefined;
  let synced = 0;
  let syncing: Promise<void> | undefined;

  const flush = async (): Promise<void> => {
    await inFlight;
    if (failure) throw failure.error;
    if (syncBehind && syncing === undefined && flushed - synced >= SYNC_BEHIND) {
      synced = flushed;
      // An fsync error may be reported only once (and the pages dropped): it fails the write.
      syncing = file.datasync().then(
        () => (syncing = undefined),
        (error: unknown) => {
          failure ??= { error };
          syncing = undefined;
        },
      );
    }
    if (batchBytes === 0) return;
    const buffers = batch;
    const at = position + flushed;
    flushed += batchBytes;
    const through = flushed;
    batch = [];
    batchBytes = 0;
    inFlight = writeAll(file, buffers, at).then(
      () => written?.(through),
      (error: unknown) => {
        failure = { error };
      },
    );
  };

  try {
    for await (const chunk of chunksOf(body)) {
      if (limit !== undefined && received + chunk.byteLength > limit.bytes) throw limit.error();
      hash?.update(chunk);
      batch.push(chunk);
      batchBytes += chunk.byteLength;
      received += chunk.byteLength;
      if (batchBytes >= IO_CHUNK) await flush();
    }
    await flush();
    await inFlight;
    await syncing;
    if (failure) throw failure.error;
    return received;
  } finally {
    // Never leave a write or sync running: the caller truncates or removes the file next.
    await inFlight;
    await syncing;
  }
}

async function writeAll(file: FileHandle, buffers: Uint8Array[], position: number): Promise<void> {
  // One buffer per write when the batch is many tiny chunks (writev takes at most IOV_MAX).
  let pending = buffers.length > 64 ? [Buffer.concat(buffers)] : buffers;
  let at = position;
  while (pending.length > 0) {
    const { bytesWritten } = await file.writev(pending, at);
    if (bytesWritten <= 0) throw new Error("write made no progress");
    at += bytesWritten;
    pending = dropBytes(pending, bytesWritten);
  }
}

function dropBytes(buffers: Uint8Array[], count: number): Uint8Array[] {
  let left = count;
  let i = 0;
  while (i < buffers.length && left >= buffers[i]!.byteLength) left -= buffers[i++]!.byteLength;
  const rest = buffers.slice(i);
  if (left > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(left);
  return rest;
}

function sameFile(known: Progress, info: BigIntStats): boolean {
  return known.ino === info.ino && known.size === info.size && known.mtimeNs === info.mtimeNs;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * `mkdir -p`, returning the first directory it created. Node's asynchronous recursive mkdir
 * reports a parent it failed to create as ENOENT whatever the cause (ENOSPC on a full disk
 * included), so on ENOENT the levels are made one at a time, which surfaces the real error.
 */
async function makeDirectory(dir: string): Promise<string | undefined> {
  try {
    return await mkdir(dir, { recursive: true });
  } catch (err) {
    if (!isMissing(err) || dirname(dir) === dir) throw err;
    const created = await makeDirectory(dirname(dir));
    try {
      await mkdir(dir);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code !== "EEXIST") throw again;
      return created;
    }
    return created ?? dir;
  }
}

/** Directory entries, read a batch at a time; a missing directory has none. */
async function* entries(dir: string): AsyncGenerator<Dirent> {
  let handle;
  try {
    handle = await opendir(dir);
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  yield* handle;
}

async function mtimeOf(path: string): Promise<Date | undefined> {
  try {
    return (await stat(path)).mtime;
  } catch (err) {
    if (isMissing(err)) return undefined; // removed between listing and stat
    throw err;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } catch (err) {
    // Some file systems cannot fsync a directory; the rename itself is still atomic there.
    if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
  } finally {
    await handle.close();
  }
}

function writeTo(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    sink.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}
