// The typed clients for every artifact.v1 service, over any Connect transport. The two entry
// points (node.ts, browser.ts) differ only in how they make that transport.
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { AccountService } from "../../gen/artifact/v1/account_pb.js";
import { AuditService } from "../../gen/artifact/v1/audit_pb.js";
import { GarbageCollectionService } from "../../gen/artifact/v1/garbage_collection_pb.js";
import { ImageService } from "../../gen/artifact/v1/image_pb.js";
import { NamespaceService } from "../../gen/artifact/v1/namespace_pb.js";
import { RegistryService } from "../../gen/artifact/v1/registry_pb.js";
import { RepositoryService } from "../../gen/artifact/v1/repository_pb.js";
import { RoleBindingService } from "../../gen/artifact/v1/role_binding_pb.js";
import { TagService } from "../../gen/artifact/v1/tag_pb.js";
import { TokenService } from "../../gen/artifact/v1/token_pb.js";
import { ImmutabilityRuleService } from "../../gen/artifact/v1/immutability_rule_pb.js";
import { EventService } from "../../gen/artifact/v1/event_pb.js";
import { RetentionService } from "../../gen/artifact/v1/retention_pb.js";
import { WebhookService } from "../../gen/artifact/v1/webhook_pb.js";

export type Protocol = "connect" | "grpc" | "grpc-web";

/** What both entry points accept. */
export interface CommonClientOptions {
  /** Wire protocol; default "connect". */
  protocol?: Protocol;
  /** Connect protocol only: protobuf binary instead of JSON (gRPC and gRPC-Web are always binary). Default false. */
  useBinaryFormat?: boolean;
  /** Connect protocol only: read-only methods (Get*, List*) as HTTP GET, which caches and CDNs can keep. Default false. */
  useHttpGet?: boolean;
  /** A deadline for every call that sets none itself (sent as connect-timeout-ms / grpc-timeout). */
  defaultTimeoutMs?: number;
  /**
   * An API token, sent as `Authorization: Bearer <token>` with every call; a function is asked
   * before each call (a page that keeps the token elsewhere, or renews it). Without it, calls
   * are anonymous: they see public content only.
   */
  token?: string | (() => string | Promise<string>);
  /** Run around every call, e.g. to add headers (after the token is set). */
  interceptors?: Interceptor[];
}

/** Every artifact.v1 service, under the name the client gives it. */
export const ARTIFACT_SERVICES = {
  registries: RegistryService,
  namespaces: NamespaceService,
  repositories: RepositoryService,
  tags: TagService,
  images: ImageService,
  garbageCollection: GarbageCollectionService,
  accounts: AccountService,
  tokens: TokenService,
  roleBindings: RoleBindingService,
  audit: AuditService,
  immutabilityRules: ImmutabilityRuleService,
  retention: RetentionService,
  webhooks: WebhookService,
  /** `watchEvents` is server streaming: `for await (const batch of client.events.watchEvents({ afterPosition: 0n }))`. */
  events: EventService,
} as const;

type Services = typeof ARTIFACT_SERVICES;

export type ArtifactClient = { [K in keyof Services]: Client<Services[K]> } & {
  /** The transport underneath, for clients of other services on the same server. */
  transport: Transport;
};

export function artifactClients(transport: Transport): ArtifactClient {
  const clients = Object.fromEntries(Object.entries(ARTIFACT_SERVICES).map(([name, service]) => [name, createClient(service, transport)]));
  return { ...(clients as { [K in keyof Services]: Client<Services[K]> }), transport };
}

/** The interceptors of a transport: the token's first, then the caller's. */
export function clientInterceptors(options: CommonClientOptions): Interceptor[] {
  const { token } = options;
  if (token !== undefined && typeof token !== "function" && (typeof token !== "string" || token === "" || /\s/.test(token))) {
    throw new TypeError("createArtifactClient: token must be a non-empty API token without spaces (or a function returning one)");
  }
  const bearer: Interceptor = (next) => async (req) => {
    const value = typeof token === "function" ? await token() : token;
    if (value) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
  return [...(token === undefined ? [] : [bearer]), ...(options.interceptors ?? [])];
}

export function checkBaseUrl(baseUrl: string): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`createArtifactClient: baseUrl ${JSON.stringify(baseUrl)} is not a URL; expected e.g. http://localhost:8080`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`createArtifactClient: baseUrl ${JSON.stringify(baseUrl)} must be http:// or https://`);
  }
  return baseUrl.replace(/\/+$/, "");
}

export function checkProtocol(protocol: unknown): Protocol {
  if (protocol === "connect" || protocol === "grpc" || protocol === "grpc-web") return protocol;
  throw new TypeError(`createArtifactClient: protocol ${JSON.stringify(protocol)} is not one of "connect", "grpc", "grpc-web"`);
}
