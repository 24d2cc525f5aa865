// Identity for tests: a server with auth ON (no anonymous admin) and a known admin token, clients
// that send a credential, and one-call helpers for accounts, tokens and role bindings.
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AccountKind, AccountService } from "../../gen/artifact/v1/account_pb.js";
import { AuditService } from "../../gen/artifact/v1/audit_pb.js";
import { Role, RoleBindingService, RoleScope } from "../../gen/artifact/v1/role_binding_pb.js";
import { TokenService } from "../../gen/artifact/v1/token_pb.js";
import { ImmutabilityRuleService } from "../../gen/artifact/v1/immutability_rule_pb.js";
import { RetentionService } from "../../gen/artifact/v1/retention_pb.js";
import type { Logger } from "pino";
import type { Config } from "../../src/config.js";
import type { StartOptions } from "../../src/server.js";
import { catalogClients, unique, type Clients } from "./clients.js";
import type { DatabaseKind } from "./database.js";
import { ADMIN_TOKEN } from "./credentials.js";
import { startTestServer, type TestServer } from "./server.js";

export { ADMIN_TOKEN };

/** Auth on: nobody is an admin but the bootstrap's admin (ADMIN_TOKEN). */
export function authConfig(overrides: Partial<Config["auth"]> = {}): Pick<Config, "auth"> {
  return { auth: { anonymousAdmin: false, service: "artifact-service", tokenTtlSeconds: 300, adminToken: ADMIN_TOKEN, ...overrides } };
}

/** `settings`: identity settings beyond authConfig(); `auth`: the brute-force timings (StartOptions). */
export async function startAuthServer(
  kind: DatabaseKind,
  options: { settings?: Partial<Config["auth"]>; config?: Partial<Config>; log?: Logger } & StartOptions = {},
): Promise<TestServer> {
  const { settings, config, ...start } = options;
  return startTestServer(kind, { ...start, config: { ...authConfig(settings), ...config } });
}

/** Sends `Authorization: <value>` on every call (nothing when undefined). */
export function authorization(value: string | undefined): Interceptor {
  return (next) => (req) => {
    if (value !== undefined) req.header.set("authorization", value);
    return next(req);
  };
}

export const bearer = (token: string) => authorization(`Bearer ${token}`);

export const basic = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;

/** Every service's client over Connect JSON with this credential. */
export function identityClients(baseUrl: string, token?: string, transport?: Transport) {
  const t = transport ?? createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: token ? [bearer(token)] : [] });
  return {
    ...catalogClients(t),
    accounts: createClient(AccountService, t),
    tokens: createClient(TokenService, t),
    roleBindings: createClient(RoleBindingService, t),
    audit: createClient(AuditService, t),
    immutabilityRules: createClient(ImmutabilityRuleService, t),
    retention: createClient(RetentionService, t),
  };
}

export type IdentityClients = ReturnType<typeof identityClients> & Clients;

export interface TestAccount {
  id: string;
  name: string;
  password?: string;
  token: string;
  clients: IdentityClients;
}

/** A user (with a password) or robot, with an API token, and clients that use it. */
export async function createAccount(admin: IdentityClients, baseUrl: string, options: { robot?: boolean; name?: string } = {}): Promise<TestAccount> {
  const name = options.name ?? unique(options.robot ? "robot" : "user").replace(/-/g, ".");
  const password = options.robot ? undefined : `pw-${name}-0123456789`;
  const account = await admin.accounts.createAccount({
    account: { name, kind: options.robot ? AccountKind.ROBOT : AccountKind.USER, password: password ?? "" },
  });
  const { secret } = await admin.tokens.createToken({ accountId: account.id, name: "test" });
  return { id: account.id, name, password, token: secret, clients: identityClients(baseUrl, secret) };
}

export type ScopeTarget = { global: true } | { registryId: string } | { namespaceId: string };

export async function bindRole(admin: IdentityClients, accountId: string, role: "reader" | "writer" | "admin", target: ScopeTarget) {
  const roleValue = { reader: Role.READER, writer: Role.WRITER, admin: Role.ADMIN }[role];
  const [scope, scopeId] =
    "global" in target ? [RoleScope.GLOBAL, ""] : "registryId" in target ? [RoleScope.REGISTRY, target.registryId] : [RoleScope.NAMESPACE, target.namespaceId];
  return admin.roleBindings.createRoleBinding({ roleBinding: { accountId, role: roleValue, scope, scopeId } });
}
