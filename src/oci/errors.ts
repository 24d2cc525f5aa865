// The OCI edge of the domain errors: one table from (kind, reason) to the spec's status and code,
// and the JSON error body (distribution-spec §Error Codes). Unexpected errors become UNKNOWN with
// only a request id; the details go to the log.
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

/** An error the /v2/ API answers as is, with extra headers when the spec asks for them (416 → Range). */
export class OciError extends Error {
  constructor(
    readonly status: number,
    readonly code: OciCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "OciError";
  }
}

type Row = [ErrorKind, ErrorReason | "*", number, OciCode];

// Most specific first: a (kind, reason) row wins over the kind's "*" row. Failures of an upstream
// (data-loss, unavailable, deadline-exceeded, unknown) are 5xx whatever their reason, so a corrupt
// upstream blob never reads as the client's DIGEST_INVALID; the one exception is the client's own
// upload body going silent (body-idle), which only the client's side can cause.
const TABLE: Row[] = [
  ["invalid-argument", "digest-mismatch", 400, "DIGEST_INVALID"],
  ["invalid-argument", "size-mismatch", 400, "SIZE_INVALID"],
  ["invalid-argument", "manifest-invalid", 400, "MANIFEST_INVALID"],
  ["invalid-argument", "tag-invalid", 400, "TAG_INVALID"],
  ["invalid-argument", "name-unknown", 400, "NAME_INVALID"],
  ["invalid-argument", "range-mismatch", 416, "BLOB_UPLOAD_INVALID"],
  ["invalid-argument", "*", 400, "UNSUPPORTED"],
  ["failed-precondition", "range-mismatch", 416, "BLOB_UPLOAD_INVALID"],
  ["failed-precondition", "manifest-blob-unknown", 400, "MANIFEST_BLOB_UNKNOWN"],
  ["failed-precondition", "unsupported", 405, "UNSUPPORTED"],
  // Not the client's mistake (4xx) nor a bug (500): this service cannot serve the repository until
  // its operator fixes a setting. 503 says "not now, not your fault" and names no upstream fault.
  ["failed-precondition", "misconfigured", 503, "UNAVAILABLE"],
  ["failed-precondition", "*", 400, "UNSUPPORTED"],
  ["not-found", "blob-unknown", 404, "BLOB_UNKNOWN"],
  ["not-found", "manifest-unknown", 404, "MANIFEST_UNKNOWN"],
  ["not-found", "upload-unknown", 404, "BLOB_UPLOAD_UNKNOWN"],
  ["not-found", "*", 404, "NAME_UNKNOWN"],
  ["already-exists", "*", 409, "UNSUPPORTED"],
  ["resource-exhausted", "too-large", 413, "SIZE_INVALID"],
  // The client stopped sending an upload's body; 408 also tells it the connection is closed.
  ["deadline-exceeded", "body-idle", 408, "BLOB_UPLOAD_INVALID"],
  // The server cannot store the representation (RFC 4918 §11.5). The spec's codes are for 4xx
  // answers; UNKNOWN is Distribution's code for a server-side failure, and clients that read
  // bodies of 5xx answers (go-containerregistry) retry it (see docs/design-notes.md).
  ["resource-exhausted", "storage-full", 507, "UNKNOWN"],
  ["resource-exhausted", "*", 429, "TOOMANYREQUESTS"],
  ["unimplemented", "*", 405, "UNSUPPORTED"],
  ["unauthenticated", "*", 401, "UNAUTHORIZED"],
  ["permission-denied", "*", 403, "DENIED"],
  // A collision with a concurrent change (deadlock, serialization): worth a retry, which 503 invites.
  ["aborted", "*", 503, "UNAVAILABLE"],
  ["unavailable", "*", 503, "UNAVAILABLE"],
  ["deadline-exceeded", "*", 504, "UNAVAILABLE"],
  ["data-loss", "*", 502, "UNKNOWN"],
  ["unknown", "*", 502, "UNKNOWN"],
];

function lookup(kind: ErrorKind, reason: ErrorReason | undefined): [number, OciCode] {
  const row = TABLE.find(([k, r]) => k === kind && r === reason) ?? TABLE.find(([k, r]) => k === kind && r === "*");
  return row ? [row[2], row[3]] : [500, "UNKNOWN"];
}

/**
 * The answer for `err`; `unexpected` errors are logged in full by the caller, and `logDetails`
 * (what an operator must act on: a full disk's path) once, at warn.
 */
export function toOciError(err: unknown, requestId: string): { error: OciError; unexpected: boolean; logDetails?: Record<string, unknown> } {
  if (err instanceof OciError) return { error: err, unexpected: false };
  const known = translate(err);
  if (isDomainError(known)) {
    const [status, code] = lookup(known.kind, known.reason);
    return { error: new OciError(status, code, known.message), unexpected: status === 500, logDetails: known.logDetails };
  }
  return { error: new OciError(500, "UNKNOWN", `internal error (request id ${requestId})`), unexpected: true };
}

export function errorBody(error: OciError): string {
  return JSON.stringify({ errors: [{ code: error.code, message: error.message }] });
}

export const nameInvalid = (message: string) => new OciError(400, "NAME_INVALID", message);
export const nameUnknown = (name: string) => new OciError(404, "NAME_UNKNOWN", `repository name not known to registry: ${name}`);
export const manifestUnknown = (reference: string) => new OciError(404, "MANIFEST_UNKNOWN", `manifest unknown: ${reference}`);
export const blobUnknown = (digest: string) => new OciError(404, "BLOB_UNKNOWN", `blob unknown to registry: ${digest}`);
export const digestInvalid = (message: string) => new OciError(400, "DIGEST_INVALID", message);
export const sizeInvalid = (message: string) => new OciError(400, "SIZE_INVALID", message);
export const unsupported = (message: string) => new OciError(405, "UNSUPPORTED", message);
export const badRequest = (message: string) => new OciError(400, "UNSUPPORTED", message);
export const rangeNotSatisfiable = (range: string | undefined, size: number) =>
  new OciError(416, "UNSUPPORTED", `range ${range} is not satisfiable for a blob of ${size} bytes`, { "content-range": `bytes */${size}` });
export const readOnly = (registry: string) =>
  unsupported(`registry "${registry}" is REMOTE: it is a read-only pull-through cache of its upstream here; push to a HOSTED registry`);
