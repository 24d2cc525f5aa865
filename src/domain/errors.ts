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
  // A range of bytes that does not lie inside the blob (HTTP 416): see RangeNotSatisfiable.
  | "out-of-range"
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
  // A name, digest or tag outside its grammar (src/domain/names.ts, digest.ts, reference.ts).
  | "name-invalid"
  | "digest-invalid"
  | "tag-invalid"
  | "too-large"
  | "unsupported"
  // The service's own settings stop the request (a stored credential SECRET_KEY cannot open):
  // the operator must act, not the client.
  | "misconfigured"
  | "body-idle"
  | "storage-full"
  // A tag an immutability rule protects (src/domain/immutability.ts): /v2/ answers DENIED.
  | "immutable-tag";

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

export function isDomainError(err: unknown, kind?: ErrorKind): err is DomainError {
  return err instanceof DomainError && (kind === undefined || err.kind === kind);
}

/** The storage (content store or database disk) has no room left. */
export function isStorageFull(err: unknown): err is DomainError {
  return isDomainError(err, "resource-exhausted") && err.reason === "storage-full";
}

/**
 * A write an immutability rule refuses (moving, renaming or deleting a protected tag, or
 * deleting what holds one). It says which attempt it refused and on what, so each edge can put
 * the refusal in the audit log under the write's own action (src/domain/immutability.ts).
 */
export class ImmutableTagRefused extends DomainError {
  constructor(
    message: string,
    readonly rule: { id: string; tagPattern: string },
    /** The audit action of the refused write (`tag.move`, `tag.delete`, `repository.delete`…). */
    readonly attempt: string,
    /** What the write was about, as audit events name it. */
    readonly resource: { type: string; id: string; name: string },
  ) {
    super("failed-precondition", message, { reason: "immutable-tag" });
    this.name = "ImmutableTagRefused";
  }
}

/** Bytes asked for that a blob of `size` bytes does not have; edges answer 416 with the size, or OUT_OF_RANGE. */
export class RangeNotSatisfiable extends DomainError {
  constructor(
    message: string,
    readonly size: number,
  ) {
    super("out-of-range", message);
    this.name = "RangeNotSatisfiable";
  }
}

/**
 * An upload another request is writing now (it holds the upload's writer lease): the same request
 * may succeed once that one ends, at the latest when its claim runs out in `retryAfterMs` unless
 * it renews it; edges that can say so do (`/v2/`: Retry-After). It is a range mismatch otherwise.
 */
export class UploadBusy extends DomainError {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super("failed-precondition", message, { reason: "range-mismatch" });
    this.name = "UploadBusy";
  }
}

// One helper per error the service raises, so a kind and its reason are chosen once, here.
// Messages are whole sentences for a user; they never carry a secret or a machine's path.
type Options = { cause?: unknown; logDetails?: Record<string, unknown> };

export const invalidArgument = (message: string) => new DomainError("invalid-argument", message);
export const notFound = (message: string) => new DomainError("not-found", message);
export const alreadyExists = (message: string) => new DomainError("already-exists", message);
export const failedPrecondition = (message: string) => new DomainError("failed-precondition", message);
export const aborted = (message: string, options?: Options) => new DomainError("aborted", message, options);
export const unavailable = (message: string, cause?: unknown, logDetails?: Record<string, unknown>) =>
  new DomainError("unavailable", message, { cause, logDetails });
export const databaseUnavailable = (cause?: unknown) => unavailable("the database is not available; retry later", cause);

// Names and the things they name.
export const nameInvalid = (message: string) => new DomainError("invalid-argument", message, { reason: "name-invalid" });
export const nameUnknown = (message: string) => new DomainError("not-found", message, { reason: "name-unknown" });
export const digestInvalid = (message: string) => new DomainError("invalid-argument", message, { reason: "digest-invalid" });
export const tagInvalid = (message: string) => new DomainError("invalid-argument", message, { reason: "tag-invalid" });
export const manifestUnknown = (message: string) => new DomainError("not-found", message, { reason: "manifest-unknown" });
export const blobUnknown = (message: string) => new DomainError("not-found", message, { reason: "blob-unknown" });
export const uploadUnknown = (message: string) => new DomainError("not-found", message, { reason: "upload-unknown" });

// Content a client sent.
export const manifestInvalid = (message: string) => new DomainError("invalid-argument", message, { reason: "manifest-invalid" });
/** A manifest larger than the service accepts (MANIFEST_MAX_BYTES). */
export const manifestTooLarge = (message: string) => new DomainError("resource-exhausted", message, { reason: "manifest-invalid" });
export const manifestBlobUnknown = (message: string) => new DomainError("failed-precondition", message, { reason: "manifest-blob-unknown" });
export const digestMismatch = (message: string) => new DomainError("invalid-argument", message, { reason: "digest-mismatch" });
export const sizeMismatch = (message: string) => new DomainError("invalid-argument", message, { reason: "size-mismatch" });
export const tooLarge = (message: string, options?: Options) => new DomainError("resource-exhausted", message, { reason: "too-large", ...options });
/** An upload's offset is not where the request says (a chunk out of order, another writer). */
export const rangeMismatch = (message: string) => new DomainError("failed-precondition", message, { reason: "range-mismatch" });
/** The client's request body stopped arriving. */
export const bodyIdle = (message: string) => new DomainError("deadline-exceeded", message, { reason: "body-idle" });

// What this service will not do here.
export const unsupported = (message: string) => new DomainError("failed-precondition", message, { reason: "unsupported" });
export const misconfigured = (message: string, cause?: unknown) => new DomainError("failed-precondition", message, { reason: "misconfigured", cause });
export const storageFull = (message: string, options: Options) => new DomainError("resource-exhausted", message, { reason: "storage-full", ...options });

// Bytes that are not what they claim to be: damaged in our store, or sent so by an upstream.
export const dataLoss = (message: string, reason?: "digest-mismatch" | "size-mismatch") => new DomainError("data-loss", message, { reason });
/** Another system (an upstream) said something that cannot be made sense of. */
export const unknownFault = (message: string) => new DomainError("unknown", message);
