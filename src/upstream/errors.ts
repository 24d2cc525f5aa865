// How an upstream's failures become domain errors: one place that turns network errors, HTTP
// statuses and OCI error bodies into kinds with messages that name the upstream host and what
// was asked for. Messages never carry credentials or tokens (scrub() is the last fence).
import { DomainError, type ErrorKind, type ErrorReason } from "../domain/errors.js";

/** A DomainError from an upstream: the host it came from and, when it answered, the HTTP status. */
export class UpstreamError extends DomainError {
  constructor(
    kind: ErrorKind,
    message: string,
    readonly upstream: string,
    options: { status?: number; reason?: ErrorReason; cause?: unknown; retryAfterMs?: number; retryable?: boolean } = {},
  ) {
    super(kind, message, { cause: options.cause, reason: options.reason });
    this.name = "UpstreamError";
    this.status = options.status;
    this.retryable = options.retryable ?? false;
    this.retryAfterMs = options.retryAfterMs;
  }
  readonly status?: number;
  /** Worth another try (connection trouble, 429, 502–504). */
  readonly retryable: boolean;
  readonly retryAfterMs?: number;
}

/** What a request was for, to make messages that say it: "manifest team/app:1.0", "the catalog". */
export interface Subject {
  /** e.g. `manifest team/app:1.0` */
  what: string;
  repository?: string;
  /** Reason for a plain 404 (HEAD responses carry no OCI error code). */
  notFound?: ErrorReason;
}

const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
]);
const TLS_CODE = /^(CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|ERR_TLS_|ERR_SSL_)/;

function errorCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 4; e = e.cause as typeof e, depth++) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

/** A thrown network-level error (undici or node) as a domain error naming `host`. */
export function networkError(
  err: unknown,
  host: string,
  subject: Subject,
  timeouts: { connectMs: number; headersMs: number; bodyIdleMs: number },
): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = errorCode(err) ?? "";
  const detail = err instanceof Error ? err.message : String(err);
  const opts = { cause: err, retryable: RETRYABLE_CODES.has(code) };
  switch (code) {
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "EAI_FAIL":
    case "EAI_AGAIN":
      return new UpstreamError("unavailable", `upstream ${host}: the host name does not resolve (DNS ${code})`, host, opts);
    case "ECONNREFUSED":
      return new UpstreamError("unavailable", `upstream ${host} refused the connection (nothing listens there, or it is down)`, host, opts);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new UpstreamError("unavailable", `upstream ${host} is unreachable (${code})`, host, opts);
    case "UND_ERR_CONNECT_TIMEOUT":
      return new UpstreamError("deadline-exceeded", `upstream ${host} did not accept a connection within ${timeouts.connectMs} ms`, host, opts);
    case "UND_ERR_HEADERS_TIMEOUT":
      return new UpstreamError("deadline-exceeded", `upstream ${host} did not answer for ${subject.what} within ${timeouts.headersMs} ms`, host, opts);
    case "UND_ERR_BODY_TIMEOUT":
      return new UpstreamError("deadline-exceeded", `upstream ${host} stopped sending ${subject.what} for ${timeouts.bodyIdleMs} ms`, host, opts);
    case "UND_ERR_RES_CONTENT_LENGTH_MISMATCH":
      return new UpstreamError("data-loss", `upstream ${host} sent ${subject.what} with a length other than it announced`, host, {
        ...opts,
        reason: "size-mismatch",
      });
    case "ECONNRESET":
    case "EPIPE":
    case "UND_ERR_SOCKET":
    case "UND_ERR_CLOSED":
      return new UpstreamError("unavailable", `upstream ${host} closed the connection during ${subject.what} (${code})`, host, opts);
  }
  if (TLS_CODE.test(code)) {
    return new UpstreamError(
      "unavailable",
      `upstream ${host}: TLS verification failed (${code}); trust its certificate authority, or mark the registry insecure to skip verification`,
      host,
      opts,
    );
  }
  return new UpstreamError("unavailable", `request to upstream ${host} for ${subject.what} failed: ${code ? `${code}: ` : ""}${detail}`, host, opts);
}

interface OciErrorBody {
  code: string;
  message: string;
}

/** The `errors` of an OCI error body, or [] when the body is something else. */
function parseOciErrors(body: Buffer | undefined): OciErrorBody[] {
  if (!body || body.length === 0) return [];
  try {
    const json = JSON.parse(body.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(json.errors)) return [];
    return json.errors
      .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
      .map((e) => ({ code: typeof e.code === "string" ? e.code : "", message: typeof e.message === "string" ? e.message : "" }));
  } catch {
    return [];
  }
}

