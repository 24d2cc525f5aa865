// Domain errors: what went wrong in terms of the catalog, not of a protocol. They are
// defined once here and translated at each edge (Connect codes in src/api, OCI error JSON
// in src/oci, HTTP statuses in REST), each edge with one table.

export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "aborted"
  | "resource-exhausted"
  | "unavailable"
  | "unimplemented"
  | "unauthenticated"
  | "permission-denied"
  | "deadline-exceeded"
  | "data-loss"
  | "unknown";

/**
 * A finer, machine-readable cause inside a kind, for edges that distinguish more than the kind
 * does (the OCI API has DIGEST_INVALID, SIZE_INVALID, BLOB_UPLOAD_INVALID, RANGE…).
 */
export type ErrorReason =
  | "digest-mismatch"
  | "size-mismatch"
  | "range-mismatch"
  | "blob-unknown"
  | "manifest-unknown"
  | "manifest-invalid"
  | "manifest-blob-unknown"
  | "upload-unknown"
  | "name-unknown"
  | "tag-invalid"
  | "too-large"
  | "unsupported"
  // The service's own settings stop the request (a stored credential SECRET_KEY cannot open):
  // the operator must act, not the client.
  | "misconfigured"
  | "body-idle"
  | "storage-full";

export class DomainError extends Error {
  readonly reason?: ErrorReason;
  /**
   * What an operator needs to act on the error (a file path, the database's own words), for the
   * log only: never part of a response. An edge that answers with such an error logs it once.
   */
  readonly logDetails?: Record<string, unknown>;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown; reason?: ErrorReason; logDetails?: Record<string, unknown> },
  ) {
    super(message, options);
    this.name = "DomainError";
    this.reason = options?.reason;
    this.logDetails = options?.logDetails;
  }
}

export const invalidArgument = (message: string) => new DomainError("invalid-argument", message);
export const notFound = (message: string) => new DomainError("not-found", message);
export const alreadyExists = (message: string) => new DomainError("already-exists", message);
export const failedPrecondition = (message: string) => new DomainError("failed-precondition", message);
export const aborted = (message: string) => new DomainError("aborted", message);
export const unavailable = (message: string, cause?: unknown) => new DomainError("unavailable", message, { cause });
export const databaseUnavailable = (cause?: unknown) => unavailable("the database is not available; retry later", cause);

export function isDomainError(err: unknown, kind?: ErrorKind): err is DomainError {
  return err instanceof DomainError && (kind === undefined || err.kind === kind);
}

/** The storage (content store or database disk) has no room left. */
export function isStorageFull(err: unknown): err is DomainError {
  return isDomainError(err, "resource-exhausted") && err.reason === "storage-full";
}
