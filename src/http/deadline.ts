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
    if (req.stream) return call;
    const signal = req.signal;
    if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(ConnectError.from(signal.reason));
      signal.addEventListener("abort", onAbort, { once: true });
      call.then(
        (res) => {
          signal.removeEventListener("abort", onAbort);
          resolve(res);
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  };
}
