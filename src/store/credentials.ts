// The SQL of key rotation: the sealed credentials registries store, and swapping one for the same
// credential sealed under another key. Nothing here opens a credential (src/secrets.ts does).
import { and, asc, eq, isNotNull } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { registries } from "../db/schema.js";
import { guarded } from "./pg-errors.js";

/** A registry's stored (sealed) credential. */
export interface StoredCredential {
  id: string;
  name: string;
  sealed: string;
}

export class CredentialStore {
  constructor(private readonly db: Database) {}

  /** Every registry that stores a credential, by name, in one query. */
  list(): Promise<StoredCredential[]> {
    return guarded(async () => {
      const rows = await this.db
        .select({ id: registries.id, name: registries.name, sealed: registries.credentialSealed })
        .from(registries)
        .where(isNotNull(registries.credentialSealed))
        .orderBy(asc(registries.name));
      return rows.map((r) => ({ ...r, sealed: r.sealed! }));
    });
  }

  /** The registry's sealed credential now (null: it has none, or it is gone). */
  get(id: string): Promise<string | null> {
    return guarded(async () => {
      const [row] = await this.db.select({ sealed: registries.credentialSealed }).from(registries).where(eq(registries.id, id)).limit(1);
      return row?.sealed ?? null;
    });
  }

  /**
   * Stores `to` (the same credential sealed again) if the registry's value is still `from`: a
   * compare-and-set, so a concurrent UpdateRegistry is never overwritten. Version and update time
   * stay: the credential did not change, and no client's etag may go stale over it. False when
   * the value was no longer `from`.
   */
  replace(id: string, from: string, to: string): Promise<boolean> {
    return guarded(async () => {
      const rows = await this.db
        .update(registries)
        .set({ credentialSealed: to })
        .where(and(eq(registries.id, id), eq(registries.credentialSealed, from)))
        .returning({ id: registries.id });
      return rows.length === 1;
    });
  }
}
