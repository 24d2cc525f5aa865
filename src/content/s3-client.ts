// The S3 client the content store uses, and what its failures mean to the rest of the service.
// Settings come from src/config.ts (S3_*); the secret key is never logged or put in an error.
import { S3Client, S3ServiceException } from "@aws-sdk/client-s3";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { DomainError } from "../domain/errors.js";
import * as errors from "../domain/errors.js";
import { storageFull } from "./checks.js";

export interface S3Settings {
  /** S3_ENDPOINT: an S3-compatible server's URL; absent means AWS itself (by region). */
  endpoint?: string;
  /** S3_REGION. */
  region: string;
  /** S3_BUCKET: must exist; the service never creates or deletes buckets. */
  bucket: string;
  /** S3_PREFIX: every key starts with it ("" or "some/path/"), so one bucket can hold several stores. */
  prefix: string;
  /** S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY; absent means the SDK's default chain (AWS_* variables, instance roles…). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** S3_FORCE_PATH_STYLE: bucket in the path, not the host name (most S3-compatible servers want it). */
  forcePathStyle: boolean;
}

/** Sockets kept open to the object store: parts of several uploads and reads go out at once. */
const MAX_SOCKETS = 64;

export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    credentials: settings.credentials,
    forcePathStyle: settings.forcePathStyle,
    // S3-compatible servers reject the CRC32 checksums the SDK adds by default since 2025; the
    // store verifies every blob's digest itself.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 3,
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
      connectionTimeout: 10_000,
      // A read that stalls this long is given up (bodies are streamed, so this is idle time, not total).
      socketTimeout: 120_000,
    },
  });
}

/** The S3 error's name ("NoSuchKey", "NotFound", …) and HTTP status, when it is one. */
function s3Status(err: unknown): { name: string; status?: number } | undefined {
  if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
  return undefined;
}

/** A missing key (GET: NoSuchKey; HEAD has no body: NotFound with 404). */
export function isMissingKey(err: unknown): boolean {
  const s3 = s3Status(err);
  return s3 !== undefined && (s3.name === "NoSuchKey" || s3.name === "NotFound" || s3.status === 404);
}

export function isNoSuchUpload(err: unknown): boolean {
  return s3Status(err)?.name === "NoSuchUpload";
}

/**
 * What a failed call to the object store becomes: a full store → resource-exhausted
 * (storage-full); anything else the service cannot fix by itself (the store down, refusing the
 * credentials, a missing bucket) → unavailable, so clients hear 503 and retry, never a 500.
 * The bucket and the call go to the log, never the credentials.
 */
export function storeFailure(bucket: string, operation: string): (err: unknown) => never {
  return (err) => {
    if (err instanceof DomainError) throw err;
    const s3 = s3Status(err);
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const logDetails = { bucket, operation, s3Error: s3?.name, status: s3?.status, code };
    if (s3 && (s3.status === 507 || s3.name === "QuotaExceeded" || s3.name === "InsufficientStorage")) {
      throw storageFull("the object store has no room left", logDetails, err);
    }
    const why = s3 ? `${s3.name}${s3.status ? ` (HTTP ${s3.status})` : ""}` : (code ?? (err as Error | undefined)?.name ?? "no answer");
    throw errors.unavailable(`the object store failed (${operation}: ${why}); retry later`, err, logDetails);
  };
}
