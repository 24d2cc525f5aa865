// Rows to messages. Only here do database rows meet protobuf types.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NamespaceSchema, type Namespace } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryKind, RegistrySchema, type Registry } from "../../gen/artifact/v1/registry_pb.js";
import { RepositorySchema, type Repository } from "../../gen/artifact/v1/repository_pb.js";
import { TagSchema, type Tag } from "../../gen/artifact/v1/tag_pb.js";
import { AccountKind, AccountSchema, type Account } from "../../gen/artifact/v1/account_pb.js";
import { AuditEventSchema, AuditOutcome, type AuditEvent } from "../../gen/artifact/v1/audit_pb.js";
import { Role, RoleBindingSchema, RoleScope, type RoleBinding } from "../../gen/artifact/v1/role_binding_pb.js";
import { TokenSchema, type Token } from "../../gen/artifact/v1/token_pb.js";
import { EventSchema, type Event } from "../../gen/artifact/v1/event_pb.js";
import { DeliverySchema, DeliveryStatus, WebhookSchema, type Delivery, type Webhook } from "../../gen/artifact/v1/webhook_pb.js";
import { ImmutabilityRuleSchema, type ImmutabilityRule } from "../../gen/artifact/v1/immutability_rule_pb.js";
import type { Role as RoleName } from "../domain/roles.js";
import type {
  AccountRow,
  AuditRow,
  DeliveryView,
  EventRow,
  ImmutabilityRuleView,
  ListRequest,
  NamespaceView,
  RegistryRow,
  RepositoryView,
  RoleBindingView,
  TagView,
  TokenRow,
  WebhookView,
} from "../store/index.js";
import { policyScopeToProto } from "./policy-scope.js";

const KINDS = { hosted: RegistryKind.HOSTED, remote: RegistryKind.REMOTE } as const;

export function registryKindFromProto(kind: RegistryKind): RegistryRow["kind"] | undefined {
  if (kind === RegistryKind.HOSTED) return "hosted";
  if (kind === RegistryKind.REMOTE) return "remote";
  return undefined;
}

const common = (row: { id: string; version: number; createTime: Date; updateTime: Date }) => ({
  id: row.id,
  etag: String(row.version),
  createTime: timestampFromDate(row.createTime),
  updateTime: timestampFromDate(row.updateTime),
});

export function registryToProto(row: RegistryRow): Registry {
  return create(RegistrySchema, {
    ...common(row),
    name: row.name,
    kind: KINDS[row.kind],
    url: row.url,
    insecure: row.insecure,
    description: row.description,
    hasCredential: row.credentialSealed !== null,
    autoCreate: row.kind === "hosted" ? row.autoCreate : undefined,
    syncFilter: row.kind === "remote" ? { repositoryPrefix: row.syncRepositoryPrefix, tagPattern: row.syncTagPattern } : undefined,
    public: row.public,
  });
}

export function namespaceToProto(row: NamespaceView): Namespace {
  return create(NamespaceSchema, {
    ...common(row),
    registryId: row.registryId,
    name: row.name,
    description: row.description,
    public: row.public,
    fullName: row.fullName,
  });
}

export function repositoryToProto(row: RepositoryView): Repository {
  return create(RepositorySchema, {
    ...common(row),
    namespaceId: row.namespaceId,
    name: row.name,
    description: row.description,
    fullName: row.fullName,
    registryId: row.registryId,
  });
}

export function tagToProto(row: TagView): Tag {
  return create(TagSchema, {
    ...common(row),
    repositoryId: row.repositoryId,
    namespaceId: row.namespaceId,
    registryId: row.registryId,
    fullName: row.fullName,
    name: row.name,
    digest: row.digest,
    mediaType: row.mediaType,
    sizeBytes: BigInt(row.sizeBytes),
    pushTime: timestampFromDate(row.pushTime),
    lastPullTime: row.lastPullTime ? timestampFromDate(row.lastPullTime) : undefined,
  });
}

/** The paging fields every List request has. */
export function listRequest(req: { pageSize: number; pageToken: string; orderBy: string; query: string }): ListRequest {
  return { pageSize: req.pageSize, pageToken: req.pageToken, orderBy: req.orderBy, query: req.query };
}

export function accountKindFromProto(kind: AccountKind): AccountRow["kind"] | undefined {
  if (kind === AccountKind.USER) return "user";
  if (kind === AccountKind.ROBOT) return "robot";
  return undefined;
}

export function accountToProto(row: AccountRow): Account {
  return create(AccountSchema, {
    ...common(row),
    name: row.name,
    kind: row.kind === "user" ? AccountKind.USER : AccountKind.ROBOT,
    description: row.description,
    hasPassword: row.passwordHash !== null,
    disabled: row.disabled,
  });
}

const optionalTime = (date: Date | null) => (date ? timestampFromDate(date) : undefined);

