// The S3 content driver on a real S3-compatible server (OpenStack Swift's s3api, started by
// test/support/swift.ts): the shared conformance suite unchanged, then what only object storage
// needs: uploads continued by another process, small parts between appends, nothing visible
// before the index, the sweep, presigned reads, and the store failing as UNAVAILABLE, never a crash.
import { randomBytes, randomUUID } from "node:crypto";
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { S3Driver, type S3Settings } from "../src/content/s3.js";
import { createContentDriver } from "../src/content/index.js";
import { chunked, collect, contentDriverConformance, expectDomainError, readAll, sha256 } from "./content-conformance.js";
import { haveS3TestServer, s3TestServer } from "./support/swift.js";

const MiB = 1 << 20;
const available = haveS3TestServer("S3 content driver (test/content-s3.test.ts)");

let server: Awaited<ReturnType<typeof s3TestServer>> | undefined;
let bucket = "";

/** Settings for a fresh prefix in the shared bucket: every test sees an empty store. */
function settings(prefix = `t-${randomUUID()}/`): S3Settings {
  return {
    endpoint: server!.endpoint,
    region: server!.region,
    bucket,
    prefix,
    forcePathStyle: true,
    credentials: { accessKeyId: server!.accessKeyId, secretAccessKey: server!.secretAccessKey },
  };
}

// Small parts, two in flight: the multipart paths run on small blobs.
const OPTIONS = { partSize: 5 * MiB, partConcurrency: 2 };
// This driver holds (in flight + 1) parts by design, plus the SDK's request state, with spikes
// while a finished part's buffer awaits collection: one part at a time in the conformance run,
// and a flat-memory bound of its own (measured 15–25 MiB of growth; a driver that buffered the
// 64 MiB blob would exceed it).
const CONFORMANCE_OPTIONS = { partSize: 5 * MiB, partConcurrency: 1 };
const CONFORMANCE_MEMORY_BOUND = 40 * MiB;

