// What a process does with a bug that escaped every handler. An unhandled rejection is a promise
// nobody awaited: the process state is intact, so it is logged at fatal (it is a bug to fix) and
// the process goes on. An uncaught exception may have left anything half-done, so it is logged
// at fatal and `fatal()` decides: a worker ends, to be replaced by its primary (src/cluster.ts).
// Both lines name the requests that were in flight, since nothing else ties the failure to one.
import type { Logger } from "pino";
import type { RequestInFlight } from "./http/in-flight.js";

export interface EscapedErrorHooks {
  inFlight(): RequestInFlight[];
  /** After an uncaught exception has been logged: end this process, soon. */
  fatal(): void;
}

export function onEscapedErrors(log: Logger, hooks: EscapedErrorHooks): void {
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: reason, inFlight: hooks.inFlight() }, "a promise failed and nothing handled it (a bug): the process goes on");
  });
  process.on("uncaughtException", (err, origin) => {
    log.fatal({ err, origin, inFlight: hooks.inFlight() }, "an exception escaped every handler (a bug)");
    hooks.fatal();
  });
}
