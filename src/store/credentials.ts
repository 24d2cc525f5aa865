// The SQL of key rotation: the sealed secrets the service stores (registries' upstream credentials
// and webhooks' signing secrets), and swapping one for the same secret sealed under another key.
// Nothing here opens a secret (src/secrets.ts does).
import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { namespaces, registries, webhooks } from "../db/schema.js";
import { guarded } from "./pg-errors.js";

/** A stored (sealed) secret: a registry's credential, or a webhook's secret. */
export interface StoredCredential {
  id: string;
  /** The registry's name; for a webhook, `webhook <id> (<registry>[/<namespace>])`. */
  name: string;
  owner: "registry" | "webhook";
  sealed: string;
}

export class CredentialStore {
  constructor(private readonly db: Database) {}

  /** Every stored secret: registries by name, then webhooks by age. */
  list(): Promise<StoredCredential[]> {
    return guarded(async () => {
      const rows = await this.db
        .select({ id: registries.id, name: registries.name, sealed: registries.credentialSealed })
        .from(registries)
        .where(isNotNull(registries.credentialSealed))
        .orderBy(asc(registries.name));
      const hooks = await this.db
        .select({
          id: webhooks.id,
          scope: sql<string>`${registries.name} || coalesce('/' || ${namespaces.name}, '')`,
          sealed: webhooks.secretSealed,
        })
        .from(webhooks)
        .innerJoin(registries, eq(registries.id, webhooks.registryId))
        .leftJoin(namespaces, eq(namespaces.id, webhooks.namespaceId))
        .orderBy(asc(webhooks.createTime), asc(webhooks.id));
      return [
        ...rows.map((r) => ({ id: r.id, name: r.name, owner: "registry" as const, sealed: r.sealed! })),
        ...hooks.map((h) => ({ id: h.id, name: `webhook ${h.id} (${h.scope})`, owner: "webhook" as const, sealed: h.sealed })),
      ];
    });
  }

  /** The sealed value stored now under `id` (a registry's or a webhook's; null: none, or it is gone). */
  get(id: string): Promise<string | null> {
    return guarded(async () => {
      const [row] = await this.db.select({ sealed: registries.credentialSealed }).from(registries).where(eq(registries.id, id)).limit(1);
      if (row) return row.sealed;
      const [hook] = await this.db.select({ sealed: webhooks.secretSealed }).from(webhooks).where(eq(webhooks.id, id)).limit(1);
      return hook?.sealed ?? null;
    });
  }

  /**
   * Stores `to` (the same secret sealed again) if the value under `id` is still `from`: a
   * compare-and-set, so a concurrent UpdateRegistry or UpdateWebhook is never overwritten. Version
   * and update time stay: the secret did not change, and no client's etag may go stale over it.
   * False when the value was no longer `from`.
   */
  replace(id: string, from: string, to: string): Promise<boolean> {
    return guarded(async () => {
      const rows = await this.db
        .update(registries)
        .set({ credentialSealed: to })
        .where(and(eq(registries.id, id), eq(registries.credentialSealed, from)))
        .returning({ id: registries.id });
      if (rows.length === 1) return true;
      const hooks = await this.db
        .update(webhooks)
        .set({ secretSealed: to })
        .where(and(eq(webhooks.id, id), eq(webhooks.secretSealed, from)))
        .returning({ id: webhooks.id });
      return hooks.length === 1;
    });
  }
}
