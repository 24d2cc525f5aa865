// Role bindings: a role at a scope (global, a registry, a namespace). A namespace binding keeps
// its namespace's registry beside it, so "is this in registry R" never needs a join.
import { and, eq, isNull, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { accounts, namespaces, registries, roleBindings } from "../db/schema.js";
import type { Binding, BindingScope } from "../domain/roles.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

export type RoleBindingRow = typeof roleBindings.$inferSelect;
export type RoleName = RoleBindingRow["role"];

/** A binding with the names people read: its account's and its scope's (`local`, `local/team`). */
export type RoleBindingView = RoleBindingRow & { accountName: string; scopeName: string };

/** The scope a binding is asked for: kind and the registry's or namespace's id. */
export type ScopeRequest = { kind: "global" } | { kind: "registry"; id: string } | { kind: "namespace"; id: string };

export interface RoleBindingFilter {
  accountId?: string;
  /** A kind of scope, or (with `id`) one registry or namespace. */
  scope?: { kind: "global" | "registry" | "namespace"; id?: string };
}

function scopeOf(row: Pick<RoleBindingRow, "registryId" | "namespaceId">): BindingScope {
  if (row.namespaceId) return { kind: "namespace", registryId: row.registryId!, namespaceId: row.namespaceId };
  if (row.registryId) return { kind: "registry", registryId: row.registryId };
  return { kind: "global" };
}

export class RoleBindingStore {
  private readonly lister: Lister<RoleBindingRow>;
  private readonly ofAccount;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.lister = new Lister<RoleBindingRow>(db, tokens, {
      resource: "role_bindings",
      table: roleBindings,
      id: roleBindings.id,
      sortable: { create_time: roleBindings.createTime },
      defaultOrder: "create_time",
      uniqueName: "none",
      parent: { column: roleBindings.accountId, parentId: accounts.id, noun: "account" },
      filters: {
        scopeKind: {
          where: (kind) =>
            sql`(case when ${roleBindings.namespaceId} is not null then 'namespace' when ${roleBindings.registryId} is not null then 'registry' else 'global' end) = ${kind}`,
        },
        registryId: { where: (id) => sql`(${roleBindings.registryId} = ${id}::uuid and ${roleBindings.namespaceId} is null)` },
        namespaceId: { column: roleBindings.namespaceId, op: "=", cast: "uuid" },
      },
      // Yours, and those in the scopes where you are an admin.
      visible: (v) =>
        sql`(${roleBindings.accountId} = ${v.account} or ${roleBindings.registryId} = any(${v.registries}) or ${roleBindings.namespaceId} = any(${v.namespaces}))`,
    });
    this.ofAccount = db
      .select({ role: roleBindings.role, registryId: roleBindings.registryId, namespaceId: roleBindings.namespaceId })
      .from(roleBindings)
      .where(eq(roleBindings.accountId, sql.placeholder("account")))
      .prepare("role_bindings_of_account");
  }

  create(input: { accountId: string; role: RoleName; scope: ScopeRequest }, audit?: AuditTrail): Promise<RoleBindingView> {
    const missing = (what: string) => () => notFound(`${what} not found`);
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          let registryId: string | null = null;
          let namespaceId: string | null = null;
          if (input.scope.kind === "registry") registryId = input.scope.id;
          if (input.scope.kind === "namespace") {
            const [ns] = await tx.select({ registryId: namespaces.registryId }).from(namespaces).where(eq(namespaces.id, input.scope.id));
            if (!ns) throw notFound(`namespace ${input.scope.id} not found`);
            registryId = ns.registryId;
            namespaceId = input.scope.id;
          }
          const [row] = await tx.insert(roleBindings).values({ accountId: input.accountId, role: input.role, registryId, namespaceId }).returning();
          const [view] = await describeBindings(tx, [row!]);
          await writeAudit(tx, audit, {
            action: "role_binding.create",
            resourceType: "role_binding",
            resourceId: row!.id,
            resourceName: view!.accountName,
            detail: `${row!.role} on ${describeScope(view!)}`,
          });
          return view!;
        }),
      {
        role_bindings_unique: () => alreadyExists("the account already has this role at this scope"),
        role_bindings_account_id_accounts_id_fk: missing(`account ${input.accountId}`),
        role_bindings_registry_id_registries_id_fk: missing(`registry ${input.scope.kind === "registry" ? input.scope.id : ""}`),
        role_bindings_namespace_id_namespaces_id_fk: missing(`namespace ${input.scope.kind === "namespace" ? input.scope.id : ""}`),
      },
    );
  }

  get(id: string): Promise<RoleBindingView> {
    return guarded(async () => {
      const [row] = await this.db.select().from(roleBindings).where(eq(roleBindings.id, id)).limit(1);
      if (!row) throw notFound(`role binding ${id} not found`);
      return (await describeBindings(this.db, [row]))[0]!;
    });
  }

  async list(request: ListRequest, filter: RoleBindingFilter, visibility?: Visibility): Promise<Page<RoleBindingView>> {
    const values: Record<string, string | undefined> = {};
    if (filter.scope) {
      if (filter.scope.id === undefined || filter.scope.kind === "global") values.scopeKind = filter.scope.kind;
      else if (filter.scope.kind === "registry") values.registryId = filter.scope.id;
      else values.namespaceId = filter.scope.id;
    }
    return guarded(async () => {
      const page = await this.lister.list(request, { parent: filter.accountId, values, visibility });
      return { ...page, items: await describeBindings(this.db, page.items) };
    });
  }

  delete(id: string, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        const [row] = await tx.delete(roleBindings).where(eq(roleBindings.id, id)).returning();
        if (!row) throw notFound(`role binding ${id} not found`);
        const [view] = await describeBindings(tx, [row]);
        await writeAudit(tx, audit, {
          action: "role_binding.delete",
          resourceType: "role_binding",
          resourceId: id,
          resourceName: view!.accountName,
          detail: `${row.role} on ${describeScope(view!)}`,
        });
      }),
    );
  }

  /** An account's bindings, as the policy reads them. */
  async forAccount(accountId: string): Promise<Binding[]> {
    const rows = await guarded(() => this.ofAccount.execute({ account: accountId }));
    return rows.map((r) => ({ role: r.role, scope: scopeOf(r) }));
  }

  /**
   * The enabled accounts with a global admin binding, other than `exceptAccountId` and than the
   * binding `exceptBindingId`: what would be left after a change (no one must lock everyone out).
   */
  async otherGlobalAdmins(options: { exceptAccountId?: string; exceptBindingId?: string }): Promise<number> {
    return guarded(async () => {
      const [row] = await this.db
        .select({ n: sql<number>`count(distinct ${roleBindings.accountId})::int` })
        .from(roleBindings)
        .innerJoin(accounts, eq(accounts.id, roleBindings.accountId))
        .where(
          and(
            eq(roleBindings.role, "admin"),
            isNull(roleBindings.registryId),
            eq(accounts.disabled, false),
            options.exceptAccountId ? sql`${roleBindings.accountId} <> ${options.exceptAccountId}::uuid` : undefined,
            options.exceptBindingId ? sql`${roleBindings.id} <> ${options.exceptBindingId}::uuid` : undefined,
          ),
        );
      return row?.n ?? 0;
    });
  }
}

