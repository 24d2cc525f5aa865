// Argument checks and domain errors shared by every driver, so they all refuse the same things
// with the same kinds and reasons.
import * as errors from "../domain/errors.js";
import { checkUuid } from "../domain/names.js";
import type { ByteRange } from "./driver.js";

/** The upload id in canonical (lower-case) form; DomainError invalid-argument when not a UUID. */
export function checkedUploadId(uploadId: string): string {
  const problem = checkUuid(uploadId);
  if (problem !== undefined) throw errors.invalidArgument(`upload id ${problem}`);
  return uploadId.toLowerCase();
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

export function checkOffset(offset: number): void {
  if (!isCount(offset)) throw errors.invalidArgument(`offset ${offset} is not a non-negative integer`);
}

export function checkLimit(name: string, value: number | undefined): void {
  if (value !== undefined && !isCount(value)) {
    throw errors.invalidArgument(`${name} ${value} is not a non-negative integer`);
  }
}

/** Refuses a range that does not lie inside a blob of `size` bytes (HTTP would answer 416). */
export function checkRange(range: ByteRange, size: number, digest: string): void {
  const { start, end } = range;
  if (!isCount(start) || !isCount(end) || start > end || end >= size) {
    throw errors.rangeMismatch(`range ${start}-${end} is not satisfiable for blob ${digest} of ${size} bytes`);
  }
}

export const blobUnknown = (digest: string) => errors.blobUnknown(`blob ${digest} is not in the content store`);

export const uploadUnknown = (uploadId: string) => errors.uploadUnknown(`upload ${uploadId} does not exist`);

export const uploadExists = (uploadId: string) => errors.alreadyExists(`upload ${uploadId} already exists`);

export const digestMismatch = (expected: string, actual: string) => errors.digestMismatch(`content digest is ${actual}, not ${expected}`);

export const sizeMismatch = (expected: number, actual: number | string) => errors.sizeMismatch(`content size is ${actual} bytes, not the expected ${expected}`);

export const offsetMismatch = (uploadId: string, offset: number, size: number) =>
  errors.rangeMismatch(`upload ${uploadId} holds ${size} bytes; cannot append at offset ${offset}`);

export const tooLarge = (maxBytes: number) => errors.tooLarge(`content exceeds the limit of ${maxBytes} bytes`);

/**
 * The store has no room for more bytes. `why` names the condition and the place the way an
 * operator knows it ("no space left on the device holding DATA_DIR/blobs"), never an absolute
 * path: that goes to the log only, in `logDetails`.
 */
export const storageFull = (why: string, logDetails: Record<string, unknown>, cause?: unknown) =>
  errors.storageFull(`the content store is full (${why}): free space or raise the quota, then retry the upload`, { logDetails, cause });

/** The store cannot hold a file this large at all (a file system's or process's file size limit): no retry helps. */
export const fileTooLarge = (where: string, logDetails: Record<string, unknown>, cause?: unknown) =>
  errors.tooLarge(`content is larger than the largest file that can be written under ${where} (a file size limit of the file system or the process)`, {
    logDetails,
    cause,
  });