export function tokenToProto(row: TokenRow, accountName: string): Token {
  return create(TokenSchema, {
    id: row.id,
    accountId: row.accountId,
    accountName,
    name: row.name,
    expireTime: optionalTime(row.expireTime),
    lastUseTime: optionalTime(row.lastUseTime),
    revokeTime: optionalTime(row.revokeTime),
    createTime: timestampFromDate(row.createTime),
  });
}

const ROLES_TO_PROTO: Record<RoleName, Role> = { reader: Role.READER, writer: Role.WRITER, admin: Role.ADMIN };

export function roleFromProto(role: Role): RoleName | undefined {
  return (Object.keys(ROLES_TO_PROTO) as RoleName[]).find((r) => ROLES_TO_PROTO[r] === role);
}

export function roleBindingToProto(view: RoleBindingView): RoleBinding {
  return create(RoleBindingSchema, {
    id: view.id,
    accountId: view.accountId,
    role: ROLES_TO_PROTO[view.role],
    scope: view.namespaceId ? RoleScope.NAMESPACE : view.registryId ? RoleScope.REGISTRY : RoleScope.GLOBAL,
    scopeId: view.namespaceId ?? view.registryId ?? "",
    accountName: view.accountName,
    scopeName: view.scopeName,
    createTime: timestampFromDate(view.createTime),
  });
}

export function immutabilityRuleToProto(view: ImmutabilityRuleView): ImmutabilityRule {
  return create(ImmutabilityRuleSchema, {
    ...common(view),
    scope: policyScopeToProto(view),
    tagPattern: view.tagPattern,
    description: view.description,
    scopeName: view.scopeName,
  });
}

const OUTCOMES = { success: AuditOutcome.SUCCESS, denied: AuditOutcome.DENIED, failure: AuditOutcome.FAILURE } as const;

export function auditEventToProto(row: AuditRow): AuditEvent {
  return create(AuditEventSchema, {
    id: row.id,
    eventTime: timestampFromDate(row.eventTime),
    actorId: row.actorId ?? "",
    actorName: row.actorName,
    action: row.action,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    resourceName: row.resourceName,
    requestId: row.requestId,
    clientAddress: row.clientAddress,
    outcome: OUTCOMES[row.outcome],
    detail: row.detail,
  });
}

export function eventToProto(row: EventRow): Event {
  const d = row.data;
  return create(EventSchema, {
    position: BigInt(row.position),
    id: row.id,
    source: row.source,
    type: row.type,
    subject: row.subject,
    time: timestampFromDate(row.time),
    registryId: row.registryId,
    namespaceId: row.namespaceId ?? "",
    repositoryId: row.repositoryId ?? "",
    data: {
      registry: d.registry,
      namespace: d.namespace ?? "",
      repository: d.repository ?? "",
      tag: d.tag ?? "",
      digest: d.digest ?? "",
      mediaType: d.mediaType ?? "",
      sizeBytes: BigInt(d.sizeBytes ?? 0),
      previousDigest: d.previousDigest ?? "",
      tags: d.tags ?? [],
      reason: d.reason ?? "",
      sync: d.sync && { ...d.sync, error: d.sync.error ?? "" },
      actor: d.actor && { id: d.actor.id ?? "", name: d.actor.name },
    },
  });
}

export function webhookToProto(view: WebhookView): Webhook {
  return create(WebhookSchema, {
    ...common(view),
    registryId: view.registryId,
    namespaceId: view.namespaceId ?? "",
    url: view.url,
    eventTypes: view.eventTypes,
    enabled: view.enabled,
    description: view.description,
    scopeName: view.scopeName,
  });
}

const DELIVERY_STATUSES = { pending: DeliveryStatus.PENDING, delivered: DeliveryStatus.DELIVERED, failed: DeliveryStatus.FAILED } as const;

export function deliveryStatusFromProto(status: DeliveryStatus): DeliveryView["status"] | undefined {
  return (Object.keys(DELIVERY_STATUSES) as DeliveryView["status"][]).find((s) => DELIVERY_STATUSES[s] === status);
}

export function deliveryToProto(view: DeliveryView): Delivery {
  return create(DeliverySchema, {
    id: view.id,
    webhookId: view.webhookId,
    eventId: view.eventId,
    eventType: view.eventType,
    eventPosition: BigInt(view.eventPosition),
    subject: view.subject,
    status: DELIVERY_STATUSES[view.status],
    attempts: view.attempts,
    responseStatus: view.responseStatus ?? 0,
    lastError: view.lastError,
    lastAttemptTime: optionalTime(view.lastAttemptTime),
    nextAttemptTime: view.status === "pending" ? timestampFromDate(view.nextAttemptTime) : undefined,
    createTime: timestampFromDate(view.createTime),
  });
}
