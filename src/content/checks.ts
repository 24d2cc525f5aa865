// Argument checks and domain errors shared by every driver, so they all refuse the same things
// with the same kinds and reasons.
import { DomainError } from "../domain/errors.js";
import { checkUuid } from "../domain/names.js";
import type { ByteRange } from "./driver.js";

/** The upload id in canonical (lower-case) form; DomainError invalid-argument when not a UUID. */
export function checkedUploadId(uploadId: string): string {
  const problem = checkUuid(uploadId);
  if (problem !== undefined) throw new DomainError("invalid-argument", `upload id ${problem}`);
  return uploadId.toLowerCase();
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

export function checkOffset(offset: number): void {
  if (!isCount(offset)) throw new DomainError("invalid-argument", `offset ${offset} is not a non-negative integer`);
}

export function checkLimit(name: string, value: number | undefined): void {
  if (value !== undefined && !isCount(value)) {
    throw new DomainError("invalid-argument", `${name} ${value} is not a non-negative integer`);
  }
}

/** Refuses a range that does not lie inside a blob of `size` bytes (HTTP would answer 416). */
export function checkRange(range: ByteRange, size: number, digest: string): void {
  const { start, end } = range;
  if (!isCount(start) || !isCount(end) || start > end || end >= size) {
    throw new DomainError("failed-precondition", `range ${start}-${end} is not satisfiable for blob ${digest} of ${size} bytes`, { reason: "range-mismatch" });
  }
}

export const blobUnknown = (digest: string) => new DomainError("not-found", `blob ${digest} is not in the content store`, { reason: "blob-unknown" });

export const uploadUnknown = (uploadId: string) => new DomainError("not-found", `upload ${uploadId} does not exist`, { reason: "upload-unknown" });

export const uploadExists = (uploadId: string) => new DomainError("already-exists", `upload ${uploadId} already exists`);

export const digestMismatch = (expected: string, actual: string) =>
  new DomainError("invalid-argument", `content digest is ${actual}, not ${expected}`, { reason: "digest-mismatch" });

export const sizeMismatch = (expected: number, actual: number | string) =>
  new DomainError("invalid-argument", `content size is ${actual} bytes, not the expected ${expected}`, {
    reason: "size-mismatch",
  });

export const offsetMismatch = (uploadId: string, offset: number, size: number) =>
  new DomainError("failed-precondition", `upload ${uploadId} holds ${size} bytes; cannot append at offset ${offset}`, {
    reason: "range-mismatch",
  });

export const tooLarge = (maxBytes: number) => new DomainError("resource-exhausted", `content exceeds the limit of ${maxBytes} bytes`, { reason: "too-large" });

/**
 * The store has no room for more bytes. `why` names the condition and the place the way an
 * operator knows it ("no space left on the device holding DATA_DIR/blobs"), never an absolute
 * path: that goes to the log only, in `logDetails`.
 */
export const storageFull = (why: string, logDetails: Record<string, unknown>, cause?: unknown) =>
  new DomainError("resource-exhausted", `the content store is full (${why}): free space or raise the quota, then retry the upload`, {
    reason: "storage-full",
    logDetails,
    cause,
  });

/** The store cannot hold a file this large at all (a file system's or process's file size limit): no retry helps. */
export const fileTooLarge = (where: string, logDetails: Record<string, unknown>, cause?: unknown) =>
  new DomainError(
    "resource-exhausted",
    `content is larger than the largest file that can be written under ${where} (a file size limit of the file system or the process)`,
    {
      reason: "too-large",
      logDetails,
      cause,
    },
  );