describe.skipIf(!available)("S3 content driver", () => {
  beforeAll(async () => {
    server = await s3TestServer();
    bucket = await server.createBucket("content-");
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  contentDriverConformance("s3", async () => {
    const config = settings();
    const driver = new S3Driver(config, CONFORMANCE_OPTIONS);
    return {
      driver,
      cleanup: async () => driver.client.destroy(),
      restart: async () => new S3Driver(config, CONFORMANCE_OPTIONS),
      streamingBoundBytes: CONFORMANCE_MEMORY_BOUND,
    };
  });

  describe("object storage", () => {
    let config: S3Settings;
    let driver: S3Driver;
    let client: S3Client;
    const keys = async (under = ""): Promise<string[]> => {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${config.prefix}${under}` }));
      return (page.Contents ?? []).map((o) => o.Key!.slice(config.prefix.length)).sort();
    };
    const multipartUploads = async (): Promise<number> =>
      ((await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: config.prefix }))).Uploads ?? []).length;

    beforeEach(() => {
      config = settings();
      driver = new S3Driver(config, OPTIONS);
      client = driver.client;
    });

    it("continues an upload in another process after every append, small appends included, and verifies it", async () => {
      // Appends of 1 byte, 3 MiB, 7 MiB + 1, 2 MiB…: tails under a part carried between them.
      const bytes = randomBytes(17 * MiB + 12_345);
      const cuts = [0, 1, 3 * MiB, 10 * MiB + 1, 12 * MiB, 12 * MiB + 10, bytes.length];
      const id = randomUUID();
      await driver.startUpload(id);
      for (let i = 1; i < cuts.length; i++) {
        // A new process per append, as when a balancer sends each PATCH to another replica.
        const replica = new S3Driver(config, OPTIONS);
        expect(await replica.append(id, cuts[i - 1]!, chunked(bytes.subarray(cuts[i - 1], cuts[i]), 256 * 1024))).toBe(cuts[i]);
      }
      const committer = new S3Driver(config, OPTIONS);
      expect(await committer.commit(id, sha256(bytes), bytes.length)).toEqual({ size: bytes.length });
      // The hash could not follow the appends across processes: the commit read the bytes back.
      expect(committer.rehashedBytes).toBe(bytes.length);
      expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
      // Nothing of the upload is left: no state, no tail, no multipart upload.
      expect(await keys("uploads/")).toEqual([]);
      expect(await multipartUploads()).toBe(0);
    });

    it("verifies without reading back when one process appended in order, whichever process commits", async () => {
      const bytes = randomBytes(11 * MiB + 3);
      const id = randomUUID();
      await driver.startUpload(id);
      await driver.append(id, 0, chunked(bytes.subarray(0, 6 * MiB)));
      await driver.append(id, 6 * MiB, chunked(bytes.subarray(6 * MiB)));
      const other = new S3Driver(config, OPTIONS);
      expect(await other.commit(id, sha256(bytes))).toEqual({ size: bytes.length });
      expect(other.rehashedBytes).toBe(0);
      expect(driver.rehashedBytes).toBe(0);
      // The usual client flow through a balancer: POST on one replica, the whole blob in one PATCH
      // on a second, PUT on a third. The second hashes from byte 0, so nobody reads back.
      const spread = randomUUID();
      await driver.startUpload(spread);
      const appender = new S3Driver(config, OPTIONS);
      await appender.append(spread, 0, chunked(bytes));
      const committer = new S3Driver(config, OPTIONS);
      expect(await committer.commit(spread, sha256(bytes))).toEqual({ size: bytes.length });
      expect(committer.rehashedBytes).toBe(0);
      // …and a wrong digest is still refused on that path, the upload removed.
      const again = randomUUID();
      await driver.startUpload(again);
      await driver.append(again, 0, chunked(bytes));
      await expectDomainError(new S3Driver(config, OPTIONS).commit(again, sha256(bytes.subarray(1))), "invalid-argument", "digest-mismatch");
      expect(await driver.uploadSize(again)).toBeUndefined();
      expect(await keys("data/")).toHaveLength(1);
    });

    it("shows no blob before its bytes are complete and verified, and never copies them", async () => {
      const bytes = randomBytes(12 * MiB);
      const digest = sha256(bytes);
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let reached!: () => void;
      const midway = new Promise<void>((r) => (reached = r));
      const body = (async function* () {
        yield bytes.subarray(0, 11 * MiB);
        reached();
        await held;
        yield bytes.subarray(11 * MiB);
      })();
      const writing = driver.write(digest, body, bytes.length);
      await midway;
      await new Promise((r) => setTimeout(r, 200));
      expect(await driver.stat(digest)).toBeUndefined();
      expect(await keys("blobs/")).toEqual([]);
      release();
      expect(await writing).toEqual({ size: bytes.length });
      // One data object and one index: the bytes were written once, where they stay.
      expect((await keys("data/")).length).toBe(1);
      expect((await keys("blobs/")).length).toBe(1);
      expect(await driver.stat(digest)).toEqual({ size: bytes.length });
    });

    it("rolls back to the last recorded append when its only writer says so, across processes", async () => {
      const bytes = randomBytes(9 * MiB);
      const id = randomUUID();
      await driver.startUpload(id);
      await driver.append(id, 0, chunked(bytes.subarray(0, 6 * MiB)));
      // An append the database never recorded (the process died right after it).
      await driver.append(id, 6 * MiB, chunked(randomBytes(2 * MiB)));
      const replica = new S3Driver(config, OPTIONS);
      expect(await replica.append(id, 6 * MiB, chunked(bytes.subarray(6 * MiB)), undefined, true)).toBe(9 * MiB);
      expect(await replica.commit(id, sha256(bytes))).toEqual({ size: bytes.length });
      expect((await readAll(await driver.read(sha256(bytes)))).equals(bytes)).toBe(true);
    });

    it("sweeps what dead writers left: multipart uploads without an upload, bytes without an index", async () => {
      // A whole-blob write that died after sending two parts.
      const dying = (async function* () {
        yield randomBytes(11 * MiB);
        throw new Error("the process died");
      })();
      await expect(driver.write(sha256(Buffer.from("never")), dying)).rejects.toThrow("the process died");
      // A live upload and a stored blob must survive.
      const live = randomUUID();
      await driver.startUpload(live);
      await driver.append(live, 0, chunked(randomBytes(6 * MiB)));
      const kept = randomBytes(1000);
      await driver.write(sha256(kept), chunked(kept));
      // Bytes no index names (a crash between the data and the index).
      await driver.put(driver.dataKey(randomUUID()), randomBytes(100), "test");

      expect((await driver.sweep(new Date(Date.now() - 3_600_000))).removed).toBe(0);
      const report = await driver.sweep(new Date(Date.now() + 60_000));
      expect(report.removed).toBeGreaterThanOrEqual(1);
      expect(await multipartUploads()).toBe(1); // the live upload's
      expect(await driver.uploadSize(live)).toBe(6 * MiB);
      expect((await readAll(await driver.read(sha256(kept)))).equals(kept)).toBe(true);
      expect((await keys("data/")).length).toBe(1); // the kept blob's bytes only
    });

    it("hands out presigned reads that honour Range and expire", async () => {
      const bytes = randomBytes(300_000);
      await driver.write(sha256(bytes), chunked(bytes));
      const url = await driver.presignRead(sha256(bytes));
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\//);
      const whole = await fetch(url!);
      expect(whole.status).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
      const part = await fetch(url!, { headers: { range: "bytes=1000-1999" } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(1000, 2000))).toBe(true);
      const tampered = url!.replace(/X-Amz-Signature=([0-9a-f])/, (_, c: string) => `X-Amz-Signature=${c === "0" ? "1" : "0"}`);
      expect((await fetch(tampered)).status).toBe(403);
      expect(await driver.presignRead(sha256(Buffer.from("absent")))).toBeUndefined();
    });

    it("presigns where the bytes are now, after another process deleted the blob and stored it again", async () => {
      // Replica A served the blob (and learnt where its bytes are); garbage collection on replica B
      // deleted it, and a later push stored the same digest again: new bytes, a new data object.
      const bytes = randomBytes(100_000);
      const digest = sha256(bytes);
      await driver.write(digest, chunked(bytes));
      expect((await fetch((await driver.presignRead(digest))!)).status).toBe(200);
      const other = new S3Driver(config, OPTIONS);
      await other.delete(digest);
      await other.write(digest, chunked(bytes));
      const url = await driver.presignRead(digest);
      const answer = await fetch(url!);
      expect(answer.status).toBe(200);
      expect(Buffer.from(await answer.arrayBuffer()).equals(bytes)).toBe(true);
      // Deleted by the other process and not stored again: nothing to presign.
      await other.delete(digest);
      expect(await driver.presignRead(digest)).toBeUndefined();
      // A streamed read learns the new place by itself (it retries once where the bytes were gone).
      await other.write(digest, chunked(bytes));
      expect((await readAll(await driver.read(digest))).equals(bytes)).toBe(true);
    });

    it("answers UNAVAILABLE when the store is down or refuses the credentials, and start-up names the settings", async () => {
      const down = new S3Driver({ ...config, endpoint: "http://127.0.0.1:9" }, OPTIONS);
      await expectDomainError(down.stat(sha256(Buffer.from("x"))), "unavailable");
      await expectDomainError(down.startUpload(randomUUID()), "unavailable");
      const wrongKey = new S3Driver({ ...config, credentials: { accessKeyId: "test:tester", secretAccessKey: "wrong" } }, OPTIONS);
      const refused = await expectDomainError(wrongKey.read(sha256(Buffer.from("x"))), "unavailable");
      expect(refused.message).not.toContain("wrong");
      await expect(
        createContentDriver({
          dataDir: "/nonexistent",
          content: {
            kind: "s3",
            s3: { ...config, bucket: "no-such-bucket-here" },
            partSize: 5 * MiB,
            partConcurrency: 2,
            redirect: false,
            redirectSeconds: 60,
          },
        }),
      ).rejects.toThrow(/S3_BUCKET/);
    });

    it("keeps keys under its prefix only", async () => {
      const bytes = randomBytes(10);
      await driver.write(sha256(bytes), chunked(bytes));
      const id = randomUUID();
      await driver.startUpload(id);
      const all = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: config.prefix }));
      expect((all.Contents ?? []).every((o) => o.Key!.startsWith(config.prefix))).toBe(true);
      const index = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: `${config.prefix}blobs/sha256/${sha256(bytes).slice(7, 9)}/${sha256(bytes).slice(7)}` }),
      );
      expect(index.ContentLength).toBe(0);
      const uploads = await collect(driver.listUploads());
      expect(uploads.map((u) => u.uploadId)).toEqual([id]);
      expect(uploads[0]!.modifiedTime).toBeInstanceOf(Date);
    });
  });
});
