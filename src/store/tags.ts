import { and, eq, sql } from "drizzle-orm";
import { constraints, manifests, namespaces, registries, repositories, tags } from "../db/schema.js";
import type { Database } from "../db/database.js";
import { alreadyExists, failedPrecondition, notFound } from "../domain/errors.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, repositoryPath, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { repositoryVisible } from "./visibility.js";

export type TagRow = typeof tags.$inferSelect;
export type NewTag = Pick<TagRow, "repositoryId" | "name" | "digest" | "mediaType" | "sizeBytes">;
export type TagPatch = Partial<Pick<TagRow, "name" | "digest" | "mediaType" | "sizeBytes">>;

const table: CatalogTable = {
  table: tags,
  id: tags.id,
  version: tags.version,
  updateTime: tags.updateTime,
  noun: "tag",
};

const nameTaken = (name: string) => () => alreadyExists(`a tag named "${name}" already exists in this repository`);

export class TagStore {
  private readonly byId: (id: string) => Promise<TagRow>;
  private readonly lister: Lister<TagRow>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = getterById<TagRow>(db, table);
    this.lister = new Lister<TagRow>(db, tokens, {
      resource: "tags",
      table: tags,
      id: tags.id,
      name: tags.name,
      sortable: { name: tags.name, create_time: tags.createTime, update_time: tags.updateTime, push_time: tags.pushTime },
      uniqueName: "parent",
      parent: { column: tags.repositoryId, parentId: repositories.id, noun: "repository" },
      visible: (v) => repositoryVisible(tags.repositoryId, v),
    });
  }

  create(input: NewTag, audit?: AuditTrail): Promise<TagRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const manifest = await hostedManifest(tx, input.repositoryId, input.digest);
          const [row] = await tx
            .insert(tags)
            .values({ ...input, ...manifest })
            .returning();
          await writeAudit(tx, audit, {
            action: "tag.create",
            resourceType: "tag",
            resourceId: row!.id,
            resourceName: await tagPath(tx, row!),
            detail: row!.digest,
          });
          return row!;
        }),
      {
        [constraints.tagName]: nameTaken(input.name),
        tags_repository_id_repositories_id_fk: () => notFound(`repository ${input.repositoryId} not found`),
      },
    );
  }

  get(id: string): Promise<TagRow> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: TagPatch, etag: string, audit?: AuditTrail): Promise<TagRow> {
    const values: Record<string, unknown> = { ...patch };
    // push_time is when the tag last moved, so it changes only with the digest.
    if (patch.digest !== undefined) {
      values.pushTime = sql`case when ${tags.digest} = ${patch.digest} then ${tags.pushTime} else now() end`;
    }
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [before] = await tx.select({ repositoryId: tags.repositoryId, digest: tags.digest }).from(tags).where(eq(tags.id, id));
          if (patch.digest !== undefined && before) Object.assign(values, await hostedManifest(tx, before.repositoryId, patch.digest));
          const row = await updateById<TagRow>(tx, table, id, values, etag);
          // Moving a tag is the event people look for: it gets its own action.
          const moved = before !== undefined && row.digest !== before.digest;
          await writeAudit(tx, audit, {
            action: moved ? "tag.move" : "tag.update",
            resourceType: "tag",
            resourceId: id,
            resourceName: await tagPath(tx, row),
            detail: moved ? `${before.digest} -> ${row.digest}` : changedFields(patch),
          });
          return row;
        }),
      { [constraints.tagName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        then: async (tx) => {
          const [row] = await tx.select().from(tags).where(eq(tags.id, id));
          if (row)
            await writeAudit(tx, audit, {
              action: "tag.delete",
              resourceType: "tag",
              resourceId: id,
              resourceName: await tagPath(tx, row),
              detail: row.digest,
            });
        },
      }),
    );
  }

  list(request: ListRequest, filter: { repositoryId?: string }, visibility?: Visibility): Promise<Page<TagRow>> {
    return guarded(() => this.lister.list(request, { parent: filter.repositoryId, visibility }));
  }
}

/**
 * In a HOSTED registry a tag can only name a manifest the repository holds: the tag then points
 * at it, and takes its media type and size from it (the manifest is touched so garbage
 * collection, racing, keeps it). Elsewhere (REMOTE catalogs) a tag is a record of what the
 * upstream says, and nothing is checked or overridden.
 */
async function hostedManifest(tx: Database, repositoryId: string, digest: string): Promise<Pick<TagRow, "manifestId" | "mediaType" | "sizeBytes"> | undefined> {
  const [context] = await tx
    .select({ kind: registries.kind })
    .from(repositories)
    .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .where(eq(repositories.id, repositoryId));
  if (!context) throw notFound(`repository ${repositoryId} not found`);
  if (context.kind !== "hosted") return undefined;
  const [manifest] = await tx
    .update(manifests)
    .set({ pushTime: sql`now()` })
    .where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, digest)))
    .returning({ id: manifests.id, mediaType: manifests.mediaType, size: manifests.totalSizeBytes });
  if (!manifest) {
    throw failedPrecondition(`tag.digest: manifest ${digest} is not in repository ${repositoryId}; push the manifest first (HOSTED registry)`);
  }
  return { manifestId: manifest.id, mediaType: manifest.mediaType, sizeBytes: manifest.size };
}

async function tagPath(db: Database, tag: Pick<TagRow, "repositoryId" | "name">): Promise<string> {
  return `${await repositoryPath(db, tag.repositoryId)}:${tag.name}`;
}
