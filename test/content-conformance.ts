// The contract of src/content/driver.ts as tests: every content driver runs this suite unchanged
// (test/content.test.ts runs it for each). A new driver (S3…) is done when this passes.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Body, ContentDriver } from "../src/content/driver.js";
import { DomainError, type ErrorKind, type ErrorReason } from "../src/domain/errors.js";

export interface ConformanceSubject {
  driver: ContentDriver;
  cleanup(): Promise<void>;
  /** A new driver over the same storage with no in-memory state, as after a process restart. */
  restart?(): Promise<ContentDriver>;
  /** The driver keeps blobs in process memory by design: the flat-memory check does not apply. */
  holdsBytesInMemory?: boolean;
  /**
   * What the flat-memory check allows this driver to grow by while it streams a 64 MiB blob
   * (default 24 MiB): a driver that holds buffers of a fixed size by design (S3 parts) says how
   * much. Anything under 64 MiB still catches a driver that buffers the blob.
   */
  streamingBoundBytes?: number;
}

const MiB = 1 << 20;

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function sha512(bytes: Uint8Array): string {
  return `sha512:${createHash("sha512").update(bytes).digest("hex")}`;
}

export async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** `bytes` as a Readable in chunks of `size`, each delivered on a later tick (like a socket). */
export function chunked(bytes: Uint8Array, size = 64 * 1024): Readable {
  return Readable.from(
    (async function* () {
      for (let at = 0; at < bytes.length; at += size) {
        await new Promise((r) => setImmediate(r));
        yield Buffer.from(bytes.subarray(at, at + size));
      }
    })(),
  );
}

export async function expectDomainError(promise: Promise<unknown>, kind: ErrorKind, reason?: ErrorReason): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, `expected DomainError ${kind}${reason ? `/${reason}` : ""}`).toBeInstanceOf(DomainError);
  const domain = error as DomainError;
  expect({ kind: domain.kind, reason: domain.reason }).toEqual({ kind, reason });
  return domain;
}

