import { and, eq, sql } from "drizzle-orm";
import { constraints, manifests, namespaces, registries, repositories, tags } from "../db/schema.js";
import type { Database } from "../db/database.js";
import { alreadyExists, failedPrecondition, notFound } from "../domain/errors.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { Lister, type ListRequest, type Page } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

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
    });
  }

  create(input: NewTag): Promise<TagRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const manifest = await hostedManifest(tx, input.repositoryId, input.digest);
          return (
            await tx
              .insert(tags)
              .values({ ...input, ...manifest })
              .returning()
          )[0]!;
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

  update(id: string, patch: TagPatch, etag: string): Promise<TagRow> {
    const values: Record<string, unknown> = { ...patch };
    // push_time is when the tag last moved, so it changes only with the digest.
    if (patch.digest !== undefined) {
      values.pushTime = sql`case when ${tags.digest} = ${patch.digest} then ${tags.pushTime} else now() end`;
    }
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          if (patch.digest !== undefined) {
            const [current] = await tx.select({ repositoryId: tags.repositoryId }).from(tags).where(eq(tags.id, id));
            if (current) Object.assign(values, await hostedManifest(tx, current.repositoryId, patch.digest));
          }
          return updateById<TagRow>(tx, table, id, values, etag);
        }),
      { [constraints.tagName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string }): Promise<void> {
    return guarded(() => deleteById(this.db, table, id, options));
  }

  list(request: ListRequest, filter: { repositoryId?: string }): Promise<Page<TagRow>> {
    return guarded(() => this.lister.list(request, { parent: filter.repositoryId }));
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
