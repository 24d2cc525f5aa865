// The keys that sign the registry's JWTs, shared by every replica (src/auth/signing-keys.ts
// decides when to make, use and retire them; this is only their SQL).
import { and, desc, isNull, lt, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { signingKeys } from "../db/schema.js";
import { guarded } from "./pg-errors.js";

export type SigningKeyRow = typeof signingKeys.$inferSelect;

export class SigningKeyStore {
  constructor(private readonly db: Database) {}

  /** Every key, newest first. */
  list(): Promise<SigningKeyRow[]> {
    return guarded(() => this.db.select().from(signingKeys).orderBy(desc(signingKeys.createTime)));
  }

  /**
   * Adds a key and retires the ones that signed until now, in one transaction under an advisory
   * lock, unless a key newer than `unlessNewerThan` exists (another replica rotated a moment ago):
   * then nothing changes. Returns whether this key was added.
   */
  add(row: Pick<SigningKeyRow, "kid" | "privateKey" | "publicKey">, unlessNewerThan?: Date): Promise<boolean> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${SIGNING_KEY_LOCK})`);
        if (unlessNewerThan) {
          const [newer] = await tx
            .select({ kid: signingKeys.kid })
            .from(signingKeys)
            .where(and(isNull(signingKeys.retireTime), sql`${signingKeys.createTime} > ${unlessNewerThan.toISOString()}::timestamptz`))
            .limit(1);
          if (newer) return false;
        }
        await tx
          .update(signingKeys)
          .set({ retireTime: sql`now()` })
          .where(isNull(signingKeys.retireTime));
        await tx.insert(signingKeys).values(row);
        return true;
      }),
    );
  }

  /** Drops keys retired before `before` (no token they signed can still be valid). */
  prune(before: Date): Promise<void> {
    return guarded(async () => {
      await this.db.delete(signingKeys).where(lt(signingKeys.retireTime, sql`${before.toISOString()}::timestamptz`));
    });
  }
}

// Any constant, the same in every replica ("ARTK").
const SIGNING_KEY_LOCK = 0x4152544b;
