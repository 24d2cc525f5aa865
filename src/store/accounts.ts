// Accounts: users and robots in one table (one name space). Each change writes its audit event
// in its own transaction.
import { count, eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { accounts, apiTokens, roleBindings } from "../db/schema.js";
import { alreadyExists, invalidArgument } from "../domain/errors.js";
import { writeAudit, type AuditTrail } from "./audit.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { Lister, type ListRequest, type Page } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

export type AccountRow = typeof accounts.$inferSelect;
export type AccountKind = AccountRow["kind"];
export type NewAccount = Pick<AccountRow, "name" | "kind"> & Partial<Pick<AccountRow, "description" | "passwordHash" | "disabled">>;
export type AccountPatch = Partial<Pick<AccountRow, "description" | "passwordHash" | "disabled">>;

const table: CatalogTable = { table: accounts, id: accounts.id, version: accounts.version, updateTime: accounts.updateTime, noun: "account" };

const nameTaken = (name: string) => () => alreadyExists(`an account named "${name}" already exists (users and robots share names)`);
const robotPassword = () => invalidArgument("account.password: a robot has no password; it signs in with API tokens");

export class AccountStore {
  private readonly byId: (id: string) => Promise<AccountRow>;
  private readonly lister: Lister<AccountRow>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = getterById<AccountRow>(db, table);
    this.lister = new Lister<AccountRow>(db, tokens, {
      resource: "accounts",
      table: accounts,
      id: accounts.id,
      name: accounts.name,
      sortable: { name: accounts.name, create_time: accounts.createTime, update_time: accounts.updateTime },
      uniqueName: "global",
      filters: { kind: accounts.kind },
    });
  }

  create(input: NewAccount, audit?: AuditTrail): Promise<AccountRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [row] = await tx.insert(accounts).values(input).returning();
          await writeAudit(tx, audit, { action: "account.create", resourceType: "account", resourceId: row!.id, resourceName: row!.name, detail: row!.kind });
          return row!;
        }),
      { accounts_name_unique: nameTaken(input.name), accounts_robot_password_check: robotPassword },
    );
  }

  get(id: string): Promise<AccountRow> {
    return guarded(() => this.byId(id));
  }

  findByName(name: string): Promise<AccountRow | undefined> {
    return guarded(async () => (await this.db.select().from(accounts).where(eq(accounts.name, name)).limit(1))[0]);
  }

  update(id: string, patch: AccountPatch, etag: string, audit?: AuditTrail): Promise<AccountRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<AccountRow>(tx, table, id, patch, etag);
          // The event says what changed, never a value of a secret.
          const changed = Object.keys(patch).map((k) => (k === "passwordHash" ? "password" : k));
          const action = changed.length === 1 && changed[0] === "password" ? "account.password" : "account.update";
          await writeAudit(tx, audit, { action, resourceType: "account", resourceId: row.id, resourceName: row.name, detail: changed.sort().join(",") });
          return row;
        }),
      { accounts_robot_password_check: robotPassword },
    );
  }

  delete(id: string, options: { etag: string }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        const [row] = await tx.select({ name: accounts.name }).from(accounts).where(eq(accounts.id, id));
        await deleteById(tx, table, id, options);
        await writeAudit(tx, audit, { action: "account.delete", resourceType: "account", resourceId: id, resourceName: row?.name });
      }),
    );
  }

  list(request: ListRequest, filter: { kind?: AccountKind }): Promise<Page<AccountRow>> {
    return guarded(() => this.lister.list(request, { values: { kind: filter.kind } }));
  }

  /**
   * The first start: when no account exists, the admin user with a global admin binding (and an
   * API token when one is given), in one transaction under an advisory lock, so replicas starting
   * together create it once. Returns whether this call created it.
   */
  bootstrap(input: { name: string; passwordHash: string | null; tokenHash?: string }): Promise<boolean> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`);
        if ((await this.count(tx)) > 0) return false;
        const [admin] = await tx
          .insert(accounts)
          .values({ name: input.name, kind: "user", passwordHash: input.passwordHash, description: "created at first start" })
          .returning();
        await tx.insert(roleBindings).values({ accountId: admin!.id, role: "admin" });
        if (input.tokenHash) await tx.insert(apiTokens).values({ accountId: admin!.id, name: "bootstrap", secretHash: input.tokenHash });
        const trail = { actorId: null, actorName: "bootstrap", requestId: "", clientAddress: "" };
        await writeAudit(tx, trail, {
          action: "account.create",
          resourceType: "account",
          resourceId: admin!.id,
          resourceName: input.name,
          detail: "first start: global admin",
        });
        return true;
      }),
    );
  }

  /** How many accounts exist (the bootstrap creates the first). */
  async count(db: Database = this.db): Promise<number> {
    return guarded(async () => (await db.select({ n: count() }).from(accounts))[0]?.n ?? 0);
  }

  /** The names of these accounts, for messages that show them. */
  async names(ids: readonly string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    return guarded(async () => {
      const rows = await this.db
        .select({ id: accounts.id, name: accounts.name })
        .from(accounts)
        .where(sql`${accounts.id} = any(string_to_array(${[...new Set(ids)].join(",")}, ',')::uuid[])`);
      return new Map(rows.map((r) => [r.id, r.name]));
    });
  }
}

// Any constant, the same in every replica ("ARTB").
const BOOTSTRAP_LOCK = 0x41525442;
