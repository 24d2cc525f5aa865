// Roles and where they apply (docs/identity.md): the vocabulary the policy (src/auth/policy.ts)
// and the role-binding store share.

export type Role = "reader" | "writer" | "admin";

export type BindingScope = { kind: "global" } | { kind: "registry"; registryId: string } | { kind: "namespace"; registryId: string; namespaceId: string };

export interface Binding {
  role: Role;
  scope: BindingScope;
}
