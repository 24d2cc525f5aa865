// The one description of the tables. migrations/ is generated from this file by drizzle-kit
// (`npm run db:generate`); a test fails when the two disagree.
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";

// Names sort byte-wise ("C" collation) on every server, whatever its locale: the OCI API
// promises lexical order for tags and the catalog, and PGlite and PostgreSQL must agree.
const name = customType<{ data: string; notNull: true }>({
  dataType: () => 'text COLLATE "C"',
});

// Millisecond precision so a JavaScript Date holds the exact value and keyset
// pagination on a timestamp never skips or repeats a row.
const time = (column: string) =>
  timestamp(column, { withTimezone: true, precision: 3, mode: "date" }).notNull().defaultNow();

const description = () => text("description").notNull().default("");

// Columns every catalog resource has: identity, optimistic-concurrency version, timestamps.
const resource = () => ({
  id: uuid("id").primaryKey().defaultRandom(),
  name: name("name").notNull(),
  version: integer("version").notNull().default(1),
  createTime: time("create_time"),
  updateTime: time("update_time"),
});

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
  },
  (t) => [
    uniqueIndex("registries_name_unique").on(t.name),
    index("registries_create_time_idx").on(t.createTime, t.id),
    index("registries_update_time_idx").on(t.updateTime, t.id),
    check("registries_kind_check", sql`${t.kind} in ('hosted', 'remote')`),
    // A REMOTE registry is its URL; a HOSTED one is served here and has none.
    check("registries_url_check", sql`(${t.kind} = 'hosted') = (${t.url} = '')`),
    check("registries_hosted_check", sql`${t.kind} = 'remote' or (not ${t.insecure} and ${t.credentialSealed} is null)`),
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
  },
  (t) => [
    uniqueIndex("namespaces_registry_name_unique").on(t.registryId, t.name),
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
  },
  (t) => [
    uniqueIndex("repositories_namespace_name_unique").on(t.namespaceId, t.name),
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
  },
  (t) => [
    uniqueIndex("tags_repository_name_unique").on(t.repositoryId, t.name),
    index("tags_repository_create_time_idx").on(t.repositoryId, t.createTime, t.id),
    index("tags_repository_update_time_idx").on(t.repositoryId, t.updateTime, t.id),
    index("tags_repository_push_time_idx").on(t.repositoryId, t.pushTime, t.id),
    index("tags_name_idx").on(t.name, t.id),
    index("tags_create_time_idx").on(t.createTime, t.id),
    index("tags_update_time_idx").on(t.updateTime, t.id),
    index("tags_push_time_idx").on(t.pushTime, t.id),
  ],
);

// Small server-wide values shared by every replica (e.g. the page-token signing key).
export const settings = pgTable("settings", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
});
