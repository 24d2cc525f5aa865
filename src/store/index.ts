// The store: the only code that speaks SQL. It returns plain rows and throws domain errors.
// createStore hands out everything above it needs (the catalog, images and blobs, sync, garbage
// collection); none of it exposes the database handle.
import { randomBytes } from "node:crypto";
import { eq } from "drizzle-orm";
import type { Database } from "../db/database.js";
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
import { SigningKeyStore } from "./signing-keys.js";
import { ThrottleStore } from "./throttle.js";
import { TokenStore } from "./tokens.js";
import { SyncStore } from "./sync.js";
import { GarbageCollector } from "./gc.js";
import type { ContentDriver } from "../content/driver.js";

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
  audit: AuditStore;
  throttle: ThrottleStore;
  signingKeys: SigningKeyStore;
  access: AccessStore;
  /** What a sync of a REMOTE registry reads and writes (src/sync/). */
  sync: SyncStore;
  /** Garbage collection of manifests, blobs and uploads; observe it to hear of its runs. */
  gc: GarbageCollector;
}

export async function createStore(db: Database, content: ContentDriver): Promise<Store> {
  const tokens = new PageTokens(Buffer.from(await sharedSetting(db, "page_token_key", () => randomBytes(32).toString("base64")), "base64"));
  return {
    registries: new RegistryStore(db, tokens),
    namespaces: new NamespaceStore(db, tokens),
    repositories: new RepositoryStore(db, tokens),
    tags: new TagStore(db, tokens),
    images: new ImageStore(db),
    blobs: new BlobStore(db, content),
    credentials: new CredentialStore(db),
    accounts: new AccountStore(db, tokens),
    tokens: new TokenStore(db, tokens),
    roleBindings: new RoleBindingStore(db, tokens),
    audit: new AuditStore(db, tokens),
    throttle: new ThrottleStore(db),
    signingKeys: new SigningKeyStore(db),
    access: new AccessStore(db),
    sync: new SyncStore(db),
    gc: new GarbageCollector(db, content),
  };
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
export type { TokenRow } from "./tokens.js";
export type { ListRequest } from "./listing.js";
