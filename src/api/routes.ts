import type { ConnectRouter } from "@connectrpc/connect";
import { NamespaceService } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryService } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";
import { GarbageCollectionService } from "../../gen/artifact/v1/garbage_collection_pb.js";
import { ImageService } from "../../gen/artifact/v1/image_pb.js";
import { AccountService } from "../../gen/artifact/v1/account_pb.js";
import { AuditService } from "../../gen/artifact/v1/audit_pb.js";
import { RoleBindingService } from "../../gen/artifact/v1/role_binding_pb.js";
import { TokenService } from "../../gen/artifact/v1/token_pb.js";
import { EventService } from "../../gen/artifact/v1/event_pb.js";
import { WebhookService } from "../../gen/artifact/v1/webhook_pb.js";
import type { Authenticator } from "../auth/authenticator.js";
import type { Events } from "../events/index.js";
import { eventService } from "./event-service.js";
import { webhookService } from "./webhook-service.js";
import { ImmutabilityRuleService } from "../../gen/artifact/v1/immutability_rule_pb.js";
import { RetentionService } from "../../gen/artifact/v1/retention_pb.js";
import type { Registries } from "../registry/index.js";
import type { Sealer } from "../secrets.js";
import type { GcOptions } from "../store/gc.js";
import type { Store } from "../store/index.js";
import type { RegistryUpstreams } from "../upstream/registries.js";
import { accountService } from "./account-service.js";
import { auditService } from "./audit-service.js";
import { garbageCollectionService } from "./gc-service.js";
import { immutabilityRuleService } from "./immutability-rule-service.js";
import { retentionService } from "./retention-service.js";
import { roleBindingService } from "./role-binding-service.js";
import { tokenService } from "./token-service.js";
import { imageService } from "./image-service.js";
import { namespaceService } from "./namespace-service.js";
import { registryService } from "./registry-service.js";
import { repositoryService } from "./repository-service.js";
import type { SyncSettings } from "../sync/registry-sync.js";
import { syncService } from "./sync-service.js";
import { tagService } from "./tag-service.js";

export interface ApiDeps {
  store: Store;
  sealer: Sealer;
  /** Grace period and upload expiry for RunGarbageCollection (the collector is store.gc). */
  gc: Omit<GcOptions, "dryRun">;
  upstreams: RegistryUpstreams;
  /** The image core (src/registry): what /v2/ and ImageService read and write images through. */
  registries: Registries;
  sync: SyncSettings;
  /** Who calls; also checks a password asked again (current_password) through the sign-in throttle. */
  authenticator: Authenticator;
  /**
   * An account, token or role binding changed: this process forgets the credentials it cached so
   * the change applies at once here (other replicas see it within their 10 s cache).
   */
  identityChanged?: () => void;
  /** The outbox's notices (WatchEvents), the webhook sender (TestWebhook, the URL check), pull events (/v2/). */
  events: Pick<Events, "hub" | "sender" | "pulls">;
}

/** Every artifact.v1 service, as routes: a plain function that neither listens nor starts anything. */
export function apiRoutes(deps: ApiDeps) {
  return (router: ConnectRouter) => {
    router.service(RegistryService, {
      ...registryService(deps.store, deps.sealer, deps.upstreams),
      ...syncService(deps.store, deps.upstreams, deps.sync),
    });
    router.service(NamespaceService, namespaceService(deps.store));
    router.service(RepositoryService, repositoryService(deps.store));
    router.service(TagService, tagService(deps.store));
    router.service(GarbageCollectionService, garbageCollectionService(deps.store.gc, deps.gc));
    router.service(ImageService, imageService(deps.registries, deps.store.pageTokens));
    router.service(AccountService, accountService(deps.store, deps.authenticator, deps.identityChanged));
    router.service(TokenService, tokenService(deps.store, deps.identityChanged));
    router.service(RoleBindingService, roleBindingService(deps.store, deps.identityChanged));
    router.service(AuditService, auditService(deps.store));
    router.service(EventService, eventService(deps.store, deps.events.hub));
    router.service(WebhookService, webhookService(deps.store, deps.sealer, deps.events.sender));
    router.service(ImmutabilityRuleService, immutabilityRuleService(deps.store));
    router.service(RetentionService, retentionService(deps.store));
  };
}

/** The services the server offers, for health checks and reflection. */
export const apiServices = [
  RegistryService,
  NamespaceService,
  RepositoryService,
  TagService,
  GarbageCollectionService,
  ImageService,
  AccountService,
  TokenService,
  RoleBindingService,
  AuditService,
  EventService,
  WebhookService,
  ImmutabilityRuleService,
  RetentionService,
] as const;
