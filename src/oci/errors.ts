// The OCI edge of the domain errors: each error code of the spec registered once with its HTTP
// status, one table from (kind, reason) to a code, and the JSON error body (distribution-spec
// §Error Codes). Handlers throw domain errors (src/domain/errors.ts) and never pick a status;
// unexpected errors become UNKNOWN with only a request id, the details go to the log.
import type { ErrorKind, ErrorReason } from "../domain/errors.js";
import { isDomainError, RangeNotSatisfiable, UploadBusy, type DomainError } from "../domain/errors.js";
import { translate } from "../store/pg-errors.js";

/** Every code this API answers with, and the status that goes with it. */
const CODES = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
  UNKNOWN: 500,
} as const;

export type OciCode = keyof typeof CODES;

/** An error the /v2/ API answers as is, with extra headers when the spec asks for them (416 → Range). */
export class OciError extends Error {
  readonly status: number;

  constructor(
    readonly code: OciCode,
    message: string,
    readonly headers: Record<string, string> = {},
    status?: number,
  ) {
    super(message);
    this.name = "OciError";
    this.status = status ?? CODES[code];
  }
}

/** A row: the code, and a status only where this case must differ from the code's own (said why). */
type Row = [ErrorKind, ErrorReason | "*", OciCode, number?];

// Most specific first: a (kind, reason) row wins over the kind's "*" row. Failures of an upstream
// (data-loss, unavailable, deadline-exceeded, unknown) are 5xx whatever their reason, so a corrupt
// upstream blob never reads as the client's DIGEST_INVALID; the one exception is the client's own
// upload body going silent (body-idle), which only the client's side can cause.
const TABLE: Row[] = [
  ["invalid-argument", "digest-mismatch", "DIGEST_INVALID"],
  ["invalid-argument", "digest-invalid", "DIGEST_INVALID"],
  ["invalid-argument", "size-mismatch", "SIZE_INVALID"],
  ["invalid-argument", "manifest-invalid", "MANIFEST_INVALID"],
  ["invalid-argument", "tag-invalid", "TAG_INVALID"],
  ["invalid-argument", "name-invalid", "NAME_INVALID"],
  // An upload chunk that does not start at the session's offset: the spec's 416.
  ["invalid-argument", "range-mismatch", "BLOB_UPLOAD_INVALID", 416],
  // A malformed request the spec has no code for.
  ["invalid-argument", "*", "UNSUPPORTED", 400],
  ["failed-precondition", "range-mismatch", "BLOB_UPLOAD_INVALID", 416],
  ["failed-precondition", "manifest-blob-unknown", "MANIFEST_BLOB_UNKNOWN"],
  ["failed-precondition", "unsupported", "UNSUPPORTED"],
  // A tag an immutability rule protects: the spec's DENIED ("the access controller denied access
  // for the operation on a resource"), with the rule named in the message.
  ["failed-precondition", "immutable-tag", "DENIED"],
  // Not the client's mistake (4xx) nor a bug (500): this service cannot serve the repository until
  // its operator fixes a setting. 503 says "not now, not your fault" and names no upstream fault.
  ["failed-precondition", "misconfigured", "UNAVAILABLE"],
  ["failed-precondition", "*", "UNSUPPORTED", 400],
  ["not-found", "blob-unknown", "BLOB_UNKNOWN"],
  ["not-found", "manifest-unknown", "MANIFEST_UNKNOWN"],
  ["not-found", "upload-unknown", "BLOB_UPLOAD_UNKNOWN"],
  ["not-found", "*", "NAME_UNKNOWN"],
  ["already-exists", "*", "UNSUPPORTED", 409],
  // Bytes the blob does not have (RFC 9110 §15.5.17); the header with the size is added below.
  ["out-of-range", "*", "UNSUPPORTED", 416],
  ["resource-exhausted", "too-large", "SIZE_INVALID", 413],
  ["resource-exhausted", "manifest-invalid", "MANIFEST_INVALID", 413],
  // The client stopped sending an upload's body; 408 also tells it the connection is closed.
  ["deadline-exceeded", "body-idle", "BLOB_UPLOAD_INVALID", 408],
  // The server cannot store the representation (RFC 4918 §11.5). The spec's codes are for 4xx
  // answers; UNKNOWN is Distribution's code for a server-side failure, and clients that read
  // bodies of 5xx answers (go-containerregistry) retry it (see docs/design-notes.md).
  ["resource-exhausted", "storage-full", "UNKNOWN", 507],
  ["resource-exhausted", "*", "TOOMANYREQUESTS"],
  ["unimplemented", "*", "UNSUPPORTED"],
  ["unauthenticated", "*", "UNAUTHORIZED"],
  ["permission-denied", "*", "DENIED"],
  // A collision with a concurrent change (deadlock, serialization): worth a retry, which 503 invites.
  ["aborted", "*", "UNAVAILABLE"],
  ["unavailable", "*", "UNAVAILABLE"],
  // An upstream too slow, or bytes it sent wrong: the gateway's failure (502, 504), not ours.
  ["deadline-exceeded", "*", "UNAVAILABLE", 504],
  ["data-loss", "*", "UNKNOWN", 502],
  ["unknown", "*", "UNKNOWN", 502],
];

function lookup(kind: ErrorKind, reason: ErrorReason | undefined): Row | undefined {
  return TABLE.find(([k, r]) => k === kind && r === reason) ?? TABLE.find(([k, r]) => k === kind && r === "*");
}

/** The answer for a domain error, with `headers` added (an upload's Location and Range). */
export function ociErrorOf(err: DomainError, headers: Record<string, string> = {}): OciError {
  const row = lookup(err.kind, err.reason);
  if (!row) return new OciError("UNKNOWN", err.message, headers);
  const extra: Record<string, string> = err instanceof RangeNotSatisfiable ? { "content-range": `bytes */${err.size}` } : {};
  // When another writer's claim on an upload runs out (it may be renewed: a hint, as HTTP means it).
  if (err instanceof UploadBusy) extra["retry-after"] = String(Math.ceil(err.retryAfterMs / 1000));
  return new OciError(row[2], err.message, { ...extra, ...headers }, row[3]);
}

/**
 * The answer for `err`; `unexpected` errors are logged in full by the caller, and `logDetails`
 * (what an operator must act on: a full disk's path) once, at warn.
 */
export function toOciError(err: unknown, requestId: string): { error: OciError; unexpected: boolean; logDetails?: Record<string, unknown> } {
  if (err instanceof OciError) return { error: err, unexpected: false };
  const known = translate(err);
  if (isDomainError(known)) {
    const error = ociErrorOf(known);
    return { error, unexpected: error.status === 500, logDetails: known.logDetails };
  }
  return { error: new OciError("UNKNOWN", `internal error (request id ${requestId})`), unexpected: true };
}

export function errorBody(error: OciError): string {
  return JSON.stringify({ errors: [{ code: error.code, message: error.message }] });
}
