// One of the Connect interceptors (their order and layering: src/api/interceptors/call.ts).
//
// Client deadlines (`grpc-timeout`, `connect-timeout-ms`) answered on time. connect-es turns the
// deadline into the call's abort signal but still waits for the implementation to return, and
// our store does not cancel queries: a call stuck behind a database lock would outlive its
// deadline by as long as the lock is held. This interceptor answers DEADLINE_EXCEEDED (or
// CANCELED) as soon as the signal fires; the abandoned work finishes on its own and is dropped.
import { ConnectError, type Interceptor } from "@connectrpc/connect";

export function deadlineInterceptor(): Interceptor {
  return (next) => (req) => {
    const call = next(req);
    // Streams end through their own signal handling; only unary calls are raced.
    return req.stream ? call : untilAborted(call, req.signal);
  };
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
