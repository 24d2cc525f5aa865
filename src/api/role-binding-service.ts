import type { ServiceImpl } from "@connectrpc/connect";
import { RoleBindingService, RoleScope } from "../../gen/artifact/v1/role_binding_pb.js";
import { adminScope } from "../auth/policy.js";
import { failedPrecondition, invalidArgument } from "../domain/errors.js";
import type { Store } from "../store/index.js";
import type { ScopeRequest } from "../store/role-bindings.js";
import { auditTrail, callerOf } from "./caller.js";
import { listRequest, roleBindingToProto, roleFromProto } from "./convert.js";
import { optionalId, requireId, requireMessage } from "./validate.js";

const NOBODY = "00000000-0000-0000-0000-000000000000";

function scopeRequest(field: string, scope: RoleScope, id: string): ScopeRequest {
  if (scope === RoleScope.GLOBAL) {
    if (id !== "") throw invalidArgument(`${field}_id: must be empty for ROLE_SCOPE_GLOBAL`);
    return { kind: "global" };
  }
  if (scope === RoleScope.REGISTRY) return { kind: "registry", id: requireId(`${field}_id`, id) };
  if (scope === RoleScope.NAMESPACE) return { kind: "namespace", id: requireId(`${field}_id`, id) };
  throw invalidArgument(`${field}: must be ROLE_SCOPE_GLOBAL, ROLE_SCOPE_REGISTRY or ROLE_SCOPE_NAMESPACE`);
}

const SCOPE_KINDS: Partial<Record<RoleScope, "global" | "registry" | "namespace">> = {
  [RoleScope.GLOBAL]: "global",
  [RoleScope.REGISTRY]: "registry",
  [RoleScope.NAMESPACE]: "namespace",
};

export function roleBindingService(store: Store, identityChanged: () => void = () => {}): ServiceImpl<typeof RoleBindingService> {
  return {
    async createRoleBinding(req, ctx) {
      const b = requireMessage("role_binding", req.roleBinding);
      const role = roleFromProto(b.role);
      if (!role) throw invalidArgument("role_binding.role: must be ROLE_READER, ROLE_WRITER or ROLE_ADMIN");
      const view = await store.roleBindings.create(
        { accountId: requireId("role_binding.account_id", b.accountId), role, scope: scopeRequest("role_binding.scope", b.scope, b.scopeId) },
        auditTrail(ctx),
      );
      identityChanged();
      return roleBindingToProto(view);
    },

    async getRoleBinding(req) {
      return roleBindingToProto(await store.roleBindings.get(requireId("id", req.id)));
    },

    async deleteRoleBinding(req, ctx) {
      const id = requireId("id", req.id);
      const binding = await store.roleBindings.get(id);
      if (binding.role === "admin" && binding.registryId === null && (await store.roleBindings.otherGlobalAdmins({ exceptBindingId: id })) === 0) {
        throw failedPrecondition("this is the last global admin role of an enabled account; give another account that role first");
      }
      await store.roleBindings.delete(id, auditTrail(ctx));
      identityChanged();
      return {};
    },

    async listRoleBindings(req, ctx) {
      const caller = callerOf(ctx);
      let scope: { kind: "global" | "registry" | "namespace"; id?: string } | undefined;
      if (req.scope !== RoleScope.UNSPECIFIED) {
        const kind = SCOPE_KINDS[req.scope];
        if (!kind) throw invalidArgument(`scope: unknown value ${req.scope}`);
        // Without scope_id: every binding of that kind of scope.
        scope = req.scopeId === "" ? { kind } : scopeRequest("scope", req.scope, req.scopeId);
      } else if (req.scopeId !== "") {
        throw invalidArgument("scope_id: needs scope");
      }
      // One's own bindings, and all those in the scopes where one is an admin.
      const admin = adminScope(caller.principal);
      const visibility = admin ? { ...admin, account: caller.principal.account?.id ?? NOBODY } : undefined;
      const page = await store.roleBindings.list(listRequest({ ...req, query: "" }), { accountId: optionalId("account_id", req.accountId), scope }, visibility);
      return { roleBindings: page.items.map(roleBindingToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },
  };
}