/** Forces a full collection so that measured memory is what is still referenced, not garbage. */
function collector(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

function liveBytes(): number {
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

/** 1 MiB chunks, freshly allocated each time and different from each other. */
async function* pattern(chunks: number, onChunk?: (index: number) => void): AsyncGenerator<Buffer> {
  for (let i = 0; i < chunks; i++) {
    onChunk?.(i);
    const chunk = Buffer.alloc(MiB, i % 251);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

async function digestOfPattern(chunks: number): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of pattern(chunks)) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

export function contentDriverConformance(name: string, make: () => Promise<ConformanceSubject>): void {
  describe(`content driver conformance: ${name}`, () => {
    let subject: ConformanceSubject;
    let driver: ContentDriver;
    const restart = async (): Promise<ContentDriver> => (subject.restart ? subject.restart() : driver);

    beforeEach(async () => {
      subject = await make();
      driver = subject.driver;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    describe("blobs", () => {
      it("stores and reads back blobs byte for byte, from Readables and async iterables", async () => {
        const big = randomBytes(300 * 1024 + 17);
        const small = Buffer.from("hello, content store\n");
        const empty = Buffer.alloc(0);
        expect(await driver.write(sha256(big), chunked(big, 7 * 1024), big.length)).toEqual({ size: big.length });
        expect(
          await driver.write(
            sha256(small),
            (async function* () {
              yield small;
            })(),
          ),
        ).toEqual({ size: small.length });
        expect(await driver.write(sha256(empty), Readable.from([]), 0)).toEqual({ size: 0 });

        for (const bytes of [big, small, empty]) {
          expect(await driver.stat(sha256(bytes))).toEqual({ size: bytes.length });
          expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
        }
      });

      it("reads inclusive ranges: first byte, last byte, middle, whole", async () => {
        const bytes = randomBytes(3 * MiB + 1000);
        const digest = sha256(bytes);
        await driver.write(digest, chunked(bytes, MiB));
        const last = bytes.length - 1;
        for (const [start, end] of [
          [0, 0],
          [last, last],
          [100, 199],
          [MiB - 1, 2 * MiB + 5],
          [0, last],
        ] as const) {
          const got = await readAll(await driver.read(digest, { start, end }));
          expect(got.equals(bytes.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
        }
      });

      it("refuses ranges that are not inside the blob", async () => {
        const bytes = randomBytes(1000);
        const digest = sha256(bytes);
        await driver.write(digest, chunked(bytes));
        for (const range of [
          { start: 0, end: 1000 },
          { start: 1000, end: 1000 },
          { start: 5, end: 4 },
          { start: -1, end: 3 },
          { start: 1.5, end: 3 },
        ]) {
          await expectDomainError(driver.read(digest, range), "failed-precondition", "range-mismatch");
        }
      });

      it("serves through pipeTo, when the driver has it: whole, ranges, a slow sink, errors before ready", async (ctx) => {
        if (!driver.pipeTo) return ctx.skip();
        const bytes = randomBytes(9 * MiB + 123);
        const digest = sha256(bytes);
        await driver.write(digest, chunked(bytes, MiB));
        const collect = async (range?: { start: number; end: number }, delayMs = 0) => {
          const chunks: Buffer[] = [];
          let readyCalls = 0;
          const sink = new Writable({
            highWaterMark: 1024,
            write(chunk: Buffer, _encoding, callback) {
              expect(readyCalls).toBe(1);
              // The driver reuses its buffers once a write is done: keep a copy, as a socket would have sent it.
              chunks.push(Buffer.from(chunk));
              setTimeout(callback, delayMs);
            },
          });
          await driver.pipeTo!(digest, range, sink, () => readyCalls++);
          expect(readyCalls).toBe(1);
          return Buffer.concat(chunks);
        };
        expect((await collect()).equals(bytes)).toBe(true);
        expect((await collect(undefined, 5)).equals(bytes)).toBe(true);
        const last = bytes.length - 1;
        for (const [start, end] of [
          [0, 0],
          [last, last],
          [5 * MiB - 3, 5 * MiB + 3],
          [0, last],
        ] as const) {
          expect((await collect({ start, end })).equals(bytes.subarray(start, end + 1)), `range ${start}-${end}`).toBe(true);
        }
        const neverReady = () => {
          throw new Error("ready must not be called");
        };
        await expectDomainError(
          driver.pipeTo(sha256(Buffer.from("absent")), undefined, new Writable({ write: (_c, _e, cb) => cb() }), neverReady),
          "not-found",
          "blob-unknown",
        );
        await expectDomainError(
          driver.pipeTo(digest, { start: 0, end: bytes.length }, new Writable({ write: (_c, _e, cb) => cb() }), neverReady),
          "failed-precondition",
          "range-mismatch",
        );
        // A sink that fails (a client gone) ends the copy with its error.
        const broken = new Writable({ write: (_c, _e, cb) => cb(new Error("client went away")) });
        broken.on("error", () => {}); // as an HTTP response's socket has
        await expect(driver.pipeTo(digest, undefined, broken, () => {})).rejects.toThrow("client went away");
      });

      it("reports absent blobs: stat undefined, read not-found", async () => {
        const digest = sha256(Buffer.from("never stored"));
        expect(await driver.stat(digest)).toBeUndefined();
        await expectDomainError(driver.read(digest), "not-found", "blob-unknown");
        await expectDomainError(driver.read(digest, { start: 0, end: 0 }), "not-found", "blob-unknown");
      });

      it("stores nothing when the digest does not match", async () => {
        const bytes = randomBytes(200 * 1024);
        const claimed = sha256(Buffer.from("something else"));
        await expectDomainError(driver.write(claimed, chunked(bytes)), "invalid-argument", "digest-mismatch");
        expect(await driver.stat(claimed)).toBeUndefined();
        expect(await driver.stat(sha256(bytes))).toBeUndefined();
        await expectDomainError(driver.read(claimed), "not-found", "blob-unknown");
        expect(await collect(driver.list())).toEqual([]);
      });

      it("stores nothing when the size does not match, and stops reading an oversized body", async () => {
        const bytes = randomBytes(10_000);
        const digest = sha256(bytes);
        await expectDomainError(driver.write(digest, chunked(bytes), bytes.length - 1), "invalid-argument", "size-mismatch");
        await expectDomainError(driver.write(digest, chunked(bytes), bytes.length + 1), "invalid-argument", "size-mismatch");
        expect(await driver.stat(digest)).toBeUndefined();
        expect(await collect(driver.list())).toEqual([]);

        // A body far larger than announced is cut off after the announced size, not read to the end.
        let pulled = 0;
        await expectDomainError(
          driver.write(
            digest,
            pattern(1024, (i) => (pulled = i + 1)),
            10,
          ),
          "invalid-argument",
          "size-mismatch",
        );
        expect(pulled).toBeLessThanOrEqual(2);
      });

      it("leaves a Readable body it stops reading undestroyed, so an HTTP edge can still answer", async () => {
        const body = new Readable({ read() {} });
        body.push(randomBytes(1000));
        await expectDomainError(driver.write(sha256(Buffer.from("x")), body, 10), "invalid-argument", "size-mismatch");
        expect(body.destroyed).toBe(false);

        const id = randomUUID();
        await driver.startUpload(id);
        body.push(randomBytes(1000));
        await expectDomainError(driver.append(id, 0, body, 10), "resource-exhausted", "too-large");
        expect(body.destroyed).toBe(false);
        expect(await driver.uploadSize(id)).toBe(0);
        body.destroy();
      });

      it("refuses malformed digests before touching storage", async () => {
        const hex = "a".repeat(64);
        const bad = [
          "",
          "sha256:abc",
          `md5:${hex}`,
          `SHA256:${hex}`,
          `sha256:${hex.toUpperCase()}`,
          "sha256:../../../../etc/passwd",
          `sha256:${hex}/../x`,
          `sha512:${hex}`,
        ];
        for (const digest of bad) {
          await expectDomainError(driver.stat(digest), "invalid-argument", "digest-invalid");
          await expectDomainError(driver.read(digest), "invalid-argument", "digest-invalid");
          await expectDomainError(driver.write(digest, Readable.from([Buffer.from("x")])), "invalid-argument", "digest-invalid");
          await expectDomainError(driver.delete(digest), "invalid-argument", "digest-invalid");
        }
        expect(await collect(driver.list())).toEqual([]);
      });

      it("keeps one copy when the same blob is written twice in a row", async () => {
        const bytes = randomBytes(100_000);
        const digest = sha256(bytes);
        expect(await driver.write(digest, chunked(bytes))).toEqual({ size: bytes.length });
        expect(await driver.write(digest, chunked(bytes), bytes.length)).toEqual({ size: bytes.length });
        expect((await collect(driver.list())).map((b) => b.digest)).toEqual([digest]);
        expect((await readAll(await driver.read(digest))).equals(bytes)).toBe(true);
      });

      it("keeps one correct copy when ten writers store the same blob at once", async () => {
        const bytes = randomBytes(2 * MiB + 3);
        const digest = sha256(bytes);
        const results = await Promise.all(Array.from({ length: 10 }, () => driver.write(digest, chunked(bytes, 256 * 1024), bytes.length)));
        expect(results).toEqual(Array.from({ length: 10 }, () => ({ size: bytes.length })));
        expect((await collect(driver.list())).map((b) => b.digest)).toEqual([digest]);
        expect((await readAll(await driver.read(digest))).equals(bytes)).toBe(true);
      });

      it("deletes idempotently", async () => {
        const bytes = randomBytes(5000);
        const digest = sha256(bytes);
        await driver.write(digest, chunked(bytes));
        await driver.delete(digest);
        expect(await driver.stat(digest)).toBeUndefined();
        await expectDomainError(driver.read(digest), "not-found", "blob-unknown");
        await driver.delete(digest);
        await driver.delete(sha256(Buffer.from("never stored")));
        expect(await collect(driver.list())).toEqual([]);
        // And the digest can be stored again.
        await driver.write(digest, chunked(bytes));
        expect(await driver.stat(digest)).toEqual({ size: 5000 });
      });

      it("lists every stored blob with its modification time", async () => {
        const before = Date.now();
        const blobs = [randomBytes(10), randomBytes(20), randomBytes(30)];
        const digests = [sha256(blobs[0]!), sha256(blobs[1]!), sha512(blobs[2]!)];
        for (const [i, digest] of digests.entries()) await driver.write(digest, chunked(blobs[i]!));
        const listed = await collect(driver.list());
        expect(listed.map((b) => b.digest).sort()).toEqual([...digests].sort());
        for (const { modifiedTime } of listed) {
          expect(modifiedTime).toBeInstanceOf(Date);
          expect(modifiedTime.getTime()).toBeGreaterThanOrEqual(before - 2000);
          expect(modifiedTime.getTime()).toBeLessThanOrEqual(Date.now() + 2000);
        }
      });

      it("supports sha512 digests for writes, reads and mismatches", async () => {
        const bytes = randomBytes(70_000);
        const digest = sha512(bytes);
        expect(await driver.write(digest, chunked(bytes), bytes.length)).toEqual({ size: bytes.length });
        expect(await driver.stat(digest)).toEqual({ size: bytes.length });
        expect(await driver.stat(sha256(bytes))).toBeUndefined();
        expect((await readAll(await driver.read(digest, { start: 10, end: 69_999 }))).equals(bytes.subarray(10))).toBe(true);
        await expectDomainError(driver.write(sha512(Buffer.from("other")), chunked(bytes)), "invalid-argument", "digest-mismatch");
      });

      it("streams a 64 MiB blob in and out without holding it in memory", async () => {
        const chunks = 64;
        const digest = await digestOfPattern(chunks);
        const gc = collector();
        // Generous (garbage collection frees buffers with some delay); a driver that buffers the blob grows by ~64 MiB.
        const bound = subject.streamingBoundBytes ?? 24 * MiB;
        gc();
        let baseline = liveBytes();
        let peak = 0;
        const sample = (i: number): void => {
          if (i % 8 !== 7) return;
          gc();
          peak = Math.max(peak, liveBytes() - baseline);
        };
        expect(await driver.write(digest, pattern(chunks, sample), chunks * MiB)).toEqual({ size: chunks * MiB });
        if (!subject.holdsBytesInMemory) expect(peak, "memory growth while writing").toBeLessThan(bound);

        gc();
        baseline = liveBytes();
        peak = 0;
        const hash = createHash("sha256");
        let i = 0;
        for await (const chunk of await driver.read(digest)) {
          hash.update(chunk as Buffer);
          sample(i++);
        }
        expect(`sha256:${hash.digest("hex")}`).toBe(digest);
        if (!subject.holdsBytesInMemory) expect(peak, "memory growth while reading").toBeLessThan(bound);
      });
    });

    describe("uploads", () => {
      it("starts, appends contiguous chunks, commits, and is gone afterwards", async () => {
        const bytes = randomBytes(3 * MiB + 12_345);
        const digest = sha256(bytes);
        const id = randomUUID();
        expect(await driver.uploadSize(id)).toBeUndefined();
        await driver.startUpload(id);
        expect(await driver.uploadSize(id)).toBe(0);
        expect((await collect(driver.listUploads())).map((u) => u.uploadId)).toEqual([id]);

        const cuts = [0, 1, MiB, 2 * MiB + 7, bytes.length];
        for (let i = 1; i < cuts.length; i++) {
          const size = await driver.append(id, cuts[i - 1]!, chunked(bytes.subarray(cuts[i - 1], cuts[i]), 100_000));
          expect(size).toBe(cuts[i]);
          expect(await driver.uploadSize(id)).toBe(cuts[i]);
        }
        expect(await driver.commit(id, digest, bytes.length)).toEqual({ size: bytes.length });
        expect((await readAll(await driver.read(digest))).equals(bytes)).toBe(true);
        expect(await driver.uploadSize(id)).toBeUndefined();
        expect(await collect(driver.listUploads())).toEqual([]);
        await expectDomainError(driver.commit(id, digest), "not-found", "upload-unknown");
      });

      it("commits an empty upload and an upload of a blob the store already holds", async () => {
        const empty = randomUUID();
        await driver.startUpload(empty);
        expect(await driver.commit(empty, sha256(Buffer.alloc(0)), 0)).toEqual({ size: 0 });

        const bytes = randomBytes(40_000);
        await driver.write(sha256(bytes), chunked(bytes));
        const again = randomUUID();
        await driver.startUpload(again);
        await driver.append(again, 0, chunked(bytes));
        expect(await driver.commit(again, sha256(bytes))).toEqual({ size: bytes.length });
        expect((await collect(driver.list())).map((b) => b.digest).sort()).toEqual([sha256(Buffer.alloc(0)), sha256(bytes)].sort());
        expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
      });

      it("refuses an append at the wrong offset and appends nothing", async () => {
        const bytes = randomBytes(30);
        const id = randomUUID();
        await driver.startUpload(id);
        expect(await driver.append(id, 0, chunked(bytes.subarray(0, 10)))).toBe(10);
        for (const offset of [0, 5, 11, 20]) {
          await expectDomainError(driver.append(id, offset, chunked(bytes.subarray(10))), "failed-precondition", "range-mismatch");
          expect(await driver.uploadSize(id)).toBe(10);
        }
        expect(await driver.append(id, 10, chunked(bytes.subarray(10)))).toBe(30);
        expect(await driver.commit(id, sha256(bytes), 30)).toEqual({ size: 30 });
      });

      it("drops an unrecorded tail when the only writer says so, and only then", async () => {
        const bytes = randomBytes(40);
        const id = randomUUID();
        await driver.startUpload(id);
        expect(await driver.append(id, 0, chunked(bytes.subarray(0, 10)))).toBe(10);
        // An append that a crash cut short before its caller recorded it: 10 bytes nobody acknowledged.
        expect(await driver.append(id, 10, chunked(randomBytes(10)))).toBe(20);
        await expectDomainError(driver.append(id, 10, chunked(bytes.subarray(10))), "failed-precondition", "range-mismatch");
        expect(await driver.append(id, 10, chunked(bytes.subarray(10, 30)), undefined, true)).toBe(30);
        // Never grows an upload that holds less than the offset.
        await expectDomainError(driver.append(id, 35, chunked(bytes.subarray(30)), undefined, true), "failed-precondition", "range-mismatch");
        expect(await driver.append(id, 30, chunked(bytes.subarray(30)), undefined, true)).toBe(40);
        expect(await driver.commit(id, sha256(bytes), 40)).toEqual({ size: 40 });
      });

      it("lets exactly one of two appends at the same offset through", async () => {
        const id = randomUUID();
        await driver.startUpload(id);
        const a = randomBytes(300_000);
        const b = randomBytes(300_000);
        const results = await Promise.allSettled([driver.append(id, 0, chunked(a, 50_000)), driver.append(id, 0, chunked(b, 50_000))]);
        const won = results.findIndex((r) => r.status === "fulfilled");
        const lost = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
        expect(won).toBeGreaterThanOrEqual(0);
        expect(lost?.reason).toBeInstanceOf(DomainError);
        expect((lost?.reason as DomainError).reason).toBe("range-mismatch");
        expect(await driver.uploadSize(id)).toBe(300_000);
        expect(await driver.commit(id, sha256(won === 0 ? a : b))).toEqual({ size: 300_000 });
      });

      it("stops an append past maxBytes and keeps the upload as it was", async () => {
        const bytes = randomBytes(20);
        const id = randomUUID();
        await driver.startUpload(id);
        expect(await driver.append(id, 0, chunked(bytes.subarray(0, 10)), 20)).toBe(10);
        await expectDomainError(driver.append(id, 10, chunked(randomBytes(15), 4), 20), "resource-exhausted", "too-large");
        expect(await driver.uploadSize(id)).toBe(10);
        expect(await driver.append(id, 10, chunked(bytes.subarray(10)), 20)).toBe(20);
        expect(await driver.commit(id, sha256(bytes))).toEqual({ size: 20 });
      });

      it("refuses unknown uploads, and starting one twice", async () => {
        const id = randomUUID();
        await expectDomainError(driver.append(id, 0, chunked(Buffer.from("x"))), "not-found", "upload-unknown");
        await expectDomainError(driver.commit(id, sha256(Buffer.from("x"))), "not-found", "upload-unknown");
        expect(await driver.uploadSize(id)).toBeUndefined();
        await driver.abort(id);
        await driver.startUpload(id);
        await driver.append(id, 0, chunked(Buffer.from("abc")));
        await expectDomainError(driver.startUpload(id), "already-exists");
        expect(await driver.uploadSize(id)).toBe(3);
      });

      it("verifies at commit: a mismatch fails and removes the upload", async () => {
        const bytes = randomBytes(500_000);
        const wrongDigest = randomUUID();
        await driver.startUpload(wrongDigest);
        await driver.append(wrongDigest, 0, chunked(bytes));
        const claimed = sha256(Buffer.from("other bytes"));
        await expectDomainError(driver.commit(wrongDigest, claimed), "invalid-argument", "digest-mismatch");
        expect(await driver.uploadSize(wrongDigest)).toBeUndefined();
        expect(await driver.stat(claimed)).toBeUndefined();
        expect(await driver.stat(sha256(bytes))).toBeUndefined();

        const wrongSize = randomUUID();
        await driver.startUpload(wrongSize);
        await driver.append(wrongSize, 0, chunked(bytes));
        await expectDomainError(driver.commit(wrongSize, sha256(bytes), bytes.length + 1), "invalid-argument", "size-mismatch");
        expect(await driver.uploadSize(wrongSize)).toBeUndefined();
        expect(await driver.stat(sha256(bytes))).toBeUndefined();
        expect(await collect(driver.listUploads())).toEqual([]);
        expect(await collect(driver.list())).toEqual([]);
      });

      it("commits the same digest after a restart lost the in-memory hash", async () => {
        const bytes = randomBytes(2 * MiB + 99);
        const digest = sha256(bytes);
        const half = MiB + 1;

        // All appends here, commit after a restart: the bytes are re-read.
        const one = randomUUID();
        await driver.startUpload(one);
        await driver.append(one, 0, chunked(bytes.subarray(0, half)));
        await driver.append(one, half, chunked(bytes.subarray(half)));
        const restarted = await restart();
        expect(await restarted.uploadSize(one)).toBe(bytes.length);
        expect(await restarted.commit(one, digest, bytes.length)).toEqual({ size: bytes.length });
        expect((await readAll(await restarted.read(digest))).equals(bytes)).toBe(true);

        // Appends split between two instances, commit on the one whose hash is now stale.
        await driver.delete(digest);
        const two = randomUUID();
        await driver.startUpload(two);
        await driver.append(two, 0, chunked(bytes.subarray(0, half)));
        await restarted.append(two, half, chunked(bytes.subarray(half)));
        expect(await driver.commit(two, digest)).toEqual({ size: bytes.length });
        expect((await readAll(await driver.read(digest))).equals(bytes)).toBe(true);

        // A mismatch is still caught on the re-read path.
        const three = randomUUID();
        await driver.startUpload(three);
        await driver.append(three, 0, chunked(bytes));
        const again = await restart();
        await expectDomainError(again.commit(three, sha256(bytes.subarray(1))), "invalid-argument", "digest-mismatch");
        expect(await again.uploadSize(three)).toBeUndefined();
      });

      it("commits uploads under sha512 digests", async () => {
        const bytes = randomBytes(MiB + 5);
        const id = randomUUID();
        await driver.startUpload(id);
        await driver.append(id, 0, chunked(bytes.subarray(0, 1000)));
        await driver.append(id, 1000, chunked(bytes.subarray(1000)));
        expect(await driver.commit(id, sha512(bytes), bytes.length)).toEqual({ size: bytes.length });
        expect((await readAll(await driver.read(sha512(bytes)))).equals(bytes)).toBe(true);
      });

      it("aborts idempotently", async () => {
        const id = randomUUID();
        await driver.startUpload(id);
        await driver.append(id, 0, chunked(randomBytes(1000)));
        await driver.abort(id);
        expect(await driver.uploadSize(id)).toBeUndefined();
        expect(await collect(driver.listUploads())).toEqual([]);
        await expectDomainError(driver.append(id, 1000, chunked(Buffer.from("x"))), "not-found", "upload-unknown");
        await expectDomainError(driver.commit(id, sha256(Buffer.from("x"))), "not-found", "upload-unknown");
        await driver.abort(id);
      });

      it("lists every upload with its modification time", async () => {
        const before = Date.now();
        const ids = [randomUUID(), randomUUID(), randomUUID()];
        for (const id of ids) await driver.startUpload(id);
        await driver.append(ids[1]!, 0, chunked(Buffer.from("some bytes")));
        const listed = await collect(driver.listUploads());
        expect(listed.map((u) => u.uploadId).sort()).toEqual([...ids].sort());
        for (const { modifiedTime } of listed) {
          expect(modifiedTime).toBeInstanceOf(Date);
          expect(modifiedTime.getTime()).toBeGreaterThanOrEqual(before - 2000);
        }
        await driver.commit(ids[1]!, sha256(Buffer.from("some bytes")));
        expect((await collect(driver.listUploads())).map((u) => u.uploadId).sort()).toEqual([ids[0]!, ids[2]!].sort());
      });

      it("refuses malformed upload ids and offsets", async () => {
        const body = (): Body => Readable.from([Buffer.from("x")]);
        for (const id of ["", "not-a-uuid", "../../escape", `${randomUUID()}/../x`, `${randomUUID()}\u0000`]) {
          await expectDomainError(driver.startUpload(id), "invalid-argument");
          await expectDomainError(driver.uploadSize(id), "invalid-argument");
          await expectDomainError(driver.append(id, 0, body()), "invalid-argument");
          await expectDomainError(driver.commit(id, sha256(Buffer.from("x"))), "invalid-argument");
          await expectDomainError(driver.abort(id), "invalid-argument");
        }
        const id = randomUUID();
        await driver.startUpload(id);
        for (const offset of [-1, 0.5, Number.NaN]) await expectDomainError(driver.append(id, offset, body()), "invalid-argument");
        await expectDomainError(driver.commit(id, "sha256:nope"), "invalid-argument", "digest-invalid");
        expect(await driver.uploadSize(id)).toBe(0);
        expect(await collect(driver.listUploads())).toHaveLength(1);
      });

      it("commits a 64 MiB upload appended in four parts", async () => {
        const parts = 4;
        const perPart = 16;
        const digest = await digestOfPattern(parts * perPart);
        const id = randomUUID();
        await driver.startUpload(id);
        const all = pattern(parts * perPart);
        for (let p = 0; p < parts; p++) {
          const part = (async function* () {
            for (let i = 0; i < perPart; i++) yield (await all.next()).value as Buffer;
          })();
          expect(await driver.append(id, p * perPart * MiB, part)).toBe((p + 1) * perPart * MiB);
        }
        expect(await driver.commit(id, digest, parts * perPart * MiB)).toEqual({ size: parts * perPart * MiB });
        expect(await driver.stat(digest)).toEqual({ size: parts * perPart * MiB });
      });
    });
  });
}