const NOT_FOUND_CODES: Record<string, ErrorReason> = {
  NAME_UNKNOWN: "name-unknown",
  MANIFEST_UNKNOWN: "manifest-unknown",
  BLOB_UNKNOWN: "blob-unknown",
};

/** Parses Retry-After (seconds or an HTTP date) into milliseconds from now. */
function retryAfterMs(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * A non-success response as a domain error. `authSent` says whether credentials (or a token
 * obtained with them) went with the request; `challengeError` is the `error` param of a Bearer
 * challenge, if any.
 */
export function statusError(
  status: number,
  host: string,
  subject: Subject,
  ctx: { body?: Buffer; hasCredential: boolean; challengeError?: string; retryAfter?: string | string[] },
): UpstreamError {
  const errors = parseOciErrors(ctx.body);
  const said = errors.length
    ? `: ${errors
        .map((e) => [e.code, e.message].filter(Boolean).join(" "))
        .join("; ")
        .slice(0, 300)}`
    : "";
  const base = { status };
  if (status === 401) {
    if (ctx.challengeError === "insufficient_scope" && ctx.hasCredential) {
      return new UpstreamError("permission-denied", `upstream ${host} accepted the credential but it grants no access to ${subject.what}${said}`, host, base);
    }
    return ctx.hasCredential
      ? new UpstreamError("unauthenticated", `upstream ${host} rejected the registry's credential for ${subject.what}${said}`, host, base)
      : new UpstreamError("unauthenticated", `upstream ${host} requires credentials for ${subject.what}; set the registry's credential${said}`, host, base);
  }
  if (status === 403) {
    return new UpstreamError("permission-denied", `upstream ${host} denied access to ${subject.what}${said}`, host, base);
  }
  if (status === 404) {
    const known = errors.map((e) => NOT_FOUND_CODES[e.code]).find((r) => r !== undefined);
    const reason = known ?? subject.notFound;
    const what = reason === "name-unknown" && subject.repository ? `repository ${subject.repository}` : subject.what;
    return new UpstreamError("not-found", `${what} not found on upstream ${host}${said}`, host, { ...base, reason });
  }
  if (status === 416) {
    return new UpstreamError("invalid-argument", `upstream ${host} cannot serve the requested range of ${subject.what}${said}`, host, {
      ...base,
      reason: "range-mismatch",
    });
  }
  if (status === 429) {
    return new UpstreamError("resource-exhausted", `upstream ${host} is rate-limiting requests (429) for ${subject.what}${said}`, host, {
      ...base,
      retryable: true,
      retryAfterMs: retryAfterMs(ctx.retryAfter),
    });
  }
  if (status === 502 || status === 503 || status === 504) {
    return new UpstreamError("unavailable", `upstream ${host} answered ${status} for ${subject.what}${said}`, host, {
      ...base,
      retryable: true,
      retryAfterMs: retryAfterMs(ctx.retryAfter),
    });
  }
  if (status === 405 || errors.some((e) => e.code === "UNSUPPORTED")) {
    return new UpstreamError("unimplemented", `upstream ${host} does not support ${subject.what} (${status})${said}`, host, base);
  }
  if (status === 400) {
    return new UpstreamError("invalid-argument", `upstream ${host} refused the request for ${subject.what} as invalid (400)${said}`, host, base);
  }
  if (status >= 500) return new UpstreamError("unavailable", `upstream ${host} failed with ${status} for ${subject.what}${said}`, host, base);
  return new UpstreamError("unknown", `upstream ${host} answered ${status} for ${subject.what}, which the registry API does not define${said}`, host, base);
}

/** An upstream answer we cannot make sense of (malformed JSON, wrong shape, missing headers). */
export function malformed(host: string, what: string, why: string): UpstreamError {
  return new UpstreamError("unknown", `upstream ${host} sent a malformed ${what}: ${why.slice(0, 300)}`, host);
}

/** Replaces every occurrence of a secret in the error's message (and its causes') with [redacted]. */
export function scrub<E>(err: E, secrets: readonly string[]): E {
  const live = secrets.filter((s) => s.length >= 4);
  if (live.length === 0) return err;
  for (
    let e = err as { message?: unknown; cause?: unknown } | undefined, depth = 0;
    e && typeof e === "object" && depth < 5;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.message === "string") {
      let m = e.message;
      for (const s of live) m = m.split(s).join("[redacted]");
      if (m !== e.message) {
        try {
          e.message = m;
        } catch {
          // frozen error object: nothing we can do, and it did not come from us
        }
      }
    }
  }
  return err;
}
