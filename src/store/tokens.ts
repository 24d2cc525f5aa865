// API tokens. A presented secret is looked up by its SHA-256 (unique index), together with its
// account: the one query on the path of a token that is not cached.
import { and, eq, isNull, lt, or, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { accounts, apiTokens } from "../db/schema.js";
import { notFound } from "../domain/errors.js";
import { writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

export type TokenRow = typeof apiTokens.$inferSelect;
export type NewToken = Pick<TokenRow, "accountId" | "name" | "secretHash"> & Partial<Pick<TokenRow, "expireTime">>;

/** A token as the API shows it: the row and its account's name. */
export type TokenView = TokenRow & { accountName: string };

/** What a presented secret stands for. */
export interface TokenOwner {
  token: Pick<TokenRow, "id" | "name" | "secretHash" | "expireTime" | "revokeTime" | "lastUseTime">;
  account: { id: string; name: string; kind: "user" | "robot"; disabled: boolean };
}

/** last_use_time is written at most this often per token. */
const TOUCH_EVERY = "1 minute";

export class TokenStore {
  private readonly lister: Lister<TokenRow>;
  private readonly byHash;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.lister = new Lister<TokenRow>(db, tokens, {
      resource: "api_tokens",
      table: apiTokens,
      id: apiTokens.id,
      name: apiTokens.name,
      sortable: { name: apiTokens.name, create_time: apiTokens.createTime },
      defaultOrder: "create_time",
      uniqueName: "none",
      parent: { column: apiTokens.accountId, parentId: accounts.id, noun: "account" },
    });
    this.byHash = db
      .select({
        token: {
          id: apiTokens.id,
          name: apiTokens.name,
          secretHash: apiTokens.secretHash,
          expireTime: apiTokens.expireTime,
          revokeTime: apiTokens.revokeTime,
          lastUseTime: apiTokens.lastUseTime,
        },
        account: { id: accounts.id, name: accounts.name, kind: accounts.kind, disabled: accounts.disabled },
      })
      .from(apiTokens)
      .innerJoin(accounts, eq(accounts.id, apiTokens.accountId))
      .where(eq(apiTokens.secretHash, sql.placeholder("hash")))
      .limit(1)
      .prepare("api_token_by_hash");
  }

  create(input: NewToken, audit?: AuditTrail): Promise<TokenView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [row] = await tx.insert(apiTokens).values(input).returning();
          const [account] = await tx.select({ name: accounts.name }).from(accounts).where(eq(accounts.id, input.accountId));
          await writeAudit(tx, audit, {
            action: "token.create",
            resourceType: "token",
            resourceId: row!.id,
            resourceName: `${account?.name ?? input.accountId}/${row!.name}`,
            detail: row!.expireTime ? `expires ${row!.expireTime.toISOString()}` : "never expires",
          });
          return { ...row!, accountName: account?.name ?? "" };
        }),
      { api_tokens_account_id_accounts_id_fk: () => notFound(`account ${input.accountId} not found`) },
    );
  }

  get(id: string): Promise<TokenView> {
    return guarded(async () => {
      const [row] = await this.db
        .select({ token: apiTokens, accountName: accounts.name })
        .from(apiTokens)
        .innerJoin(accounts, eq(accounts.id, apiTokens.accountId))
        .where(eq(apiTokens.id, id))
        .limit(1);
      if (!row) throw notFound(`token ${id} not found`);
      return { ...row.token, accountName: row.accountName };
    });
  }

  list(request: ListRequest, filter: { accountId?: string }): Promise<Page<TokenRow>> {
    return guarded(() => this.lister.list(request, { parent: filter.accountId }));
  }

  /** Revokes a token (again: nothing changes, the first revocation time stays). */
  revoke(id: string, audit?: AuditTrail): Promise<TokenView> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        const [row] = await tx
          .update(apiTokens)
          .set({ revokeTime: sql`coalesce(${apiTokens.revokeTime}, now())` })
          .where(eq(apiTokens.id, id))
          .returning();
        if (!row) throw notFound(`token ${id} not found`);
        const [account] = await tx.select({ name: accounts.name }).from(accounts).where(eq(accounts.id, row.accountId));
        await writeAudit(tx, audit, {
          action: "token.revoke",
          resourceType: "token",
          resourceId: id,
          resourceName: `${account?.name ?? row.accountId}/${row.name}`,
        });
        return { ...row, accountName: account?.name ?? "" };
      }),
    );
  }

  /** The token with this secret hash and its account, whatever their state (the caller judges). */
  async findByHash(secretHash: string): Promise<TokenOwner | undefined> {
    const [row] = await guarded(() => this.byHash.execute({ hash: secretHash }));
    return row;
  }

  /** Records a use; at most one write a minute per token, whichever replica sees it. */
  touch(id: string): Promise<void> {
    return guarded(async () => {
      await this.db
        .update(apiTokens)
        .set({ lastUseTime: sql`now()` })
        .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUseTime), lt(apiTokens.lastUseTime, sql`now() - ${TOUCH_EVERY}::interval`))));
    });
  }
}
