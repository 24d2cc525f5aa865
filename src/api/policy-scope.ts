// A policy's scope on the API: the `scope` oneof of a policy message (`registry_id`,
// `namespace_id`, `repository_id`) and the same three fields as a List filter. Immutability rules
// use it; retention policies will take the same fields.
import type { PolicyScope, PolicyScopeKind } from "../domain/policy-scope.js";
import { invalidArgument } from "../domain/errors.js";
import type { ScopeIds } from "../store/policy-scope.js";
import { requireId } from "./validate.js";

/** The oneof as protobuf-es gives it. */
export type ScopeOneof =
  | { case: "registryId"; value: string }
  | { case: "namespaceId"; value: string }
  | { case: "repositoryId"; value: string }
  | { case: undefined; value?: undefined };

const KIND_OF_CASE = { registryId: "registry", namespaceId: "namespace", repositoryId: "repository" } as const;
const FIELD_OF_KIND: Record<PolicyScopeKind, string> = { registry: "registry_id", namespace: "namespace_id", repository: "repository_id" };

/** The scope a message names (`field`: the message's field name, for errors). */
export function policyScopeFromProto(field: string, scope: ScopeOneof): PolicyScope {
  if (scope.case === undefined) throw invalidArgument(`${field}: one of registry_id, namespace_id and repository_id is required`);
  const kind = KIND_OF_CASE[scope.case];
  return { kind, id: requireId(`${field}.${FIELD_OF_KIND[kind]}`, scope.value) };
}

/** A stored row's scope as the oneof. */
export function policyScopeToProto(row: ScopeIds): ScopeOneof {
  if (row.repositoryId) return { case: "repositoryId", value: row.repositoryId };
  if (row.namespaceId) return { case: "namespaceId", value: row.namespaceId };
  return { case: "registryId", value: row.registryId };
}

/** A List request's scope filter: at most one of the three ids; none → undefined (every scope). */
export function policyScopeFilter(req: { registryId: string; namespaceId: string; repositoryId: string }): PolicyScope | undefined {
  const given = (Object.entries(FIELD_OF_KIND) as [PolicyScopeKind, string][])
    .map(([kind, field]) => ({ kind, field, value: req[`${kind}Id`] }))
    .filter((f) => f.value !== "");
  if (given.length > 1) throw invalidArgument(`${given[1]!.field}: set at most one of registry_id, namespace_id and repository_id`);
  const [one] = given;
  return one && { kind: one.kind, id: requireId(one.field, one.value) };
}
