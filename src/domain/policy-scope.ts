// Where a policy is set: a registry, a namespace or a repository. Immutability rules use it now;
// retention policies attach the same way (the table columns, the SQL and the API mapping that go
// with it are src/db/schema.ts policyScope(), src/store/policy-scope.ts, src/api/policy-scope.ts).
// A policy of a scope applies to every repository inside it.

export type PolicyScopeKind = "registry" | "namespace" | "repository";

/** A scope as a request names it: its kind and the id of that registry, namespace or repository. */
export interface PolicyScope {
  kind: PolicyScopeKind;
  id: string;
}

/** A scope as people read it: `registry local`, `namespace local/team`, `repository local/team/app`. */
export interface NamedScope {
  kind: PolicyScopeKind;
  /** `<registry>`, `<registry>/<namespace>` or `<registry>/<namespace>/<repository>`. */
  name: string;
}

/** Nearest first: a repository's own policies, then its namespace's, then its registry's. */
export const SCOPE_NEARNESS: Record<PolicyScopeKind, number> = { repository: 0, namespace: 1, registry: 2 };

export function describeScope(scope: NamedScope): string {
  return `${scope.kind} ${scope.name}`;
}
