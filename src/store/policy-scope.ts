// The SQL of policy scopes (src/domain/policy-scope.ts): a policy row carries registry_id always,
// namespace_id for namespace and repository scopes and repository_id for repository scopes
// (src/db/schema.ts policyScope()). Immutability rules use these; retention policies will too.
import { and, eq, isNull, or, sql, type Placeholder, type SQL } from "drizzle-orm";
import type { PgColumn } from "drizzle-orm/pg-core";
import type { Database } from "../db/database.js";
import { namespaces, registries, repositories } from "../db/schema.js";
import { failedPrecondition, notFound } from "../domain/errors.js";
import type { NamedScope, PolicyScope, PolicyScopeKind } from "../domain/policy-scope.js";
import type { RegistryRow } from "./registries.js";
import type { VisibilitySql } from "./listing.js";

/** A policy table's scope columns. */
export interface ScopeColumns {
  registryId: PgColumn;
  namespaceId: PgColumn;
  repositoryId: PgColumn;
}

/** A scope's ids as a policy row stores them. */
export interface ScopeIds {
  registryId: string;
  namespaceId: string | null;
  repositoryId: string | null;
}

/** A scope that exists: its ids, its name for people, and its registry's kind. */
export interface ResolvedScope extends ScopeIds, NamedScope {
  registryKind: RegistryRow["kind"];
}

/** Which kind of scope a stored row names, and its id. */
export function scopeOfRow(row: ScopeIds): PolicyScope {
  if (row.repositoryId) return { kind: "repository", id: row.repositoryId };
  if (row.namespaceId) return { kind: "namespace", id: row.namespaceId };
  return { kind: "registry", id: row.registryId };
}

/** The scope a request names, with its ancestors' ids and its name; NOT_FOUND when it does not exist. */
export async function resolvePolicyScope(db: Database, scope: PolicyScope): Promise<ResolvedScope> {
  const registry = { registryId: registries.id, registryKind: registries.kind, registryName: registries.name };
  let row:
    { registryId: string; registryKind: RegistryRow["kind"]; names: (string | null)[]; namespaceId: string | null; repositoryId: string | null } | undefined;
  if (scope.kind === "registry") {
    const [r] = await db.select(registry).from(registries).where(eq(registries.id, scope.id));
    row = r && { ...r, names: [r.registryName], namespaceId: null, repositoryId: null };
  } else if (scope.kind === "namespace") {
    const [r] = await db
      .select({ ...registry, namespaceName: namespaces.name })
      .from(namespaces)
      .innerJoin(registries, eq(registries.id, namespaces.registryId))
      .where(eq(namespaces.id, scope.id));
    row = r && { ...r, names: [r.registryName, r.namespaceName], namespaceId: scope.id, repositoryId: null };
  } else {
    const [r] = await db
      .select({ ...registry, namespaceId: namespaces.id, namespaceName: namespaces.name, repositoryName: repositories.name })
      .from(repositories)
      .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
      .innerJoin(registries, eq(registries.id, namespaces.registryId))
      .where(eq(repositories.id, scope.id));
    row = r && { ...r, names: [r.registryName, r.namespaceName, r.repositoryName], repositoryId: scope.id };
  }
  if (!row) throw notFound(`${scope.kind} ${scope.id} not found`);
  return {
    kind: scope.kind,
    name: row.names.join("/"),
    registryId: row.registryId,
    namespaceId: row.namespaceId,
    repositoryId: row.repositoryId,
    registryKind: row.registryKind,
  };
}

/**
 * Policies act on what this service stores: a REMOTE registry's tags are records of its
 * upstream (sync rewrites them to match) and its pull-through cache keeps no tags, so a policy
 * there would promise what it cannot keep.
 */
export function requireHostedScope(scope: ResolvedScope, what: string): void {
  if (scope.registryKind !== "hosted") {
    throw failedPrecondition(
      `${what} can only be set in a HOSTED registry; ${scope.kind} ${scope.name} is in a REMOTE registry, whose tags mirror its upstream`,
    );
  }
}

/**
 * The scope's name for people (`local`, `local/team`, `local/team/app`), with the policy table
 * joined to registries (the view of a policy table).
 */
export function scopeNameSql(c: ScopeColumns): SQL<string> {
  return sql<string>`(${registries.name}
    || coalesce('/' || (select sn.name from ${namespaces} sn where sn.id = ${c.namespaceId}), '')
    || coalesce('/' || (select sr.name from ${repositories} sr where sr.id = ${c.repositoryId}), ''))`;
}

/** Whether a policy row applies to the repository with these ids (its own, its namespace's, its registry's). */
export function appliesTo(c: ScopeColumns, where: { registryId: PgColumn | SQL; namespaceId: PgColumn | SQL; repositoryId: PgColumn | SQL }): SQL {
  return and(
    eq(c.registryId, where.registryId),
    or(isNull(c.namespaceId), eq(c.namespaceId, where.namespaceId)),
    or(isNull(c.repositoryId), eq(c.repositoryId, where.repositoryId)),
  )!;
}

/**
 * List filters by scope: the policies set on exactly that scope, or (`…Inherited`) also those of
 * the enclosing scopes, i.e. every policy that applies there. Values are the scope's id.
 */
export function scopeFilters(c: ScopeColumns): Record<string, { where: (id: Placeholder) => SQL }> {
  const id = (value: Placeholder) => sql`${value}::uuid`;
  const namespaceOf = (repository: Placeholder) => sql`(select fr.namespace_id from ${repositories} fr where fr.id = ${id(repository)})`;
  const registryOf = (namespace: SQL) => sql`(select fn.registry_id from ${namespaces} fn where fn.id = ${namespace})`;
  return {
    registry: { where: (v) => sql`(${c.registryId} = ${id(v)} and ${c.namespaceId} is null)` },
    namespace: { where: (v) => sql`(${c.namespaceId} = ${id(v)} and ${c.repositoryId} is null)` },
    repository: { where: (v) => sql`${c.repositoryId} = ${id(v)}` },
    namespaceInherited: {
      where: (v) => sql`((${c.namespaceId} = ${id(v)} and ${c.repositoryId} is null) or (${c.namespaceId} is null and ${c.registryId} = ${registryOf(id(v))}))`,
    },
    repositoryInherited: {
      where: (v) => sql`(${c.repositoryId} = ${id(v)}
        or (${c.repositoryId} is null and ${c.namespaceId} = ${namespaceOf(v)})
        or (${c.namespaceId} is null and ${c.registryId} = ${registryOf(namespaceOf(v))}))`,
    },
  };
}

/** The filter key of a scope in scopeFilters(). */
export function scopeFilterKey(kind: PolicyScopeKind, inherited: boolean): string {
  return inherited && kind !== "registry" ? `${kind}Inherited` : kind;
}

/**
 * Who may read a policy (with registries joined): whoever may read its scope
 * (src/auth/policy.ts). A registry's policies also to anyone with a role in, or a public
 * namespace of, that registry: they apply to that namespace too.
 */
export function scopeVisible(c: ScopeColumns, v: VisibilitySql): SQL {
  return sql`(${registries.public} or ${c.registryId} = any(${v.registries}) or ${c.namespaceId} = any(${v.namespaces})
    or exists (select 1 from ${namespaces} vn where vn.id = ${c.namespaceId} and vn.public)
    or (${c.namespaceId} is null and exists (select 1 from ${namespaces} vn
      where vn.registry_id = ${c.registryId} and (vn.public or vn.id = any(${v.namespaces})))))`;
}
