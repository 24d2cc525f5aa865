// The one description of the tables. migrations/ is generated from this file by drizzle-kit
// (`npm run db:generate`); a test fails when the two disagree.
import { sql } from "drizzle-orm";
import type { EventData } from "../domain/events.js";
import {
  type AnyPgColumn,
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

// Names sort byte-wise ("C" collation) on every server, whatever its locale: the OCI API
// promises lexical order for tags and the catalog, and PGlite and PostgreSQL must agree.
const name = customType<{ data: string; notNull: true }>({
  dataType: () => 'text COLLATE "C"',
});

// Manifest payloads are kept in the database: they are small (≤ 4 MiB by default), read on every
// pull, and must be byte-exact. PGlite returns Uint8Array, postgres.js Buffer: both are bytes.
const bytes = customType<{ data: Uint8Array; notNull: true }>({
  dataType: () => "bytea",
});

// Millisecond precision so a JavaScript Date holds the exact value and keyset
// pagination on a timestamp never skips or repeats a row.
const time = (column: string) => timestamp(column, { withTimezone: true, precision: 3, mode: "date" }).notNull().defaultNow();

const description = () => text("description").notNull().default("");

// Columns every catalog resource has: identity, optimistic-concurrency version, timestamps.
const resource = () => ({
  id: uuid("id").primaryKey().defaultRandom(),
  name: name("name").notNull(),
  version: integer("version").notNull().default(1),
  createTime: time("create_time"),
  updateTime: time("update_time"),
});

/**
 * Constraints whose violation a store explains to the caller (a taken name → already-exists, a
 * broken registry rule → invalid-argument): named here once, used by the table definitions below
 * and by the stores' guarded() calls.
 */
export const constraints = {
  registryName: "registries_name_unique",
  registryUrl: "registries_url_check",
  registryHosted: "registries_hosted_check",
  namespaceName: "namespaces_registry_name_unique",
  repositoryName: "repositories_namespace_name_unique",
  tagName: "tags_repository_name_unique",
} as const;

export const registries = pgTable(
  "registries",
  {
    ...resource(),
    description: description(),
    kind: text("kind", { enum: ["hosted", "remote"] }).notNull(),
    url: text("url").notNull().default(""),
    insecure: boolean("insecure").notNull().default(false),
    // AES-256-GCM sealed credential (see src/secrets.ts); never leaves the server.
    credentialSealed: text("credential_sealed"),
    // HOSTED: a push to an unknown namespace or repository creates it.
    autoCreate: boolean("auto_create").notNull().default(true),
    // REMOTE: what a sync imports (repository path prefix, tag regular expression; empty = all).
    syncRepositoryPrefix: text("sync_repository_prefix").notNull().default(""),
    syncTagPattern: text("sync_tag_pattern").notNull().default(""),
    // Anyone may read and pull here, signed in or not (docs/identity.md).
    public: boolean("public").notNull().default(false),
  },
  (t) => [
    uniqueIndex(constraints.registryName).on(t.name),
    index("registries_create_time_idx").on(t.createTime, t.id),
    index("registries_update_time_idx").on(t.updateTime, t.id),
    check("registries_kind_check", sql`${t.kind} in ('hosted', 'remote')`),
    // A REMOTE registry is its URL; a HOSTED one is served here and has none.
    check(constraints.registryUrl, sql`(${t.kind} = 'hosted') = (${t.url} = '')`),
    check(
      constraints.registryHosted,
      sql`${t.kind} = 'remote' or (not ${t.insecure} and ${t.credentialSealed} is null and ${t.syncRepositoryPrefix} = '' and ${t.syncTagPattern} = '')`,
    ),
  ],
);

export const namespaces = pgTable(
  "namespaces",
  {
    ...resource(),
    description: description(),
    registryId: uuid("registry_id")
      .notNull()
      .references(() => registries.id, { onDelete: "cascade" }),
    public: boolean("public").notNull().default(false),
  },
  (t) => [
    uniqueIndex(constraints.namespaceName).on(t.registryId, t.name),
    index("namespaces_registry_create_time_idx").on(t.registryId, t.createTime, t.id),
    index("namespaces_registry_update_time_idx").on(t.registryId, t.updateTime, t.id),
    index("namespaces_name_idx").on(t.name, t.id),
    index("namespaces_create_time_idx").on(t.createTime, t.id),
    index("namespaces_update_time_idx").on(t.updateTime, t.id),
  ],
);

export const repositories = pgTable(
  "repositories",
  {
    ...resource(),
    description: description(),
    namespaceId: uuid("namespace_id")
      .notNull()
      .references(() => namespaces.id, { onDelete: "cascade" }),
    // REMOTE: the repository's path on the upstream (e.g. "testbox" or "library/ubuntu"), which
    // namespace/name alone cannot always restore.
    upstreamName: text("upstream_name"),
    // Bumped by a trigger on tags (migration 0002) in the same transaction as any insert, update
    // or delete of this repository's tags, cascades included: a cached tag list is current
    // exactly while this number is unchanged, in every process that shares the database.
    tagsVersion: bigint("tags_version", { mode: "number" }).notNull().default(0),
  },
  (t) => [
    uniqueIndex(constraints.repositoryName).on(t.namespaceId, t.name),
    index("repositories_namespace_create_time_idx").on(t.namespaceId, t.createTime, t.id),
    index("repositories_namespace_update_time_idx").on(t.namespaceId, t.updateTime, t.id),
    index("repositories_name_idx").on(t.name, t.id),
    index("repositories_create_time_idx").on(t.createTime, t.id),
    index("repositories_update_time_idx").on(t.updateTime, t.id),
  ],
);

export const tags = pgTable(
  "tags",
  {
    ...resource(),
    repositoryId: uuid("repository_id")
      .notNull()
      .references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull().default(""),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull().default(0),
    pushTime: time("push_time"),
    // HOSTED: the manifest the tag points to; deleting the manifest untags it.
    manifestId: uuid("manifest_id").references((): AnyPgColumn => manifests.id, { onDelete: "cascade" }),
  },
  (t) => [
    index("tags_manifest_idx").on(t.manifestId),
    uniqueIndex(constraints.tagName).on(t.repositoryId, t.name),
    index("tags_repository_create_time_idx").on(t.repositoryId, t.createTime, t.id),
    index("tags_repository_update_time_idx").on(t.repositoryId, t.updateTime, t.id),
    index("tags_repository_push_time_idx").on(t.repositoryId, t.pushTime, t.id),
    index("tags_name_idx").on(t.name, t.id),
    index("tags_create_time_idx").on(t.createTime, t.id),
    index("tags_update_time_idx").on(t.updateTime, t.id),
    index("tags_push_time_idx").on(t.pushTime, t.id),
    // "Where is this digest": the tags that point at a manifest, in every repository.
    index("tags_digest_idx").on(t.digest),
  ],
);

/**
 * Where a policy is set: a registry, a namespace or a repository (immutability rules now;
 * retention policies attach the same way, src/store/policy-scope.ts). The scope's ancestors are
 * kept beside it, as role bindings keep a namespace's registry: registry_id always, namespace_id
 * for namespace and repository scopes. So "the policies that apply to repository R" is one
 * indexed query (registry_id = R's registry, namespace_id null or R's, repository_id null or R),
 * and a policy goes with its scope (cascade). Namespaces and repositories never change parents,
 * so the copies never go stale.
 */
const policyScope = () => ({
  registryId: uuid("registry_id")
    .notNull()
    .references(() => registries.id, { onDelete: "cascade" }),
  namespaceId: uuid("namespace_id").references(() => namespaces.id, { onDelete: "cascade" }),
  repositoryId: uuid("repository_id").references(() => repositories.id, { onDelete: "cascade" }),
});

// Immutable tags (docs/design-notes.md): a tag whose name matches a rule of its scope can be
// pushed once, then never moved, renamed or deleted while the rule stands.
export const immutabilityRules = pgTable(
  "immutability_rules",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ...policyScope(),
    // RE2, matched against the whole tag name (src/domain/tag-pattern.ts).
    tagPattern: text("tag_pattern").notNull(),
    description: description(),
    version: integer("version").notNull().default(1),
    createTime: time("create_time"),
    updateTime: time("update_time"),
  },
  (t) => [
    index("immutability_rules_scope_idx").on(t.registryId, t.namespaceId, t.repositoryId),
    index("immutability_rules_namespace_idx").on(t.namespaceId),
    index("immutability_rules_repository_idx").on(t.repositoryId),
    index("immutability_rules_create_time_idx").on(t.createTime, t.id),
    index("immutability_rules_update_time_idx").on(t.updateTime, t.id),
    check("immutability_rules_scope_check", sql`${t.repositoryId} is null or ${t.namespaceId} is not null`),
  ],
);

