import { and, eq, sql } from "drizzle-orm";
import { constraints, manifests, namespaces, registries, repositories, tags } from "../db/schema.js";
import type { Database } from "../db/database.js";
import { alreadyExists, failedPrecondition, notFound } from "../domain/errors.js";
import type { ImageName } from "../domain/image-name.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, repositoryPath, writeAudit, type AuditTrail } from "./audit.js";
import { EVENT_TYPES } from "../domain/events.js";
import { recordEvent, trailActor } from "./events.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { HotCache } from "./hot-cache.js";
import type { PageTokens } from "./page-token.js";
import { refuseTagChange } from "./immutability.js";
import { guarded } from "./pg-errors.js";
import { joinedVisible, repositoryVisible } from "./visibility.js";
import { tagFullName, tagView, viewById, viewFinder, viewGetterById, type TagView } from "./views.js";

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
  private readonly byId: (id: string) => Promise<TagView>;
  private readonly lister: Lister<TagView>;
  private readonly searcher: Lister<TagView>;
  private readonly byName: (
    values: { registry: string; namespace: string; repository: string; tag: string },
    visibility?: Visibility,
  ) => Promise<TagView | undefined>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
    /** The read cache: a repository's tag count (ListTags' total_size) is kept there. */
    cache?: HotCache,
  ) {
    this.byId = viewGetterById<TagView>(db, tagView, "tag");
    this.lister = new Lister<TagView>(db, tokens, {
      resource: "tags",
      table: tags,
      id: tags.id,
      view: tagView,
      name: tags.name,
      sortable: { name: tags.name, create_time: tags.createTime, update_time: tags.updateTime, push_time: tags.pushTime },
      uniqueName: "parent",
      parent: { column: tags.repositoryId, parentId: repositories.id, noun: "repository" },
      filters: { digest: tags.digest },
      visible: (v) => repositoryVisible(tags.repositoryId, v),
      parentCountCache: cache,
    });
    // Across registries, on the image reference (see RepositoryStore's searcher).
    this.searcher = new Lister<TagView>(db, tokens, {
      resource: "tag-search",
      table: tags,
      id: tags.id,
      view: tagView,
      countThroughView: true,
      name: tagFullName,
      sortable: {
        name: { expression: tagFullName, property: "fullName" },
        create_time: tags.createTime,
        update_time: tags.updateTime,
        push_time: tags.pushTime,
      },
      uniqueName: "global",
      filters: { digest: tags.digest },
      visible: joinedVisible,
    });
    const p = (name: string) => sql.placeholder(name);
    this.byName = viewFinder<TagView>(
      db,
      tagView,
      "tag_by_name",
      and(eq(registries.name, p("registry")), eq(namespaces.name, p("namespace")), eq(repositories.name, p("repository")), eq(tags.name, p("tag")))!,
      joinedVisible,
    );
  }

  create(input: NewTag, audit?: AuditTrail): Promise<TagView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const manifest = await hostedManifest(tx, input.repositoryId, input.digest);
          const [row] = await tx
            .insert(tags)
            .values({ ...input, ...manifest })
            .returning();
          const view = await tagOf(tx, row!.id);
          await writeAudit(tx, audit, { action: "tag.create", resourceType: "tag", resourceId: view.id, resourceName: view.fullName, detail: view.digest });
          await recordEvent(tx, {
            type: EVENT_TYPES.tagMoved,
            at: { repositoryId: view.repositoryId },
            data: { tag: view.name, digest: view.digest, mediaType: view.mediaType, sizeBytes: view.sizeBytes },
            actor: trailActor(audit),
          });
          return view;
        }),
      {
        [constraints.tagName]: nameTaken(input.name),
        tags_repository_id_repositories_id_fk: () => notFound(`repository ${input.repositoryId} not found`),
      },
    );
  }

  get(id: string): Promise<TagView> {
    return guarded(() => this.byId(id));
  }

  /** `<image>:<tag>`, if the caller (its visibility; undefined: everyone) may see it; else NOT_FOUND, whether or not it exists. */
  async lookup(image: ImageName, tag: string, visibility?: Visibility): Promise<TagView> {
    const row = await guarded(() => this.byName({ registry: image.registry, namespace: image.namespace, repository: image.repository, tag }, visibility));
    if (!row) throw notFound(`tag ${image.full}:${tag} not found`);
    return row;
  }

  update(id: string, patch: TagPatch, etag: string, audit?: AuditTrail): Promise<TagView> {
    const values: Record<string, unknown> = { ...patch };
    // push_time is when the tag last moved, so it changes only with the digest.
    if (patch.digest !== undefined) {
      values.pushTime = sql`case when ${tags.digest} = ${patch.digest} then ${tags.pushTime} else now() end`;
    }
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          // Locked: an immutability rule is judged against the tag as it stays until this commits.
          const [before] = await tx
            .select({ repositoryId: tags.repositoryId, digest: tags.digest, name: tags.name })
            .from(tags)
            .where(eq(tags.id, id))
            .for("update");
          if (before) {
            const moves = patch.digest !== undefined && patch.digest !== before.digest;
            const renames = patch.name !== undefined && patch.name !== before.name;
            if (moves || renames)
              await refuseTagChange(
                tx,
                { id, repositoryId: before.repositoryId, name: before.name },
                moves ? "move" : "rename",
                moves ? "tag.move" : "tag.update",
              );
          }
          // In a HOSTED registry a tag's media type and size are its manifest's, whatever the patch says (as on create).
          if (before && (patch.digest !== undefined || patch.mediaType !== undefined || patch.sizeBytes !== undefined)) {
            Object.assign(values, await hostedManifest(tx, before.repositoryId, patch.digest ?? before.digest, patch.digest !== undefined));
          }
          await updateById<TagRow>(tx, table, id, values, etag);
          const row = await tagOf(tx, id);
          // Moving a tag is the event people look for: it gets its own action.
          const moved = before !== undefined && row.digest !== before.digest;
          await writeAudit(tx, audit, {
            action: moved ? "tag.move" : "tag.update",
            resourceType: "tag",
            resourceId: id,
            resourceName: row.fullName,
            detail: moved ? `${before.digest} -> ${row.digest}` : changedFields(patch),
          });
          if (moved) {
            await recordEvent(tx, {
              type: EVENT_TYPES.tagMoved,
              at: { repositoryId: row.repositoryId },
              data: { tag: row.name, digest: row.digest, mediaType: row.mediaType, sizeBytes: row.sizeBytes, previousDigest: before.digest },
              actor: trailActor(audit),
            });
          }
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
          if (!row) return;
          await refuseTagChange(tx, { id, repositoryId: row.repositoryId, name: row.name }, "delete", "tag.delete");
          await writeAudit(tx, audit, {
            action: "tag.delete",
            resourceType: "tag",
            resourceId: id,
            resourceName: await tagPath(tx, row),
            detail: row.digest,
          });
          await recordEvent(tx, {
            type: EVENT_TYPES.tagDeleted,
            at: { repositoryId: row.repositoryId },
            data: { tag: row.name, digest: row.digest, mediaType: row.mediaType, sizeBytes: row.sizeBytes },
            actor: trailActor(audit),
          });
        },
      }),
    );
  }

  list(request: ListRequest, filter: { repositoryId?: string; digest?: string }, visibility?: Visibility): Promise<Page<TagView>> {
    return guarded(() => this.lister.list(request, { parent: filter.repositoryId, values: { digest: filter.digest }, visibility }));
  }

  /** Tags of every registry: `request.query` searches the image reference; `digest`, the manifest they point at. */
  search(request: ListRequest, filter: { digest?: string }, visibility?: Visibility): Promise<Page<TagView>> {
    return guarded(() => this.searcher.list(request, { values: { digest: filter.digest }, visibility }));
  }
}

