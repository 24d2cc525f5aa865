// Loaded into the service's processes with `node --import` by test/main.test.ts, never by the
// product: a request carrying `x-fault-injection: reject` leaves an unhandled rejection behind,
// `throw` an uncaught exception, both while the request is still in flight. They stand for a
// bug that escapes every handler, which the product must survive (src/crash.ts, src/cluster.ts).
import http from "node:http";

// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the server as `this`
const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: unknown[]): boolean {
  const handled = Reflect.apply(emit, this, [event, ...args]) as boolean;
  if (event === "request") {
    const fault = (args[0] as http.IncomingMessage).headers["x-fault-injection"];
    if (fault === "reject") void Promise.reject(new Error("injected unhandled rejection"));
    if (fault === "throw")
      setImmediate(() => {
        throw new Error("injected uncaught exception");
      });
  }
  return handled;
} as typeof http.Server.prototype.emit;