// Retention (docs/design-notes.md): at most one policy per scope; the nearest one applies to a
// repository. `keep` is the rule tree as src/domain/retention.ts defines it (JSON).
export const retentionPolicies = pgTable(
  "retention_policies",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    ...policyScope(),
    keep: jsonb("keep").$type<unknown>(),
    // Null: untagged manifests are left to garbage collection.
    untaggedGraceMs: bigint("untagged_grace_ms", { mode: "number" }),
    deleteImmutable: boolean("delete_immutable").notNull().default(false),
    disabled: boolean("disabled").notNull().default(false),
    description: description(),
    version: integer("version").notNull().default(1),
    createTime: time("create_time"),
    updateTime: time("update_time"),
  },
  (t) => [
    unique("retention_policies_scope_unique").on(t.registryId, t.namespaceId, t.repositoryId).nullsNotDistinct(),
    index("retention_policies_namespace_idx").on(t.namespaceId),
    index("retention_policies_repository_idx").on(t.repositoryId),
    index("retention_policies_create_time_idx").on(t.createTime, t.id),
    index("retention_policies_update_time_idx").on(t.updateTime, t.id),
    check("retention_policies_scope_check", sql`${t.repositoryId} is null or ${t.namespaceId} is not null`),
  ],
);

// When a tag was last pulled by its name (src/store/pull-times.ts). A table of its own, not a
// column of tags: every write to tags bumps its repository's tags_version (migration 0002), which
// drops the /v2/ read cache of that repository in every process; pulls must not.
export const tagPulls = pgTable("tag_pulls", {
  tagId: uuid("tag_id")
    .primaryKey()
    .references(() => tags.id, { onDelete: "cascade" }),
  lastPullTime: timestamp("last_pull_time", { withTimezone: true, precision: 3, mode: "date" }).notNull(),
});

