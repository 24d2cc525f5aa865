import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { AccountKind, AccountSchema, AccountService, type WhoAmIResponseSchema } from "../../gen/artifact/v1/account_pb.js";
import { RoleBindingSchema, Role, RoleScope } from "../../gen/artifact/v1/role_binding_pb.js";
import type { Authenticator } from "../auth/authenticator.js";
import { clientAddressKey } from "../auth/context.js";
import { hashPassword } from "../auth/passwords.js";
import { decide } from "../auth/policy.js";
import { DomainError, failedPrecondition, invalidArgument } from "../domain/errors.js";
import { checkAccountName, checkDescription, checkPassword } from "../domain/names.js";
import type { AccountPatch } from "../store/accounts.js";
import type { Store } from "../store/index.js";
import { auditTrail, callerOf } from "./caller.js";
import { requestIdKey } from "./interceptors/call.js";
import { accountKindFromProto, accountToProto, listRequest, roleBindingToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { requireId, requireMessage, validate } from "./validate.js";

export function accountService(
  store: Store,
  passwords: Pick<Authenticator, "confirmPassword">,
  identityChanged: () => void = () => {},
): ServiceImpl<typeof AccountService> {
  /** A change that would leave no enabled global admin is refused: nobody could sign in to undo it. */
  const keepAnAdmin = async (accountId: string) => {
    const bindings = await store.roleBindings.forAccount(accountId);
    if (!bindings.some((b) => b.role === "admin" && b.scope.kind === "global")) return;
    if ((await store.roleBindings.otherGlobalAdmins({ exceptAccountId: accountId })) === 0) {
      throw failedPrecondition("this is the last enabled account with the global admin role; give another account that role first");
    }
  };

  return {
    async createAccount(req, ctx) {
      const a = requireMessage("account", req.account);
      const kind = accountKindFromProto(a.kind);
      if (!kind) throw invalidArgument("account.kind: must be ACCOUNT_KIND_USER or ACCOUNT_KIND_ROBOT");
      if (kind === "robot" && a.password !== "") throw invalidArgument("account.password: a robot has no password; it signs in with API tokens");
      const password = a.password === "" ? null : await hashPassword(validate("account.password", a.password, checkPassword));
      const row = await store.accounts.create(
        {
          name: validate("account.name", a.name, checkAccountName),
          kind,
          description: validate("account.description", a.description, checkDescription),
          passwordHash: password,
          disabled: a.disabled,
        },
        auditTrail(ctx),
      );
      return accountToProto(row);
    },

    async getAccount(req) {
      return accountToProto(await store.accounts.get(requireId("id", req.id)));
    },

    async updateAccount(req, ctx) {
      const a = requireMessage("account", req.account);
      const id = requireId("account.id", a.id);
      const fields = fieldsToUpdate(AccountSchema, req.updateMask, (f) => f === "password" && a.password !== "");
      const patch: AccountPatch = {};
      if (fields.has("description")) patch.description = validate("account.description", a.description, checkDescription);
      if (fields.has("disabled")) {
        if (a.disabled) await keepAnAdmin(id);
        patch.disabled = a.disabled;
      }
      if (fields.has("password")) {
        const caller = callerOf(ctx);
        const self = caller.principal.account?.id === id;
        // Someone who holds a session (a token) of an account must not take it over by changing
        // its password: without the global admin role the current one is asked for.
        // The check is a password guess like a sign-in: throttled, counted and audited as one
        // (docs/identity.md, "Brute force"), or a stolen token would be a password oracle.
        if (self && !decide(caller.principal, "administer", { type: "service" }).allowed) {
          if (req.currentPassword === "") throw invalidArgument("current_password: is required to change the account's own password");
          const current = await store.accounts.get(id);
          const info = { requestId: ctx.values.get(requestIdKey), clientAddress: ctx.values.get(clientAddressKey) };
          if (!(await passwords.confirmPassword(current, req.currentPassword, info))) {
            throw new DomainError("permission-denied", "current_password: does not match the account's password");
          }
        }
        patch.passwordHash = a.password === "" ? null : await hashPassword(validate("account.password", a.password, checkPassword));
      }
      const row = await store.accounts.update(id, patch, a.etag, auditTrail(ctx));
      identityChanged();
      return accountToProto(row);
    },

    async deleteAccount(req, ctx) {
      const id = requireId("id", req.id);
      await keepAnAdmin(id);
      await store.accounts.delete(id, { etag: req.etag }, auditTrail(ctx));
      identityChanged();
      return {};
    },

    async listAccounts(req) {
      const kind = req.kind === AccountKind.UNSPECIFIED ? undefined : accountKindFromProto(req.kind);
      if (req.kind !== AccountKind.UNSPECIFIED && !kind) throw invalidArgument(`kind: unknown value ${req.kind}`);
      const page = await store.accounts.list(listRequest(req), { kind });
      return { accounts: page.items.map(accountToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async whoAmI(_req, ctx): Promise<MessageInitShape<typeof WhoAmIResponseSchema>> {
      const caller = callerOf(ctx);
      const account = caller.principal.account;
      if (!account) {
        // AUTH_ANONYMOUS_ADMIN: nobody, with the global admin role the switch gives everyone.
        const binding = create(RoleBindingSchema, { role: Role.ADMIN, scope: RoleScope.GLOBAL, accountName: "anonymous" });
        return { roleBindings: [binding], authenticatedBy: "anonymous" };
      }
      const [row, bindings] = await Promise.all([
        store.accounts.get(account.id),
        store.roleBindings.list({ pageSize: 1000, pageToken: "", orderBy: "", query: "" }, { accountId: account.id }),
      ]);
      return { account: accountToProto(row), roleBindings: bindings.items.map(roleBindingToProto), authenticatedBy: caller.via };
    },
  };
}
