// Failed sign-ins in a row per key ("account:<name>", "address:<ip>"), in the database so every
// replica counts the same failures. A failure more than an hour after the previous one starts
// the count again.
import { inArray, lt, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { authThrottle } from "../db/schema.js";
import { guarded } from "./pg-errors.js";

export interface FailureCount {
  failures: number;
  lastFailure: Date;
}

const STREAK_GAP = "1 hour";

export class ThrottleStore {
  constructor(private readonly db: Database) {}

  /** The failure counts of these keys (keys without failures are absent). */
  async get(keys: readonly string[]): Promise<Map<string, FailureCount>> {
    if (keys.length === 0) return new Map();
    const rows = await guarded(() =>
      this.db
        .select()
        .from(authThrottle)
        .where(inArray(authThrottle.key, [...keys])),
    );
    return new Map(rows.map((r) => [r.key, { failures: r.failures, lastFailure: r.lastFailure }]));
  }

  /** Counts one more failure for each key. */
  async fail(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await guarded(() =>
      this.db
        .insert(authThrottle)
        .values(keys.map((key) => ({ key, failures: 1, lastFailure: sql`now()` })))
        .onConflictDoUpdate({
          target: authThrottle.key,
          set: {
            failures: sql`case when ${authThrottle.lastFailure} < now() - ${STREAK_GAP}::interval then 1 else ${authThrottle.failures} + 1 end`,
            lastFailure: sql`now()`,
          },
        }),
    );
  }

  /** A success: the key's streak is over. */
  async reset(key: string): Promise<void> {
    await guarded(() => this.db.delete(authThrottle).where(inArray(authThrottle.key, [key])));
  }

  /** Forgets failures older than `before`. */
  async prune(before: Date): Promise<void> {
    await guarded(() => this.db.delete(authThrottle).where(lt(authThrottle.lastFailure, sql`${before.toISOString()}::timestamptz`)));
  }
}