// Content of HOSTED registries (and what a pull-through cache keeps). The bytes of a blob live in
// the content store under its digest; a row here means they are there and verified.
export const blobs = pgTable(
  "blobs",
  {
    digest: text("digest").primaryKey(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
    createTime: time("create_time"),
    // Last upload or mount of these bytes: garbage collection leaves a blob alone for a grace
    // period after it, so a push in flight never loses a blob it just sent.
    pushTime: time("push_time"),
  },
  (t) => [index("blobs_push_time_idx").on(t.pushTime)],
);

// Which repository may read which blob: set by an upload or a mount. The basis of
// cross-repository mounts and, later, of authorization.
export const repositoryBlobs = pgTable(
  "repository_blobs",
  {
    repositoryId: uuid("repository_id")
      .notNull()
      .references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest")
      .notNull()
      .references(() => blobs.digest),
    createTime: time("create_time"),
  },
  (t) => [primaryKey({ columns: [t.repositoryId, t.digest] }), index("repository_blobs_digest_idx").on(t.digest)],
);

export const manifests = pgTable(
  "manifests",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    repositoryId: uuid("repository_id")
      .notNull()
      .references(() => repositories.id, { onDelete: "cascade" }),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull(),
    payload: bytes("payload").notNull(),
    // The manifest and everything it references (config, layers, children), in bytes.
    totalSizeBytes: bigint("total_size_bytes", { mode: "number" }).notNull(),
    configDigest: text("config_digest"),
    // OCI 1.1 referrers: a digest, not a foreign key (a referrer may arrive before its subject).
    subjectDigest: text("subject_digest"),
    artifactType: text("artifact_type"),
    annotations: jsonb("annotations").$type<Record<string, string>>(),
    createTime: time("create_time"),
    // Last push of this manifest (see blobs.push_time).
    pushTime: time("push_time"),
    // Last GET of it on /v2/ or the API, by tag or digest (src/store/pull-times.ts); null: never.
    lastPullTime: timestamp("last_pull_time", { withTimezone: true, precision: 3, mode: "date" }),
  },
  (t) => [
    uniqueIndex("manifests_repository_digest_unique").on(t.repositoryId, t.digest),
    index("manifests_repository_subject_idx").on(t.repositoryId, t.subjectDigest),
    index("manifests_push_time_idx").on(t.pushTime),
    // "Where is this digest": the repositories holding a manifest (the unique index leads with the repository).
    index("manifests_digest_idx").on(t.digest),
  ],
);

