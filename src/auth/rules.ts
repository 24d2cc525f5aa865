// Every method of every service the port serves, and how it is judged: open (health, reflection),
// a list (anyone may call; the store shows only what the caller may see), a lookup by name (the
// same, for one resource), or a check: the action and where to find the resource in the request. The auth interceptor (src/api/interceptors/auth.ts)
// applies it; test/auth-rules.test.ts fails when a served method has no row here.
import type { DescMethod, DescService, MessageShape } from "@bufbuild/protobuf";
import { AccountService } from "../../gen/artifact/v1/account_pb.js";
import { AuditService } from "../../gen/artifact/v1/audit_pb.js";
import { GarbageCollectionService } from "../../gen/artifact/v1/garbage_collection_pb.js";
import { ImageService } from "../../gen/artifact/v1/image_pb.js";
import { NamespaceService } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryService } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { RoleBindingService, RoleScope } from "../../gen/artifact/v1/role_binding_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";
import { TokenService } from "../../gen/artifact/v1/token_pb.js";
import { EventService } from "../../gen/artifact/v1/event_pb.js";
import { WebhookService } from "../../gen/artifact/v1/webhook_pb.js";
import { ImmutabilityRuleService } from "../../gen/artifact/v1/immutability_rule_pb.js";
import { RetentionService } from "../../gen/artifact/v1/retention_pb.js";
import { Health } from "../../gen/health/v1/health_pb.js";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { AccessStore } from "../store/access.js";
import type { Caller } from "./authenticator.js";
import type { Locator, ScopeRef } from "./locate.js";
import type { Action, Resource } from "./policy.js";

export interface RuleContext {
  caller: Caller;
  locate: Locator;
  access: AccessStore;
}

/** How one method is judged. */
export type Rule =
  /** No credential needed, nothing decided: health checks and reflection. */
  | { kind: "open" }
  /** Anyone may call; the implementation lists only what the caller may see. */
  | { kind: "list" }
  /**
   * Anyone may call; the implementation finds a resource by name among what the caller may see,
   * so a name it may not read is NOT_FOUND, as one that does not exist: names are not secrets
   * the way ids are, and a PERMISSION_DENIED would tell that the name is taken.
   */
  | { kind: "lookup" }
  | {
      kind: "check";
      /** The action; a function when it depends on the request and the resource found. */
      action: Action | ((input: never, resource: Resource) => Action);
      resource: (input: never, ctx: RuleContext) => Promise<Resource> | Resource;
      /**
       * A write's audit action: a refusal is recorded under it, and, with `record: "after"`, the
       * success too (writes whose store records them inside their transaction say "store").
       */
      event?: { action: string; record: "store" | "after" };
    };

type Check<M extends DescMethod> = {
  action: Action | ((input: MessageShape<M["input"]>, resource: Resource) => Action);
  resource?: (input: MessageShape<M["input"]>, ctx: RuleContext) => Promise<Resource> | Resource;
  event?: { action: string; record: "store" | "after" };
};

const SERVICE: Resource = { type: "service" };
const procedure = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;

function check<M extends DescMethod>(method: M, c: Check<M>): [string, Rule] {
  return [procedure(method), { kind: "check", action: c.action, resource: c.resource ?? (() => SERVICE), event: c.event }];
}
const list = (method: DescMethod): [string, Rule] => [procedure(method), { kind: "list" }];
const lookup = (method: DescMethod): [string, Rule] => [procedure(method), { kind: "lookup" }];
const open = (service: DescService): [string, Rule][] => service.methods.map((m) => [procedure(m), { kind: "open" }]);
const store = (action: string) => ({ action, record: "store" as const });
const after = (action: string) => ({ action, record: "after" as const });

const own = (accountId: string, ctx: RuleContext): Resource => ({ type: "account", accountId: accountId || (ctx.caller.principal.account?.id ?? "") });

function scopeRef(scope: RoleScope, id: string): ScopeRef | undefined {
  if (scope === RoleScope.GLOBAL) return { kind: "global" };
  if (scope === RoleScope.REGISTRY) return { kind: "registry", id };
  if (scope === RoleScope.NAMESPACE) return { kind: "namespace", id };
  return undefined;
}

/** A role binding's scope, as a resource (an admin there may manage it). */
async function bindingScope(id: string, ctx: RuleContext): Promise<{ resource: Resource; accountId?: string }> {
  const binding = await ctx.access.roleBinding(id);
  if (!binding) return { resource: { type: "missing", noun: "role binding", id } };
  const ref: ScopeRef = binding.namespaceId
    ? { kind: "namespace", id: binding.namespaceId }
    : binding.registryId
      ? { kind: "registry", id: binding.registryId }
      : { kind: "global" };
  return { resource: await ctx.locate.scope(ref), accountId: binding.accountId };
}

