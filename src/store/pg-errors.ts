// Database failures become domain errors here, and only here. The driver's own error (which
// carries the SQL text and its parameters) never reaches a client or a log line as is.
import { EmbeddedDatabaseStopped } from "../db/pglite-failures.js";
import { aborted, databaseUnavailable, DomainError, isDomainError, storageFull, unavailable } from "../domain/errors.js";

interface PgErrorFields {
  code?: string;
  message?: string;
  constraint?: string;
  constraint_name?: string;
}

/** The PostgreSQL error of a drizzle, postgres.js or PGlite failure, if there is one. */
function pgError(err: unknown): PgErrorFields | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as PgErrorFields).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return e;
  }
  return undefined;
}

const PG = {
  uniqueViolation: "23505",
  foreignKeyViolation: "23503",
  checkViolation: "23514",
  serializationFailure: "40001",
  deadlockDetected: "40P01",
  diskFull: "53100",
} as const;

function pgCode(err: unknown): string | undefined {
  return pgError(err)?.code;
}

function pgConstraint(err: unknown): string | undefined {
  const e = pgError(err);
  return e?.constraint ?? e?.constraint_name;
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
]);

/**
 * Maps what the database said to a domain error when it is the caller's or the moment's
 * fault (conflicts, outages); anything else stays as it is and ends up as an internal error.
 */
export function translate(err: unknown): unknown {
  if (isDomainError(err)) return err;
  const code = pgCode(err);
  if (code === PG.serializationFailure || code === PG.deadlockDetected) {
    return aborted("the change collided with a concurrent one; retry", { cause: err });
  }
  if (code === PG.diskFull) {
    // The database's own words name a file inside its cluster: for the operator's log only.
    return storageFull("the database is full (no space left on the disk that holds it): free space or raise the quota, then retry", {
      logDetails: { database: pgError(err)?.message },
      cause: err,
    });
  }
  // Class 08 (connection exception), 57P (operator intervention: shutdown, crash recovery), 53 (insufficient resources but a full disk).
  if (code && /^(08|57P0[1-3]|53)/.test(code)) return databaseUnavailable(err);
  for (let e: unknown = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const errno = (e as { code?: unknown }).code;
    if (typeof errno === "string" && CONNECTION_CODES.has(errno)) {
      return databaseUnavailable(err);
    }
    if (e instanceof EmbeddedDatabaseStopped) {
      const logDetails = { database: e.panic };
      return e.diskFull ? storageFull(e.message, { logDetails, cause: err }) : unavailable(e.message, err, logDetails);
    }
    if (e instanceof Error && /PGlite is closed|embedded database is closed/i.test(e.message)) {
      return databaseUnavailable(err);
    }
  }
  return err;
}

/**
 * Runs a store operation and turns database failures into domain errors; `constraints`
 * names the violations the caller can explain better (e.g. a unique name → already-exists).
 */
export async function guarded<T>(work: () => Promise<T>, constraints: Record<string, () => DomainError> = {}): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const constraint = pgConstraint(err);
    const explain = constraint ? constraints[constraint] : undefined;
    throw explain ? explain() : translate(err);
  }
}