// What a manifest points at: its config and layers (blobs) or, for an index, its child manifests.
export const manifestReferences = pgTable(
  "manifest_references",
  {
    manifestId: uuid("manifest_id")
      .notNull()
      .references(() => manifests.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    kind: text("kind", { enum: ["config", "layer", "manifest"] }).notNull(),
    digest: text("digest").notNull(),
    mediaType: text("media_type").notNull(),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.manifestId, t.position] }),
    index("manifest_references_digest_idx").on(t.digest),
    check("manifest_references_kind_check", sql`${t.kind} in ('config', 'layer', 'manifest')`),
  ],
);

// Blob uploads in progress: the session lives here, its bytes in the content store, so an
// upload survives a restart of the process.
export const uploads = pgTable(
  "uploads",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    repositoryId: uuid("repository_id")
      .notNull()
      .references(() => repositories.id, { onDelete: "cascade" }),
    sizeBytes: bigint("size_bytes", { mode: "number" }).notNull().default(0),
    createTime: time("create_time"),
    updateTime: time("update_time"),
    // The one request appending to the upload, as a lease: claimed by one short UPDATE, renewed
    // while its body streams, released with the new size. No database connection is held while
    // bytes arrive; a writer whose process died loses the upload when writer_until passes.
    writer: uuid("writer"),
    writerUntil: timestamp("writer_until", { withTimezone: true, precision: 3, mode: "date" }),
  },
  (t) => [index("uploads_update_time_idx").on(t.updateTime)],
);

// Small server-wide values shared by every replica (e.g. the page-token signing key).
export const settings = pgTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});

// Identity and access (docs/identity.md). Users and robots share one name space.
export const accounts = pgTable(
  "accounts",
  {
    ...resource(),
    kind: text("kind", { enum: ["user", "robot"] }).notNull(),
    description: description(),
    // argon2id (PHC string); null: no password (robots always, users optionally).
    passwordHash: text("password_hash"),
    disabled: boolean("disabled").notNull().default(false),
  },
  (t) => [
    uniqueIndex("accounts_name_unique").on(t.name),
    index("accounts_create_time_idx").on(t.createTime, t.id),
    index("accounts_update_time_idx").on(t.updateTime, t.id),
    check("accounts_kind_check", sql`${t.kind} in ('user', 'robot')`),
    check("accounts_robot_password_check", sql`${t.kind} = 'user' or ${t.passwordHash} is null`),
  ],
);