/** A webhook's scope, as a resource (its admins manage it). */
async function webhookScope(id: string, ctx: RuleContext): Promise<Resource> {
  const webhook = await ctx.access.webhook(id);
  if (!webhook) return { type: "missing", noun: "webhook", id: id.length > 100 ? `${id.slice(0, 100)}…` : id };
  return webhook.namespaceId ? ctx.locate.namespace(webhook.namespaceId) : ctx.locate.registry(webhook.registryId);
}

/** Where an immutability rule is set (an admin there manages it; a reader there reads it). */
async function immutabilityRuleScope(id: string, ctx: RuleContext): Promise<Resource> {
  const rule = await ctx.access.immutabilityRule(id);
  if (!rule) return { type: "missing", noun: "immutability rule", id };
  if (rule.repositoryId) return ctx.locate.repository(rule.repositoryId);
  return rule.namespaceId ? ctx.locate.namespace(rule.namespaceId) : ctx.locate.registry(rule.registryId);
}

/** Where a retention policy is set (an admin there manages it; a reader there reads it). */
async function retentionPolicyScope(id: string, ctx: RuleContext): Promise<Resource> {
  const policy = await ctx.access.retentionPolicy(id);
  if (!policy) return { type: "missing", noun: "retention policy", id };
  if (policy.repositoryId) return ctx.locate.repository(policy.repositoryId);
  return policy.namespaceId ? ctx.locate.namespace(policy.namespaceId) : ctx.locate.registry(policy.registryId);
}

/** The scope a new policy names (its `scope` oneof), unchecked: an id that is no UUID finds nothing. */
function newPolicyScope(
  scope: { case: "registryId" | "namespaceId" | "repositoryId" | undefined; value?: string },
  ctx: RuleContext,
): Promise<Resource> | Resource {
  if (scope.case === undefined) return SERVICE;
  const kind = ({ registryId: "registry", namespaceId: "namespace", repositoryId: "repository" } as const)[scope.case];
  return ctx.locate.policyScope({ kind, id: scope.value ?? "" });
}

async function tokenOwner(id: string, ctx: RuleContext): Promise<Resource> {
  const accountId = await ctx.access.tokenAccount(id);
  return accountId ? { type: "account", accountId } : { type: "missing", noun: "token", id };
}

/** Making a namespace public (or private) is an admin's decision; the rest of an update a writer's. */
function namespaceUpdate(input: MessageShape<typeof NamespaceService.method.updateNamespace.input>, resource: Resource): Action {
  const paths = input.updateMask?.paths ?? [];
  const all = paths.length === 0 || (paths.length === 1 && paths[0] === "*");
  const current = resource.type === "namespace" ? resource.namespace.public : false;
  const touchesPublic = paths.includes("public") || (all && (input.namespace?.public ?? false) !== current);
  return touchesPublic ? "manage" : "write";
}

