// The OCI edge of the domain errors: one table to the spec's error codes and statuses, and the
// JSON error body (distribution-spec §Error Codes). Unexpected errors become UNKNOWN with only
// a request id; the details go to the log.
import type { ErrorKind, ErrorReason } from "../domain/errors.js";
import { isDomainError } from "../domain/errors.js";
import { translate } from "../store/pg-errors.js";

export type OciCode =
  | "BLOB_UNKNOWN"
  | "BLOB_UPLOAD_INVALID"
  | "BLOB_UPLOAD_UNKNOWN"
  | "DIGEST_INVALID"
  | "MANIFEST_BLOB_UNKNOWN"
  | "MANIFEST_INVALID"
  | "MANIFEST_UNKNOWN"
  | "NAME_INVALID"
  | "NAME_UNKNOWN"
  | "SIZE_INVALID"
  | "TAG_INVALID"
  | "UNAUTHORIZED"
  | "DENIED"
  | "UNSUPPORTED"
  | "TOOMANYREQUESTS"
  | "UNAVAILABLE"
  | "UNKNOWN";

/** An error the /v2/ API answers as is. */
export class OciError extends Error {
  constructor(
    readonly status: number,
    readonly code: OciCode,
    message: string,
    readonly detail?: unknown,
  ) {
    super(message);
    this.name = "OciError";
  }
}

const BY_REASON: Record<ErrorReason, [number, OciCode]> = {
  "digest-mismatch": [400, "DIGEST_INVALID"],
  "size-mismatch": [400, "SIZE_INVALID"],
  "range-mismatch": [416, "BLOB_UPLOAD_INVALID"],
  "blob-unknown": [404, "BLOB_UNKNOWN"],
  "manifest-unknown": [404, "MANIFEST_UNKNOWN"],
  "manifest-invalid": [400, "MANIFEST_INVALID"],
  "manifest-blob-unknown": [400, "MANIFEST_BLOB_UNKNOWN"],
  "upload-unknown": [404, "BLOB_UPLOAD_UNKNOWN"],
  "name-unknown": [404, "NAME_UNKNOWN"],
  "tag-invalid": [400, "TAG_INVALID"],
  "too-large": [413, "SIZE_INVALID"],
  unsupported: [405, "UNSUPPORTED"],
};

const BY_KIND: Record<ErrorKind, [number, OciCode]> = {
  "invalid-argument": [400, "UNSUPPORTED"],
  "not-found": [404, "NAME_UNKNOWN"],
  "already-exists": [409, "UNSUPPORTED"],
  "failed-precondition": [400, "UNSUPPORTED"],
  aborted: [409, "UNKNOWN"],
  "resource-exhausted": [413, "SIZE_INVALID"],
  unavailable: [503, "UNAVAILABLE"],
  unimplemented: [405, "UNSUPPORTED"],
  unauthenticated: [401, "UNAUTHORIZED"],
  "permission-denied": [403, "DENIED"],
  "deadline-exceeded": [504, "UNAVAILABLE"],
  "data-loss": [502, "UNKNOWN"],
  unknown: [502, "UNKNOWN"],
};

export function toOciError(err: unknown, requestId: string): { error: OciError; unexpected: boolean } {
  if (err instanceof OciError) return { error: err, unexpected: false };
  const known = translate(err);
  if (isDomainError(known)) {
    const [status, code] = known.reason ? BY_REASON[known.reason] : BY_KIND[known.kind];
    return { error: new OciError(status, code, known.message), unexpected: false };
  }
  return { error: new OciError(500, "UNKNOWN", `internal error (request id ${requestId})`), unexpected: true };
}

export function errorBody(error: OciError): string {
  return JSON.stringify({
    errors: [{ code: error.code, message: error.message, ...(error.detail === undefined ? {} : { detail: error.detail }) }],
  });
}

export const nameInvalid = (message: string) => new OciError(400, "NAME_INVALID", message);
export const nameUnknown = (name: string) => new OciError(404, "NAME_UNKNOWN", `repository name not known to registry: ${name}`);
export const manifestUnknown = (reference: string) => new OciError(404, "MANIFEST_UNKNOWN", `manifest unknown: ${reference}`);
export const blobUnknown = (digest: string) => new OciError(404, "BLOB_UNKNOWN", `blob unknown to registry: ${digest}`);
export const digestInvalid = (message: string) => new OciError(400, "DIGEST_INVALID", message);
export const unsupported = (message: string) => new OciError(405, "UNSUPPORTED", message);