// API tokens: only the SHA-256 of the secret is kept (a 256-bit random secret needs no slow hash).
export const apiTokens = pgTable(
  "api_tokens",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    name: name("name").notNull(),
    // Hex SHA-256 of the secret: what a presented token is looked up by.
    secretHash: text("secret_hash").notNull(),
    expireTime: timestamp("expire_time", { withTimezone: true, precision: 3, mode: "date" }),
    // Written at most once a minute per token.
    lastUseTime: timestamp("last_use_time", { withTimezone: true, precision: 3, mode: "date" }),
    revokeTime: timestamp("revoke_time", { withTimezone: true, precision: 3, mode: "date" }),
    createTime: time("create_time"),
  },
  (t) => [
    uniqueIndex("api_tokens_secret_hash_unique").on(t.secretHash),
    index("api_tokens_account_create_time_idx").on(t.accountId, t.createTime, t.id),
    index("api_tokens_create_time_idx").on(t.createTime, t.id),
    index("api_tokens_name_idx").on(t.name, t.id),
  ],
);

// A role at a scope: global (both ids null), a registry (registry_id), or a namespace (both ids:
// the namespace's registry is kept beside it so a scope check needs no join).
export const roleBindings = pgTable(
  "role_bindings",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    accountId: uuid("account_id")
      .notNull()
      .references(() => accounts.id, { onDelete: "cascade" }),
    role: text("role", { enum: ["reader", "writer", "admin"] }).notNull(),
    registryId: uuid("registry_id").references(() => registries.id, { onDelete: "cascade" }),
    namespaceId: uuid("namespace_id").references(() => namespaces.id, { onDelete: "cascade" }),
    createTime: time("create_time"),
  },
  (t) => [
    unique("role_bindings_unique").on(t.accountId, t.role, t.registryId, t.namespaceId).nullsNotDistinct(),
    index("role_bindings_create_time_idx").on(t.createTime, t.id),
    index("role_bindings_registry_idx").on(t.registryId),
    index("role_bindings_namespace_idx").on(t.namespaceId),
    check("role_bindings_role_check", sql`${t.role} in ('reader', 'writer', 'admin')`),
    check("role_bindings_scope_check", sql`${t.namespaceId} is null or ${t.registryId} is not null`),
  ],
);

// The audit log. No foreign keys: an event outlives the account and the resource it names.
export const auditEvents = pgTable(
  "audit_events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    eventTime: time("event_time"),
    actorId: uuid("actor_id"),
    actorName: text("actor_name").notNull(),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull().default(""),
    resourceName: text("resource_name").notNull().default(""),
    requestId: text("request_id").notNull().default(""),
    clientAddress: text("client_address").notNull().default(""),
    outcome: text("outcome", { enum: ["success", "denied", "failure"] }).notNull(),
    detail: text("detail").notNull().default(""),
  },
  (t) => [
    index("audit_events_time_idx").on(t.eventTime, t.id),
    index("audit_events_actor_id_idx").on(t.actorId, t.eventTime),
    index("audit_events_actor_name_idx").on(t.actorName, t.eventTime),
    index("audit_events_action_idx").on(t.action, t.eventTime),
    index("audit_events_resource_id_idx").on(t.resourceId, t.eventTime),
    index("audit_events_resource_name_idx").on(t.resourceName, t.eventTime),
    check("audit_events_outcome_check", sql`${t.outcome} in ('success', 'denied', 'failure')`),
  ],
);

// Failed sign-ins in a row, per key ("account:<name>", "address:<ip>"), shared by every replica.
export const authThrottle = pgTable("auth_throttle", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull(),
  lastFailure: timestamp("last_failure", { withTimezone: true, precision: 3, mode: "date" }).notNull(),
});

// Keys that sign the registry's JWTs, shared by every replica. The private key is sealed with
// SECRET_KEY when there is one; the public one is kept in the clear (it verifies tokens even when
// the private one can no longer be opened).
export const signingKeys = pgTable("signing_keys", {
  // RFC 7638 thumbprint of the public key: the JWT header's kid.
  kid: text("kid").primaryKey(),
  privateKey: text("private_key").notNull(),
  publicKey: jsonb("public_key").$type<Record<string, unknown>>().notNull(),
  createTime: time("create_time"),
  // When it stopped signing; it verifies until the tokens it signed have expired.
  retireTime: timestamp("retire_time", { withTimezone: true, precision: 3, mode: "date" }),
});

