// One of the Connect interceptors (their order and layering: src/api/interceptors/call.ts).
//
// While the health pings say PostgreSQL does not answer, calls that need it fail at once with
// UNAVAILABLE instead of each one waiting out a connection attempt to a database that is gone
// (src/http/health.ts decides; each replica for itself). Health and reflection still answer.
import type { Interceptor } from "@connectrpc/connect";
import { databaseUnavailable } from "../../domain/errors.js";

export function databaseGateInterceptor(isDown: () => boolean, needsDatabase: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    if (isDown() && needsDatabase.has(req.service.typeName)) throw databaseUnavailable();
    return await next(req);
  };
}
