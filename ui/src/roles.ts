// What the signed-in account may do, from its role bindings (WhoAmI), mirroring the server's policy
// (src/auth/policy.ts): reader < writer < admin, a binding counts in its scope and below it
// (global ⊃ registry ⊃ namespace). Used only to hide buttons that could only fail; the server
// decides every call.
import { Role, RoleScope, type RoleBinding } from "../../gen/artifact/v1/role_binding_pb.js";

export interface Where {
  registryId?: string;
  namespaceId?: string;
}

export class Roles {
  constructor(readonly bindings: readonly RoleBinding[]) {}

  /** The highest role that applies at `where` (a registry, a namespace of one, or everywhere). */
  at(where: Where = {}): Role {
    let best = Role.UNSPECIFIED;
    for (const b of this.bindings) {
      const applies =
        b.scope === RoleScope.GLOBAL ||
        (b.scope === RoleScope.REGISTRY && where.registryId !== undefined && b.scopeId === where.registryId) ||
        (b.scope === RoleScope.NAMESPACE && where.namespaceId !== undefined && b.scopeId === where.namespaceId);
      if (applies && b.role > best) best = b.role;
    }
    return best;
  }

  /** Global admin: registries, garbage collection, accounts, the audit log. */
  get administrator(): boolean {
    return this.at() >= Role.ADMIN;
  }
  canWrite(where: Where): boolean {
    return this.at(where) >= Role.WRITER;
  }
  /** Deleting (tags, repositories, namespaces) is an admin's, as is managing a registry (ping, sync). */
  canDelete(where: Where): boolean {
    return this.at(where) >= Role.ADMIN;
  }
  /** Admin somewhere: may manage the role bindings there. */
  get adminSomewhere(): boolean {
    return this.bindings.some((b) => b.role >= Role.ADMIN);
  }
}