// The outbox of events (src/store/events.ts): written in the transaction of the change it reports,
// so a committed change has its event and a rolled-back one has none. `position` is the order
// events committed in (their inserts are serialised by an advisory lock held to commit), so
// "everything after position p" never misses one that commits later. No foreign keys: an event
// outlives what it names; the ids are for filtering by scope and access.
export const events = pgTable(
  "events",
  {
    position: bigserial("position", { mode: "number" }).primaryKey(),
    // The CloudEvent's id.
    id: uuid("id").notNull().defaultRandom(),
    type: text("type").notNull(),
    source: text("source").notNull(),
    subject: text("subject").notNull(),
    time: time("time"),
    registryId: uuid("registry_id").notNull(),
    namespaceId: uuid("namespace_id"),
    repositoryId: uuid("repository_id"),
    data: jsonb("data").$type<EventData>().notNull(),
  },
  (t) => [uniqueIndex("events_id_unique").on(t.id), index("events_time_idx").on(t.time)],
);

// Endpoints that are sent the events of a registry or of one namespace (src/events/delivery.ts).
export const webhooks = pgTable(
  "webhooks",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    version: integer("version").notNull().default(1),
    createTime: time("create_time"),
    updateTime: time("update_time"),
    registryId: uuid("registry_id")
      .notNull()
      .references(() => registries.id, { onDelete: "cascade" }),
    // Set: only events of this namespace (of registry_id).
    namespaceId: uuid("namespace_id").references(() => namespaces.id, { onDelete: "cascade" }),
    url: text("url").notNull(),
    // Empty: every type.
    eventTypes: text("event_types")
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    // The HMAC key of the signature header, sealed like upstream credentials (src/secrets.ts); never leaves the server.
    secretSealed: text("secret_sealed").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    description: description(),
  },
  (t) => [
    index("webhooks_registry_idx").on(t.registryId),
    index("webhooks_namespace_idx").on(t.namespaceId),
    index("webhooks_create_time_idx").on(t.createTime, t.id),
  ],
);

// One event for one webhook: the delivery queue and its log. A delivery is attempted only when no
// earlier pending one of the same webhook and ordering key (the repository) exists, so events of
// a repository reach an endpoint in order; a process claims it with a lease (lease_until) taken in
// a short transaction with FOR UPDATE SKIP LOCKED, so two replicas never send the same one at once.
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    webhookId: uuid("webhook_id")
      .notNull()
      .references(() => webhooks.id, { onDelete: "cascade" }),
    eventPosition: bigint("event_position", { mode: "number" })
      .notNull()
      .references(() => events.position, { onDelete: "cascade" }),
    // The repository's id (the registry's for events outside a repository): deliveries of one key go in order.
    orderingKey: text("ordering_key").notNull(),
    status: text("status", { enum: ["pending", "delivered", "failed"] })
      .notNull()
      .default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptTime: time("next_attempt_time"),
    leaseUntil: timestamp("lease_until", { withTimezone: true, precision: 3, mode: "date" }),
    leaseToken: uuid("lease_token"),
    // The endpoint's last HTTP status (null: it never answered).
    responseStatus: integer("response_status"),
    lastError: text("last_error").notNull().default(""),
    lastAttemptTime: timestamp("last_attempt_time", { withTimezone: true, precision: 3, mode: "date" }),
    createTime: time("create_time"),
  },
  (t) => [
    index("webhook_deliveries_queue_idx")
      .on(t.webhookId, t.orderingKey, t.eventPosition)
      .where(sql`${t.status} = 'pending'`),
    index("webhook_deliveries_due_idx")
      .on(t.nextAttemptTime)
      .where(sql`${t.status} = 'pending'`),
    index("webhook_deliveries_webhook_create_time_idx").on(t.webhookId, t.createTime, t.id),
    index("webhook_deliveries_event_idx").on(t.eventPosition),
    check("webhook_deliveries_status_check", sql`${t.status} in ('pending', 'delivered', 'failed')`),
  ],
);
