// The Connect edge of the domain errors: one table from kind to code. Anything that is not
// a domain error or a ConnectError is a bug: the client gets "internal" and the request id,
// the log gets the details.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorKind } from "../domain/errors.js";
import { isDomainError } from "../domain/errors.js";
import { translate } from "../store/pg-errors.js";

const CONNECT_CODES: Record<ErrorKind, Code> = {
  "invalid-argument": Code.InvalidArgument,
  "not-found": Code.NotFound,
  "already-exists": Code.AlreadyExists,
  "failed-precondition": Code.FailedPrecondition,
  aborted: Code.Aborted,
  "resource-exhausted": Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  unimplemented: Code.Unimplemented,
  unauthenticated: Code.Unauthenticated,
  "permission-denied": Code.PermissionDenied,
  "deadline-exceeded": Code.DeadlineExceeded,
  "out-of-range": Code.OutOfRange,
  "data-loss": Code.DataLoss,
  // Something another system (an upstream registry) said that we cannot make sense of.
  unknown: Code.Unknown,
};

/**
 * The error the client sees, whether it was unexpected (to be logged in full), and what an
 * operator must act on (`logDetails`: a full disk's path), to be logged once at warn.
 */
export function toConnectError(err: unknown, requestId: string): { error: ConnectError; unexpected: boolean; logDetails?: Record<string, unknown> } {
  const mapped = mapError(err, requestId);
  return { ...mapped, error: bounded(mapped.error) };
}

/**
 * The longest message a client is sent. Messages quote what the client sent, and gRPC carries
 * them in a trailer: an id of a megabyte quoted whole would make a header block no HTTP/2 peer
 * takes, and the answer would never arrive.
 */
const MAX_MESSAGE_CHARS = 1024;

function bounded(error: ConnectError): ConnectError {
  const message = error.rawMessage;
  if (message.length <= MAX_MESSAGE_CHARS) return error;
  const cut = `${message.slice(0, MAX_MESSAGE_CHARS)}… (${message.length - MAX_MESSAGE_CHARS} more characters)`;
  // Our errors carry no details; a message this long is never one a service meant to send whole.
  return new ConnectError(cut, error.code, error.metadata, undefined, error.cause);
}

function mapError(err: unknown, requestId: string): { error: ConnectError; unexpected: boolean; logDetails?: Record<string, unknown> } {
  if (err instanceof ConnectError) return { error: err, unexpected: false };
  // A call aborted without a reason (its client went away: connect-node and REST abort so)
  // rejects with the signal's AbortError once its implementation notices: a cancellation.
  if (err instanceof Error && err.name === "AbortError") return { error: new ConnectError("the call was cancelled", Code.Canceled), unexpected: false };
  const known = translate(err);
  if (isDomainError(known)) {
    // A 401 says how to authenticate (RFC 9110 §11.6.1): an API token as a Bearer header.
    const metadata = known.kind === "unauthenticated" ? { "www-authenticate": "Bearer" } : undefined;
    return { error: new ConnectError(known.message, CONNECT_CODES[known.kind], metadata), unexpected: false, logDetails: known.logDetails };
  }
  return { error: new ConnectError(`internal error (request id ${requestId})`, Code.Internal), unexpected: true };
}
