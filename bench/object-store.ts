// The object store's own speed for a blob's bytes, with no registry in the way: one multipart
// upload of a file (the content store's part size and parts in flight) and one GET of an object,
// through the S3 client the service itself builds (src/content/s3-client.ts: keep-alive sockets,
// no added checksums). The floors of a push and of a pull on that store (bench/scale-out.ts).
// Answers are checked: every part's ETag against the MD5 of the bytes sent (computed once, before
// anything is timed), the object's size after the upload; a GET counts its bytes, or hashes them.
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { createS3Client } from "../src/content/s3-client.js";
import type { S3Target } from "../test/support/swift.js";

export interface ObjectStore {
  client: S3Client;
  bucket: string;
  close(): void;
}

/** A client for `bucket` on `target`, configured as the service's content store configures its own. */
export function openObjectStore(target: S3Target, bucket: string): ObjectStore {
  const client = createS3Client({
    endpoint: target.endpoint,
    region: target.region,
    bucket,
    prefix: "",
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    forcePathStyle: true,
  });
  return { client, bucket, close: () => client.destroy() };
}

export interface UploadPlan {
  path: string;
  size: number;
  partSize: number;
  partsInFlight: number;
  /** The MD5 (hex) of each part's bytes: what the store answers as the part's ETag. */
  partMd5: string[];
}

/** Reads the file once and hashes each part: the ETags a correct upload gets back (not timed). */
export async function planUpload(path: string, size: number, partSize: number, partsInFlight: number): Promise<UploadPlan> {
  const partMd5: string[] = [];
  const file = await open(path, "r");
  try {
    for (let at = 0; at < size; at += partSize)
      partMd5.push(
        createHash("md5")
          .update(await readPart(file, at, Math.min(partSize, size - at)))
          .digest("hex"),
      );
  } finally {
    await file.close();
  }
  return { path, size, partSize, partsInFlight, partMd5 };
}

async function readPart(file: Awaited<ReturnType<typeof open>>, at: number, length: number): Promise<Buffer> {
  const bytes = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await file.read(bytes, got, length - got, at + got);
    if (bytesRead === 0) throw new Error(`the file ended at ${at + got}, expected ${at + length} bytes`);
    got += bytesRead;
  }
  return bytes;
}

const unquote = (etag: string | undefined) => (etag ?? "").replace(/^"|"$/g, "");

/**
 * One multipart upload of the plan's file to `key`: parts read from the file and sent
 * `partsInFlight` at a time, then completed. Seconds from the first request to the completion;
 * throws when a part's ETag or the object's size is wrong.
 */
export async function timeMultipartUpload(store: ObjectStore, key: string, plan: UploadPlan): Promise<{ seconds: number }> {
  const { client, bucket } = store;
  const file = await open(plan.path, "r");
  let uploadId: string | undefined;
  try {
    const t0 = performance.now();
    uploadId = (await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const etags: string[] = [];
    let next = 0;
    const sender = async () => {
      for (let n = next++; n < plan.partMd5.length; n = next++) {
        const at = n * plan.partSize;
        const body = await readPart(file, at, Math.min(plan.partSize, plan.size - at));
        const sent = await client.send(
          new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n + 1, Body: body, ContentLength: body.length }),
        );
        etags[n] = unquote(sent.ETag);
      }
    };
    await Promise.all(Array.from({ length: plan.partsInFlight }, sender));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((etag, n) => ({ PartNumber: n + 1, ETag: `"${etag}"` })) },
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    uploadId = undefined;
    const wrong = etags.findIndex((etag, n) => etag !== plan.partMd5[n]);
    if (wrong >= 0) throw new Error(`part ${wrong + 1}: ETag ${etags[wrong]}, expected the MD5 of the bytes sent, ${plan.partMd5[wrong]}`);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== plan.size) throw new Error(`the uploaded object holds ${head.ContentLength} bytes, expected ${plan.size}`);
    return { seconds };
  } finally {
    await file.close();
    if (uploadId) await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
  }
}

/**
 * One GET of `key`, the body read to its end: seconds and bytes; with `hash`, the sha256 of every
 * byte too (a check: hashing costs this process CPU, so timed runs leave it out).
 */
export async function timeGetObject(store: ObjectStore, key: string, hash = false): Promise<{ seconds: number; bytes: number; digest?: string }> {
  const sha = hash ? createHash("sha256") : undefined;
  const t0 = performance.now();
  const answer = await store.client.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
  let bytes = 0;
  for await (const chunk of answer.Body as Readable) {
    sha?.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, bytes, digest: sha && `sha256:${sha.digest("hex")}` };
}

export async function deleteObject(store: ObjectStore, key: string): Promise<void> {
  await store.client.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
}