/** The row just written, as the API shows it (in its transaction). */
async function tagOf(tx: Database, id: string): Promise<TagView> {
  const view = await viewById<TagView>(tx, tagView, id);
  if (!view) throw notFound(`tag ${id} not found`);
  return view;
}

/**
 * In a HOSTED registry a tag can only name a manifest the repository holds: the tag then points
 * at it, and takes its media type and size from it (the manifest is touched so garbage
 * collection, racing, keeps it). Elsewhere (REMOTE catalogs) a tag is a record of what the
 * upstream says, and nothing is checked or overridden. `pointed`: the tag is being pointed at the
 * manifest (its push time moves); otherwise the tag already holds it, and its values are only read.
 */
async function hostedManifest(
  tx: Database,
  repositoryId: string,
  digest: string,
  pointed = true,
): Promise<Pick<TagRow, "manifestId" | "mediaType" | "sizeBytes"> | undefined> {
  const [context] = await tx
    .select({ kind: registries.kind })
    .from(repositories)
    .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .where(eq(repositories.id, repositoryId));
  if (!context) throw notFound(`repository ${repositoryId} not found`);
  if (context.kind !== "hosted") return undefined;
  const where = and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, digest));
  const read = { id: manifests.id, mediaType: manifests.mediaType, size: manifests.totalSizeBytes };
  const [manifest] = pointed
    ? await tx
        .update(manifests)
        .set({ pushTime: sql`now()` })
        .where(where)
        .returning(read)
    : await tx.select(read).from(manifests).where(where);
  if (!manifest) {
    throw failedPrecondition(`tag.digest: manifest ${digest} is not in repository ${repositoryId}; push the manifest first (HOSTED registry)`);
  }
  return { manifestId: manifest.id, mediaType: manifest.mediaType, sizeBytes: manifest.size };
}

async function tagPath(db: Database, tag: Pick<TagRow, "repositoryId" | "name">): Promise<string> {
  return `${await repositoryPath(db, tag.repositoryId)}:${tag.name}`;
}
