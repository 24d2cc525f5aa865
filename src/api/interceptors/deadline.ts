// One of the Connect interceptors (their order and layering: src/api/interceptors/call.ts).
//
// Client deadlines (`grpc-timeout`, `connect-timeout-ms`) answered on time. connect-es turns the
// deadline into the call's abort signal but still waits for the implementation to return, and
// our store does not cancel queries: a call stuck behind a database lock would outlive its
// deadline by as long as the lock is held. This interceptor answers DEADLINE_EXCEEDED (or
// CANCELED) as soon as the signal fires; the abandoned work finishes on its own and is dropped.
//
// Server streams are not raced: they watch the signal themselves and end when it fires (a watch
// returns, as it does for a client that left). connect-es then sends a clean end (Connect `{}`,
// `grpc-status: 0`), which a client could not tell from the server ending the stream. So a stream
// that ends, well or with an error, once its deadline has passed ends with DEADLINE_EXCEEDED,
// here for every server stream (and the call log, outside this interceptor, records that code).
// A client's cancel is not a deadline: such a stream ends as it always has.
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

export function deadlineInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) return untilAborted(next(req), req.signal);
    const res = await next(req);
    return res.stream ? { ...res, message: failPastDeadline(res.message, req.signal) } : res;
  };
}

/** `messages`, but ending with DEADLINE_EXCEEDED instead of its own end once `signal` fired for the deadline. */
async function* failPastDeadline<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  // An early return() (the client left) is passed on by yield* and skips the checks below.
  try {
    yield* messages;
  } catch (err) {
    throw deadlineExpired(signal) ?? err;
  }
  const expired = deadlineExpired(signal);
  if (expired) throw expired;
}

/** The DEADLINE_EXCEEDED error when `signal` fired because the call's deadline passed, else undefined. */
function deadlineExpired(signal: AbortSignal): ConnectError | undefined {
  if (!signal.aborted) return undefined;
  const reason = ConnectError.from(signal.reason);
  return reason.code === Code.DeadlineExceeded ? reason : undefined;
}

/**
 * `promise`, or the signal's reason as a ConnectError as soon as the signal fires. The abandoned
 * promise is always observed: when it fails after the signal won (or the signal had fired before
 * we got here), nobody awaits it any more, and an unobserved rejection would end the process.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason));
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The longest deadline honoured: a Node timer holds at most 2^31 - 1 ms (24.8 days) and fires
 * after 1 ms when asked for more. connect-es arms one for the client's deadline, and Connect allows
 * ten digits of milliseconds and gRPC eight digits of hours, so a far deadline would end the call
 * at once. A deadline that far is as good as none: it is clamped to this.
 */
export const MAX_DEADLINE_MS = 2 ** 31 - 1;

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** Rewrites a well-formed `connect-timeout-ms` or `grpc-timeout` past MAX_DEADLINE_MS to it; malformed ones are left for connect-es to refuse. */
export function clampDeadlineHeaders(header: Headers): void {
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect) && Number(connect) > MAX_DEADLINE_MS) header.set("connect-timeout-ms", String(MAX_DEADLINE_MS));
  const grpc = /^(\d{1,8})([HMSmun])$/.exec(header.get("grpc-timeout") ?? "");
  // gRPC allows eight digits: 2147483 S is the longest whole-second deadline within the limit.
  if (grpc && Number(grpc[1]) * GRPC_UNIT_MS[grpc[2]!]! > MAX_DEADLINE_MS) header.set("grpc-timeout", `${Math.floor(MAX_DEADLINE_MS / 1000)}S`);
}
