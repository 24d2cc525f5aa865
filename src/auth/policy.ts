// The one decision: may this principal do this action to this resource? Pure (no I/O): the
// callers find the principal (src/auth/authenticator.ts) and the resource with its parents
// (src/auth/rules.ts, src/auth/registry-access.ts), and map a denial to their protocol
// (UNAUTHENTICATED / PERMISSION_DENIED, 401 / 403). docs/identity.md explains the model.

import type { Binding, BindingScope, Role } from "../domain/roles.js";

export type { Binding, Role } from "../domain/roles.js";

const LEVEL: Record<Role, number> = { reader: 1, writer: 2, admin: 3 };

export interface Principal {
  /** Absent: anonymous. */
  account?: { id: string; name: string; kind: "user" | "robot" };
  bindings: readonly Binding[];
}

export interface RegistryRef {
  id: string;
  name: string;
  public: boolean;
}

export interface NamespaceRef {
  id: string;
  name: string;
  public: boolean;
}

export type Resource =
  /** The service as a whole (registries, garbage collection, accounts, the audit log). */
  | { type: "service" }
  /** `publicNamespace`: some namespace in it is public, so everyone may see the registry. */
  | { type: "registry"; registry: RegistryRef; publicNamespace?: boolean }
  | { type: "namespace"; registry: RegistryRef; namespace: NamespaceRef }
  /** `namespace` absent: it does not exist yet (a push creates it), so only the registry's scope applies. */
  | { type: "repository"; registry: RegistryRef; namespace?: NamespaceRef; namespaceName: string; repository: string }
  | { type: "account"; accountId: string }
  /** Nothing answers to this id or name: only a global role can decide (the call then finds nothing). */
  | { type: "missing"; noun: string; id: string };

export type Action =
  /** Get, list, pull. */
  | "read"
  /** Push, create, update, move tags. */
  | "write"
  | "delete"
  /** Sync, ping, make public, bind roles, set immutability rules: admin in scope. */
  | "manage"
  /** Only a global admin. */
  | "administer"
  /** The account's own (resource: that account), or a global admin. */
  | "self"
  /** Any signed-in account. */
  | "signed-in";

export type Decision = { allowed: true } | { allowed: false; needs: string };

const ALLOWED: Decision = { allowed: true };

const REQUIRED: Record<Exclude<Action, "self" | "signed-in">, Role> = {
  read: "reader",
  write: "writer",
  delete: "admin",
  manage: "admin",
  administer: "admin",
};

export function decide(principal: Principal, action: Action, resource: Resource): Decision {
  if (action === "signed-in") {
    return principal.account || isGlobal(principal, "admin") ? ALLOWED : { allowed: false, needs: "needs to be signed in" };
  }
  if (action === "self") {
    if (resource.type === "account" && principal.account?.id === resource.accountId) return ALLOWED;
    return isGlobal(principal, "admin") ? ALLOWED : { allowed: false, needs: "needs to be that account, or admin at global scope" };
  }
  const role = REQUIRED[action];
  if (action === "read" && isPublic(resource)) return ALLOWED;
  if (action === "administer" || resource.type === "service" || resource.type === "account") {
    return isGlobal(principal, role) ? ALLOWED : { allowed: false, needs: `needs ${role} at global scope` };
  }
  if (resource.type === "missing") {
    return isGlobal(principal, role) ? ALLOWED : { allowed: false, needs: `needs ${role} on ${resource.noun} ${resource.id}` };
  }
  for (const b of principal.bindings) {
    if (LEVEL[b.role] >= LEVEL[role] && covers(b.scope, resource)) return ALLOWED;
  }
  // Someone with a role inside a registry may see the registry itself (to find their namespace).
  if (
    action === "read" &&
    resource.type === "registry" &&
    principal.bindings.some((b) => b.scope.kind === "namespace" && b.scope.registryId === resource.registry.id)
  ) {
    return ALLOWED;
  }
  return { allowed: false, needs: `needs ${role} on ${scopeName(resource)}` };
}

function isGlobal(principal: Principal, role: Role): boolean {
  return principal.bindings.some((b) => b.scope.kind === "global" && LEVEL[b.role] >= LEVEL[role]);
}

function isPublic(resource: Resource): boolean {
  switch (resource.type) {
    case "registry":
      return resource.registry.public || resource.publicNamespace === true;
    case "namespace":
      return resource.registry.public || resource.namespace.public;
    case "repository":
      return resource.registry.public || resource.namespace?.public === true;
    default:
      return false;
  }
}

function covers(scope: BindingScope, resource: Extract<Resource, { registry: RegistryRef }>): boolean {
  switch (scope.kind) {
    case "global":
      return true;
    case "registry":
      return scope.registryId === resource.registry.id;
    case "namespace":
      return resource.type !== "registry" && resource.namespace?.id === scope.namespaceId;
  }
}

/** The smallest scope a binding could have to allow an action on `resource`, for messages. */
function scopeName(resource: Extract<Resource, { registry: RegistryRef }>): string {
  if (resource.type === "registry" || !resource.namespace) return `registry ${resource.registry.name}`;
  return `namespace ${resource.registry.name}/${resource.namespace.name}`;
}

/**
 * What a principal may see in lists, beyond what is public: undefined when it may see
 * everything (a global role), else the registries and namespaces its bindings name.
 */
export function readableScope(principal: Principal): { registries: string[]; namespaces: string[] } | undefined {
  return scopeAtLeast(principal, "reader");
}

/** Where a principal is admin (its role bindings there are its to read and manage); undefined: everywhere. */
export function adminScope(principal: Principal): { registries: string[]; namespaces: string[] } | undefined {
  return scopeAtLeast(principal, "admin");
}

function scopeAtLeast(principal: Principal, role: Role): { registries: string[]; namespaces: string[] } | undefined {
  if (isGlobal(principal, role)) return undefined;
  const registries = new Set<string>();
  const namespaces = new Set<string>();
  for (const b of principal.bindings) {
    if (LEVEL[b.role] < LEVEL[role]) continue;
    if (b.scope.kind === "registry") registries.add(b.scope.registryId);
    else if (b.scope.kind === "namespace") namespaces.add(b.scope.namespaceId);
  }
  return { registries: [...registries], namespaces: [...namespaces] };
}
