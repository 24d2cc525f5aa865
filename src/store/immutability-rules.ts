// Immutability rules: create, read, change, delete and list them. What they protect, and where
// the writes of tags ask them, is immutability.ts.
import { eq } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { immutabilityRules as rules, registries } from "../db/schema.js";
import { notFound } from "../domain/errors.js";
import { describeScope, type PolicyScope } from "../domain/policy-scope.js";
import { writeAudit, type AuditTrail } from "./audit.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { requireHostedScope, resolvePolicyScope, scopeFilterKey, scopeFilters, scopeNameSql, scopeOfRow, scopeVisible } from "./policy-scope.js";
import { viewById, viewGetterById, type View } from "./views.js";

export type ImmutabilityRuleRow = typeof rules.$inferSelect;
/** A rule with its scope's name for people (`local/team`). */
export type ImmutabilityRuleView = ImmutabilityRuleRow & { scopeName: string };
export type ImmutabilityRulePatch = Partial<Pick<ImmutabilityRuleRow, "tagPattern" | "description">>;

const table: CatalogTable = {
  table: rules,
  id: rules.id,
  version: rules.version,
  updateTime: rules.updateTime,
  noun: "immutability rule",
};

const ruleView: View = {
  table: rules,
  id: rules.id,
  joins: [{ table: registries, on: eq(registries.id, rules.registryId) }],
  columns: { scopeName: scopeNameSql(rules) },
};

const scopeText = (view: ImmutabilityRuleView) => describeScope({ kind: scopeOfRow(view).kind, name: view.scopeName });

export class ImmutabilityRuleStore {
  private readonly byId: (id: string) => Promise<ImmutabilityRuleView>;
  private readonly lister: Lister<ImmutabilityRuleView>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = viewGetterById<ImmutabilityRuleView>(db, ruleView, "immutability_rule");
    this.lister = new Lister<ImmutabilityRuleView>(db, tokens, {
      resource: "immutability_rules",
      table: rules,
      id: rules.id,
      view: ruleView,
      // Visibility reads the registry's public flag: the count joins it too.
      countThroughView: true,
      sortable: { create_time: rules.createTime, update_time: rules.updateTime },
      defaultOrder: "create_time",
      uniqueName: "none",
      filters: scopeFilters(rules),
      visible: (v) => scopeVisible(rules, v),
    });
  }

  /** A rule at `scope`, which must exist (NOT_FOUND) and be in a HOSTED registry (FAILED_PRECONDITION). */
  create(input: { scope: PolicyScope; tagPattern: string; description: string }, audit?: AuditTrail): Promise<ImmutabilityRuleView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const scope = await resolvePolicyScope(tx, input.scope);
          requireHostedScope(scope, "immutability rules");
          const [row] = await tx
            .insert(rules)
            .values({
              registryId: scope.registryId,
              namespaceId: scope.namespaceId,
              repositoryId: scope.repositoryId,
              tagPattern: input.tagPattern,
              description: input.description,
            })
            .returning();
          const view = await ruleOf(tx, row!.id);
          await writeAudit(tx, audit, {
            action: "immutability_rule.create",
            resourceType: "immutability_rule",
            resourceId: view.id,
            resourceName: view.scopeName,
            detail: `tag_pattern "${view.tagPattern}" on ${scopeText(view)}`,
          });
          return view;
        }),
      // The scope was deleted between the lookup and the insert.
      {
        immutability_rules_registry_id_registries_id_fk: () => notFound(`${input.scope.kind} ${input.scope.id} not found`),
        immutability_rules_namespace_id_namespaces_id_fk: () => notFound(`${input.scope.kind} ${input.scope.id} not found`),
        immutability_rules_repository_id_repositories_id_fk: () => notFound(`${input.scope.kind} ${input.scope.id} not found`),
      },
    );
  }

  get(id: string): Promise<ImmutabilityRuleView> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: ImmutabilityRulePatch, etag: string, audit?: AuditTrail): Promise<ImmutabilityRuleView> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        const [before] = await tx.select({ tagPattern: rules.tagPattern }).from(rules).where(eq(rules.id, id));
        await updateById<ImmutabilityRuleRow>(tx, table, id, patch, etag);
        const view = await ruleOf(tx, id);
        const changes = [
          ...(before && before.tagPattern !== view.tagPattern ? [`tag_pattern "${before.tagPattern}" -> "${view.tagPattern}"`] : []),
          ...(patch.description !== undefined ? ["description"] : []),
        ];
        await writeAudit(tx, audit, {
          action: "immutability_rule.update",
          resourceType: "immutability_rule",
          resourceId: id,
          resourceName: view.scopeName,
          detail: `${changes.join(", ") || "nothing changed"} (on ${scopeText(view)})`,
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
          const view = await viewById<ImmutabilityRuleView>(tx, ruleView, id);
          if (!view) return;
          await writeAudit(tx, audit, {
            action: "immutability_rule.delete",
            resourceType: "immutability_rule",
            resourceId: id,
            resourceName: view.scopeName,
            detail: `tag_pattern "${view.tagPattern}" on ${scopeText(view)}`,
          });
        },
      }),
    );
  }

  /**
   * Rules set on `scope` (which must exist: NOT_FOUND), or with `inherited` every rule that
   * applies there; no scope: every rule. With a visibility, only those the caller may read.
   */
  list(request: ListRequest, filter: { scope?: PolicyScope; inherited: boolean }, visibility?: Visibility): Promise<Page<ImmutabilityRuleView>> {
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
async function ruleOf(tx: Database, id: string): Promise<ImmutabilityRuleView> {
  const view = await viewById<ImmutabilityRuleView>(tx, ruleView, id);
  if (!view) throw notFound(`immutability rule ${id} not found`);
  return view;
}
