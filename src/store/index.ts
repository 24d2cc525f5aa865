// The store: the only code that speaks SQL. It returns plain rows and throws domain errors.
// createStore hands out everything above it needs (the catalog, images and blobs, sync, garbage
// collection); none of it exposes the database handle.
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Database, DatabaseHandle } from "../db/database.js";
import { settings } from "../db/schema.js";
import { NamespaceStore } from "./namespaces.js";
import { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { RegistryStore } from "./registries.js";
import { RepositoryStore } from "./repositories.js";
import { TagStore } from "./tags.js";
import { BlobStore } from "./blobs.js";
import { CredentialStore } from "./credentials.js";
import { ImageStore } from "./images.js";
import { AccessStore } from "./access.js";
import { AccountStore } from "./accounts.js";
import { AuditStore } from "./audit.js";
import { RoleBindingStore } from "./role-bindings.js";
import { ImmutabilityRuleStore } from "./immutability-rules.js";
import { RetentionPolicyStore } from "./retention-policies.js";
import { RetentionRunner } from "./retention.js";
import { PullTimes } from "./pull-times.js";
import { SigningKeyStore } from "./signing-keys.js";
import { ThrottleStore } from "./throttle.js";
import { TokenStore } from "./tokens.js";
import { SyncStore } from "./sync.js";
import { GarbageCollector } from "./gc.js";
import { HotCache } from "./hot-cache.js";
import { EventStore } from "./events.js";
import { WebhookStore } from "./webhooks.js";
import type { ContentDriver } from "../content/driver.js";
import type { Logger } from "pino";

export interface Store {
  registries: RegistryStore;
  namespaces: NamespaceStore;
  repositories: RepositoryStore;
  tags: TagStore;
  images: ImageStore;
  blobs: BlobStore;
  credentials: CredentialStore;
  accounts: AccountStore;
  tokens: TokenStore;
  roleBindings: RoleBindingStore;
  /** Immutable-tag rules; the tag writes ask them themselves (immutability.ts). */
  immutabilityRules: ImmutabilityRuleStore;
  /** Retention policies (one per scope), and their runs (retention.ts). */
  retentionPolicies: RetentionPolicyStore;
  retention: RetentionRunner;
  /** Last pull times of tags and manifests, recorded in memory and written every interval (pull-times.ts). */
  pullTimes: PullTimes;
  audit: AuditStore;
  throttle: ThrottleStore;
  signingKeys: SigningKeyStore;
  access: AccessStore;
  /** What a sync of a REMOTE registry reads and writes (src/sync/). */
  sync: SyncStore;
  /** Garbage collection of manifests, blobs and uploads; observe it to hear of its runs. */
  gc: GarbageCollector;
  /** The outbox, read in commit order (WatchEvents); changes write their events with recordEvent (events.ts). */
  events: EventStore;
  /** Webhooks, and the queue and log of their deliveries. */
  webhooks: WebhookStore;
  /** Signs the page tokens of lists not paged by a Lister (ImageService.ListReferrers). */
  pageTokens: PageTokens;
}

export interface StoreOptions {
  /**
   * The read cache of HOSTED repositories (hot-cache.ts; READ_CACHE_MAX_BYTES). It serves nothing
   * until its owner connects it to the database's notices (server.ts); absent: off.
   */
  cache?: HotCache;
  /** The database's cluster-wide lock (DatabaseHandle.exclusively): one garbage collection (and one retention run) at a time across replicas. */
  exclusively?: DatabaseHandle["exclusively"];
  /** PULL_TIME_FLUSH_MS: how often recorded pulls are written; the owner starts and stops the writer (server.ts). */
  pullTimeFlushMs?: number;
  log?: Logger;
}

export async function createStore(db: Database, content: ContentDriver, options: StoreOptions = {}): Promise<Store> {
  const tokens = new PageTokens(Buffer.from(await sharedSetting(db, "page_token_key", () => randomBytes(32).toString("base64")), "base64"));
  const cache = options.cache ?? new HotCache(0);
  const gc = new GarbageCollector(db, content, options.exclusively);
  // A collection deletes manifests: this process forgets them when the run ends (the others,
  // and this one before that, from each deletion's notice).
  gc.observe({ ran: () => cache.invalidateAll() });
  return {
    registries: droppingCache(new RegistryStore(db, tokens), cache),
    namespaces: droppingCache(new NamespaceStore(db, tokens), cache),
    repositories: droppingCache(new RepositoryStore(db, tokens), cache),
    tags: droppingCache(new TagStore(db, tokens, cache), cache),
    images: new ImageStore(db, cache),
    blobs: new BlobStore(db, content),
    credentials: new CredentialStore(db),
    accounts: new AccountStore(db, tokens),
    tokens: new TokenStore(db, tokens),
    roleBindings: new RoleBindingStore(db, tokens),
    immutabilityRules: new ImmutabilityRuleStore(db, tokens),
    retentionPolicies: new RetentionPolicyStore(db, tokens),
    retention: new RetentionRunner(db, tokens, cache, options.exclusively),
    pullTimes: new PullTimes(db, options.pullTimeFlushMs ?? 5_000, options.log),
    audit: new AuditStore(db, tokens),
    throttle: new ThrottleStore(db),
    signingKeys: new SigningKeyStore(db),
    access: new AccessStore(db),
    sync: new SyncStore(db),
    gc,
    events: new EventStore(db),
    webhooks: new WebhookStore(db, tokens),
    pageTokens: tokens,
  };
}

type Write = (...args: never[]) => Promise<unknown>;

/**
 * The catalog API's changes (a tag created, moved or deleted; a repository, namespace or registry
 * changed or deleted) drop this process's read cache once they have settled, so its next read
 * sees them; other processes hear of them from the triggers' notices. They are rare next to
 * pulls, so all of it goes rather than working out which repositories they touch.
 */
function droppingCache<S extends { update: Write; delete: Write; create: Write }>(store: S, cache: HotCache): S {
  for (const method of ["create", "update", "delete"] as const) {
    if (method === "create" && !(store instanceof TagStore)) continue;
    const write = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
    (store as Record<string, unknown>)[method] = (...args: unknown[]) => write(...args).finally(() => cache.invalidateAll());
  }
  return store;
}

/** A value every replica agrees on: the first one to start writes it, the others read it. */
async function sharedSetting(db: Database, key: string, initial: () => string): Promise<string> {
  return guarded(async () => {
    await db.insert(settings).values({ key, value: initial() }).onConflictDoNothing();
    const [row] = await db.select().from(settings).where(eq(settings.key, key));
    return row!.value;
  });
}

export type { RegistryRow } from "./registries.js";
export type { NamespaceView, RepositoryView, TagView } from "./views.js";
export type { AccountRow } from "./accounts.js";
export type { AuditRow } from "./audit.js";
export type { RoleBindingView } from "./role-bindings.js";
export type { ImmutabilityRuleView } from "./immutability-rules.js";
export type { TokenRow } from "./tokens.js";
export type { ListRequest } from "./listing.js";
export type { EventRow } from "./events.js";
export type { DeliveryView, WebhookView } from "./webhooks.js";
