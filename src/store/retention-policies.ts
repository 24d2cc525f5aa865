// Retention policies: create, read, change, delete and list them (one per scope). What they delete
// is src/domain/retention.ts; runs are retention.ts.
import { eq } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { registries, retentionPolicies as policies } from "../db/schema.js";
import { alreadyExists, invalidArgument, notFound } from "../domain/errors.js";
import { describeScope, type PolicyScope } from "../domain/policy-scope.js";
import { describeKeepRule, formatDuration, type KeepRule } from "../client/keep-rule.js";
import { writeAudit, type AuditTrail } from "./audit.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { requireHostedScope, resolvePolicyScope, scopeFilterKey, scopeFilters, scopeNameSql, scopeOfRow, scopeVisible } from "./policy-scope.js";
import { viewById, viewGetterById, type View } from "./views.js";

type Row = typeof policies.$inferSelect;
/** A policy with its scope's name for people (`local/team`); `keep` as the domain's rule tree. */
export type RetentionPolicyView = Omit<Row, "keep"> & { keep: KeepRule | null; scopeName: string };
export type RetentionPolicyPatch = Partial<Pick<RetentionPolicyView, "keep" | "untaggedGraceMs" | "deleteImmutable" | "disabled" | "description">>;
export type NewRetentionPolicy = Required<RetentionPolicyPatch> & { scope: PolicyScope };

const table: CatalogTable = {
  table: policies,
  id: policies.id,
  version: policies.version,
  updateTime: policies.updateTime,
  noun: "retention policy",
};

const policyView: View = {
  table: policies,
  id: policies.id,
  joins: [{ table: registries, on: eq(registries.id, policies.registryId) }],
  columns: { scopeName: scopeNameSql(policies) },
};

const scopeText = (view: Pick<RetentionPolicyView, "scopeName" | "registryId" | "namespaceId" | "repositoryId">) =>
  describeScope({ kind: scopeOfRow(view).kind, name: view.scopeName });

/** What a policy does, for the audit log: `keep any_of(…); untagged_grace 7d; delete_immutable; disabled`. */
function describePolicy(p: Pick<RetentionPolicyView, "keep" | "untaggedGraceMs" | "deleteImmutable" | "disabled">): string {
  return [
    p.keep ? `keep ${describeKeepRule(p.keep)}` : "keep every tag",
    p.untaggedGraceMs !== null ? `untagged_grace ${formatDuration(p.untaggedGraceMs)}` : undefined,
    p.deleteImmutable ? "delete_immutable" : undefined,
    p.disabled ? "disabled" : undefined,
  ]
    .filter(Boolean)
    .join("; ");
}

/** A policy that deletes nothing is a mistake: INVALID_ARGUMENT. */
function requireEffect(p: Pick<RetentionPolicyView, "keep" | "untaggedGraceMs">): void {
  if (p.keep === null && p.untaggedGraceMs === null) {
    throw invalidArgument("retention_policy: set keep, untagged_grace or both; a policy with neither deletes nothing");
  }
}

const SCOPE_TAKEN = "retention_policies_scope_unique";

export class RetentionPolicyStore {
  private readonly byId: (id: string) => Promise<RetentionPolicyView>;
  private readonly lister: Lister<RetentionPolicyView>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = viewGetterById<RetentionPolicyView>(db, policyView, "retention_policy");
    this.lister = new Lister<RetentionPolicyView>(db, tokens, {
      resource: "retention_policies",
      table: policies,
      id: policies.id,
      view: policyView,
      countThroughView: true,
      sortable: { create_time: policies.createTime, update_time: policies.updateTime },
      defaultOrder: "create_time",
      uniqueName: "none",
      filters: scopeFilters(policies),
      visible: (v) => scopeVisible(policies, v),
    });
  }

  /** The policy of `scope`, which must exist (NOT_FOUND), be HOSTED (FAILED_PRECONDITION) and have none yet (ALREADY_EXISTS). */
  create(input: NewRetentionPolicy, audit?: AuditTrail): Promise<RetentionPolicyView> {
    requireEffect(input);
    const gone = () => notFound(`${input.scope.kind} ${input.scope.id} not found`);
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const scope = await resolvePolicyScope(tx, input.scope);
          requireHostedScope(scope, "retention policies");
          const [row] = await tx
            .insert(policies)
            .values({
              registryId: scope.registryId,
              namespaceId: scope.namespaceId,
              repositoryId: scope.repositoryId,
              keep: input.keep,
              untaggedGraceMs: input.untaggedGraceMs,
              deleteImmutable: input.deleteImmutable,
              disabled: input.disabled,
              description: input.description,
            })
            .returning();
          const view = await policyOf(tx, row!.id);
          await writeAudit(tx, audit, {
            action: "retention_policy.create",
            resourceType: "retention_policy",
            resourceId: view.id,
            resourceName: view.scopeName,
            detail: `on ${scopeText(view)}: ${describePolicy(view)}`,
          });
          return view;
        }),
      {
        [SCOPE_TAKEN]: () => alreadyExists(`${input.scope.kind} ${input.scope.id} already has a retention policy; update it instead`),
        retention_policies_registry_id_registries_id_fk: gone,
        retention_policies_namespace_id_namespaces_id_fk: gone,
        retention_policies_repository_id_repositories_id_fk: gone,
      },
    );
  }

  get(id: string): Promise<RetentionPolicyView> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: RetentionPolicyPatch, etag: string, audit?: AuditTrail): Promise<RetentionPolicyView> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await updateById<Row>(tx, table, id, patch, etag);
        const view = await policyOf(tx, id);
        requireEffect(view);
        await writeAudit(tx, audit, {
          action: "retention_policy.update",
          resourceType: "retention_policy",
          resourceId: id,
          resourceName: view.scopeName,
          detail: `on ${scopeText(view)}: ${describePolicy(view)}${patch.description !== undefined ? " (description set)" : ""}`,
        });
        return view;
      }),
    );
  }

  delete(id: string, options: { etag: string }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        then: async (tx) => {
          const view = await viewById<RetentionPolicyView>(tx, policyView, id);
          if (!view) return;
          await writeAudit(tx, audit, {
            action: "retention_policy.delete",
            resourceType: "retention_policy",
            resourceId: id,
            resourceName: view.scopeName,
            detail: `on ${scopeText(view)}: ${describePolicy(view)}`,
          });
        },
      }),
    );
  }

  /**
   * Policies set on `scope` (which must exist: NOT_FOUND), or with `inherited` those of the
   * enclosing scopes too; no scope: every policy. With a visibility, only those the caller may read.
   */
  list(request: ListRequest, filter: { scope?: PolicyScope; inherited: boolean }, visibility?: Visibility): Promise<Page<RetentionPolicyView>> {
    return guarded(async () => {
      const values: Record<string, string> = {};
      if (filter.scope) {
        await resolvePolicyScope(this.db, filter.scope);
        values[scopeFilterKey(filter.scope.kind, filter.inherited)] = filter.scope.id;
      }
      return this.lister.list(request, { values, visibility });
    });
  }
}

/** The row just written, as the API shows it (in its transaction). */
async function policyOf(tx: Database, id: string): Promise<RetentionPolicyView> {
  const view = await viewById<RetentionPolicyView>(tx, policyView, id);
  if (!view) throw notFound(`retention policy ${id} not found`);
  return view;
}