function describeScope(view: RoleBindingView): string {
  return view.scopeName === "" ? "global scope" : `${view.namespaceId ? "namespace" : "registry"} ${view.scopeName}`;
}

/** Account and scope names for bindings, in one query. */
async function describeBindings(db: Database, rows: RoleBindingRow[]): Promise<RoleBindingView[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id).join(",");
  const names = await db
    .select({
      id: roleBindings.id,
      accountName: accounts.name,
      registryName: registries.name,
      namespaceName: namespaces.name,
    })
    .from(roleBindings)
    .innerJoin(accounts, eq(accounts.id, roleBindings.accountId))
    .leftJoin(registries, eq(registries.id, roleBindings.registryId))
    .leftJoin(namespaces, eq(namespaces.id, roleBindings.namespaceId))
    .where(sql`${roleBindings.id} = any(string_to_array(${ids}, ',')::uuid[])`);
  const byId = new Map(names.map((n) => [n.id, n]));
  return rows.map((row) => {
    const n = byId.get(row.id);
    const scopeName = row.namespaceId
      ? `${n?.registryName ?? row.registryId}/${n?.namespaceName ?? row.namespaceId}`
      : row.registryId
        ? (n?.registryName ?? row.registryId)
        : "";
    return { ...row, accountName: n?.accountName ?? "", scopeName };
  });
}