const RULES: [string, Rule][] = [
  // RegistryService
  check(RegistryService.method.createRegistry, { action: "administer", event: store("registry.create") }),
  check(RegistryService.method.getRegistry, { action: "read", resource: (r, ctx) => ctx.locate.registry(r.id) }),
  lookup(RegistryService.method.lookupRegistry),
  check(RegistryService.method.updateRegistry, { action: "administer", event: store("registry.update") }),
  check(RegistryService.method.deleteRegistry, { action: "administer", event: store("registry.delete") }),
  list(RegistryService.method.listRegistries),
  check(RegistryService.method.pingRegistry, { action: "manage", resource: (r, ctx) => ctx.locate.registry(r.id) }),
  check(RegistryService.method.syncRegistry, { action: "manage", resource: (r, ctx) => ctx.locate.registry(r.id), event: after("registry.sync") }),
  // NamespaceService
  check(NamespaceService.method.createNamespace, {
    action: (r) => (r.namespace?.public ? "manage" : "write"),
    resource: (r, ctx) => ctx.locate.registry(r.namespace?.registryId ?? ""),
    event: store("namespace.create"),
  }),
  check(NamespaceService.method.getNamespace, { action: "read", resource: (r, ctx) => ctx.locate.namespace(r.id) }),
  lookup(NamespaceService.method.lookupNamespace),
  check(NamespaceService.method.updateNamespace, {
    action: namespaceUpdate,
    resource: (r, ctx) => ctx.locate.namespace(r.namespace?.id ?? ""),
    event: store("namespace.update"),
  }),
  check(NamespaceService.method.deleteNamespace, { action: "delete", resource: (r, ctx) => ctx.locate.namespace(r.id), event: store("namespace.delete") }),
  list(NamespaceService.method.listNamespaces),
  // RepositoryService
  check(RepositoryService.method.createRepository, {
    action: "write",
    resource: (r, ctx) => ctx.locate.namespace(r.repository?.namespaceId ?? ""),
    event: store("repository.create"),
  }),
  check(RepositoryService.method.getRepository, { action: "read", resource: (r, ctx) => ctx.locate.repository(r.id) }),
  lookup(RepositoryService.method.lookupRepository),
  check(RepositoryService.method.updateRepository, {
    action: "write",
    resource: (r, ctx) => ctx.locate.repository(r.repository?.id ?? ""),
    event: store("repository.update"),
  }),
  check(RepositoryService.method.deleteRepository, { action: "delete", resource: (r, ctx) => ctx.locate.repository(r.id), event: store("repository.delete") }),
  list(RepositoryService.method.listRepositories),
  list(RepositoryService.method.searchRepositories),
  // TagService: moving a tag (UpdateTag with another digest) is a writer's, like pushing it.
  check(TagService.method.createTag, { action: "write", resource: (r, ctx) => ctx.locate.repository(r.tag?.repositoryId ?? ""), event: store("tag.create") }),
  check(TagService.method.getTag, { action: "read", resource: (r, ctx) => ctx.locate.tag(r.id) }),
  lookup(TagService.method.lookupTag),
  check(TagService.method.updateTag, { action: "write", resource: (r, ctx) => ctx.locate.tag(r.tag?.id ?? ""), event: store("tag.update") }),
  check(TagService.method.deleteTag, { action: "delete", resource: (r, ctx) => ctx.locate.tag(r.id), event: store("tag.delete") }),
  list(TagService.method.listTags),
  list(TagService.method.searchTags),
  // GarbageCollectionService
  check(GarbageCollectionService.method.runGarbageCollection, { action: "administer", event: after("gc.run") }),
  // ImageService: pulls.
  check(ImageService.method.getManifest, { action: "read", resource: (r, ctx) => ctx.locate.image(r.repository) }),
  check(ImageService.method.listReferrers, { action: "read", resource: (r, ctx) => ctx.locate.image(r.repository) }),
  check(ImageService.method.getBlob, { action: "read", resource: (r, ctx) => ctx.locate.image(r.repository) }),
  // AccountService: an account reads itself and changes its own password; the rest is a global admin's.
  check(AccountService.method.createAccount, { action: "administer", event: store("account.create") }),
  check(AccountService.method.getAccount, { action: "self", resource: (r, ctx) => own(r.id, ctx) }),
  check(AccountService.method.updateAccount, {
    action: (r) => (r.updateMask?.paths.length === 1 && r.updateMask.paths[0] === "password" ? "self" : "administer"),
    resource: (r, ctx) => own(r.account?.id ?? "", ctx),
    event: store("account.update"),
  }),
  check(AccountService.method.deleteAccount, { action: "administer", event: store("account.delete") }),
  check(AccountService.method.listAccounts, { action: "administer" }),
  check(AccountService.method.whoAmI, { action: "signed-in" }),
  // TokenService: an account's own tokens are its own business.
  check(TokenService.method.createToken, { action: "self", resource: (r, ctx) => own(r.accountId, ctx), event: store("token.create") }),
  check(TokenService.method.getToken, { action: "self", resource: (r, ctx) => tokenOwner(r.id, ctx) }),
  check(TokenService.method.listTokens, { action: "self", resource: (r, ctx) => own(r.accountId, ctx) }),
  check(TokenService.method.revokeToken, { action: "self", resource: (r, ctx) => tokenOwner(r.id, ctx), event: store("token.revoke") }),
  // RoleBindingService: an admin binds within its scope; an account reads its own bindings.
  check(RoleBindingService.method.createRoleBinding, {
    action: "manage",
    resource: async (r, ctx) => {
      const ref = scopeRef(r.roleBinding?.scope ?? RoleScope.UNSPECIFIED, r.roleBinding?.scopeId ?? "");
      return ref ? ctx.locate.scope(ref) : SERVICE;
    },
    event: store("role_binding.create"),
  }),
  check(RoleBindingService.method.getRoleBinding, {
    action: (_r, resource) => (resource.type === "account" ? "self" : "manage"),
    resource: async (r, ctx) => {
      const { resource, accountId } = await bindingScope(r.id, ctx);
      return accountId !== undefined && accountId === ctx.caller.principal.account?.id ? { type: "account", accountId } : resource;
    },
  }),
  check(RoleBindingService.method.deleteRoleBinding, {
    action: "manage",
    resource: async (r, ctx) => (await bindingScope(r.id, ctx)).resource,
    event: store("role_binding.delete"),
  }),
  check(RoleBindingService.method.listRoleBindings, { action: "signed-in" }),
  // AuditService
  check(AuditService.method.listAuditEvents, { action: "administer" }),
  // EventService: a watch shows only events of what the caller may read.
  list(EventService.method.watchEvents),
  // WebhookService: a webhook is its registry's or namespace's admins' business.
  check(WebhookService.method.createWebhook, {
    action: "manage",
    resource: (r, ctx) => (r.webhook?.namespaceId ? ctx.locate.namespace(r.webhook.namespaceId) : ctx.locate.registry(r.webhook?.registryId ?? "")),
    event: store("webhook.create"),
  }),
  check(WebhookService.method.getWebhook, { action: "manage", resource: (r, ctx) => webhookScope(r.id, ctx) }),
  check(WebhookService.method.updateWebhook, {
    action: "manage",
    resource: (r, ctx) => webhookScope(r.webhook?.id ?? "", ctx),
    event: store("webhook.update"),
  }),
  check(WebhookService.method.deleteWebhook, { action: "manage", resource: (r, ctx) => webhookScope(r.id, ctx), event: store("webhook.delete") }),
  list(WebhookService.method.listWebhooks),
  check(WebhookService.method.listDeliveries, { action: "manage", resource: (r, ctx) => webhookScope(r.webhookId, ctx) }),
  check(WebhookService.method.testWebhook, { action: "manage", resource: (r, ctx) => webhookScope(r.id, ctx) }),
  // ImmutabilityRuleService: an admin of the scope sets rules; whoever may read the scope reads them.
  check(ImmutabilityRuleService.method.createImmutabilityRule, {
    action: "manage",
    resource: (r, ctx) => newPolicyScope(r.immutabilityRule?.scope ?? { case: undefined }, ctx),
    event: store("immutability_rule.create"),
  }),
  check(ImmutabilityRuleService.method.getImmutabilityRule, { action: "read", resource: (r, ctx) => immutabilityRuleScope(r.id, ctx) }),
  check(ImmutabilityRuleService.method.updateImmutabilityRule, {
    action: "manage",
    resource: (r, ctx) => immutabilityRuleScope(r.immutabilityRule?.id ?? "", ctx),
    event: store("immutability_rule.update"),
  }),
  check(ImmutabilityRuleService.method.deleteImmutabilityRule, {
    action: "manage",
    resource: (r, ctx) => immutabilityRuleScope(r.id, ctx),
    event: store("immutability_rule.delete"),
  }),
  list(ImmutabilityRuleService.method.listImmutabilityRules),
  // RetentionService: an admin of the scope sets its policy and runs retention there (without a
  // scope, over every repository: a global admin); whoever may read the scope reads its policy.
  check(RetentionService.method.createRetentionPolicy, {
    action: "manage",
    resource: (r, ctx) => newPolicyScope(r.retentionPolicy?.scope ?? { case: undefined }, ctx),
    event: store("retention_policy.create"),
  }),
  check(RetentionService.method.getRetentionPolicy, { action: "read", resource: (r, ctx) => retentionPolicyScope(r.id, ctx) }),
  check(RetentionService.method.updateRetentionPolicy, {
    action: "manage",
    resource: (r, ctx) => retentionPolicyScope(r.retentionPolicy?.id ?? "", ctx),
    event: store("retention_policy.update"),
  }),
  check(RetentionService.method.deleteRetentionPolicy, {
    action: "manage",
    resource: (r, ctx) => retentionPolicyScope(r.id, ctx),
    event: store("retention_policy.delete"),
  }),
  list(RetentionService.method.listRetentionPolicies),
  check(RetentionService.method.runRetention, {
    action: "manage",
    resource: (r, ctx) => newPolicyScope(r.scope, ctx),
    event: after("retention.run"),
  }),
  // Probes and schema: no credential (load balancers, grpcurl's reflection).
  ...open(Health),
  ...open(ServerReflectionV1),
  ...open(ServerReflectionV1alpha),
];

/** The rules by procedure (`/artifact.v1.TagService/GetTag`). */
export const rules: ReadonlyMap<string, Rule> = new Map(RULES);
