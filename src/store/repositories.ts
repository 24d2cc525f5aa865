import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { constraints, manifests, namespaces, registries, repositories, tags } from "../db/schema.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength, type ImageName } from "../domain/image-name.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, repositoryPath, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { refuseScopeDelete } from "./immutability.js";
import { guarded } from "./pg-errors.js";
import { joinedVisible, repositoryVisible } from "./visibility.js";
import { repositoryFullName, repositoryView, viewById, viewFinder, viewGetterById, type RepositoryView } from "./views.js";

export type RepositoryRow = typeof repositories.$inferSelect;
export type NewRepository = Pick<RepositoryRow, "namespaceId" | "name" | "description">;
export type RepositoryPatch = Partial<Pick<RepositoryRow, "name" | "description">>;

const table: CatalogTable = {
  table: repositories,
  id: repositories.id,
  version: repositories.version,
  updateTime: repositories.updateTime,
  noun: "repository",
};

const nameTaken = (name: string) => () => alreadyExists(`a repository named "${name}" already exists in this namespace`);

export class RepositoryStore {
  private readonly byId: (id: string) => Promise<RepositoryView>;
  private readonly lister: Lister<RepositoryView>;
  private readonly searcher: Lister<RepositoryView>;
  private readonly byName: (
    values: { registry: string; namespace: string; repository: string },
    visibility?: Visibility,
  ) => Promise<RepositoryView | undefined>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = viewGetterById<RepositoryView>(db, repositoryView, "repository");
    this.lister = new Lister<RepositoryView>(db, tokens, {
      resource: "repositories",
      table: repositories,
      id: repositories.id,
      view: repositoryView,
      name: repositories.name,
      sortable: { name: repositories.name, create_time: repositories.createTime, update_time: repositories.updateTime },
      uniqueName: "parent",
      parent: { column: repositories.namespaceId, parentId: namespaces.id, noun: "namespace" },
      visible: (v) => repositoryVisible(repositories.id, v),
    });
    // Across registries, on the image name: the count must join the parents too, and visibility
    // reads the joined rows instead of a subquery per repository.
    this.searcher = new Lister<RepositoryView>(db, tokens, {
      resource: "repository-search",
      table: repositories,
      id: repositories.id,
      view: repositoryView,
      countThroughView: true,
      name: repositoryFullName,
      sortable: {
        name: { expression: repositoryFullName, property: "fullName" },
        create_time: repositories.createTime,
        update_time: repositories.updateTime,
      },
      uniqueName: "global",
      filters: {
        // Holding the manifest: stored here (pushed, or cached by a pull-through proxy), or tagged (REMOTE records).
        digest: {
          where: (digest) => sql`${repositories.id} in (select m.repository_id from ${manifests} m where m.digest = ${digest}
            union select t.repository_id from ${tags} t where t.digest = ${digest})`,
        },
      },
      visible: joinedVisible,
    });
    const p = (name: string) => sql.placeholder(name);
    this.byName = viewFinder<RepositoryView>(
      db,
      repositoryView,
      "repository_by_name",
      and(eq(registries.name, p("registry")), eq(namespaces.name, p("namespace")), eq(repositories.name, p("repository")))!,
      joinedVisible,
    );
  }

  create(input: NewRepository, audit?: AuditTrail): Promise<RepositoryView> {
    const missingNamespace = () => notFound(`namespace ${input.namespaceId} not found`);
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          await checkImageName(tx, input.namespaceId, input.name, missingNamespace);
          const [row] = await tx.insert(repositories).values(input).returning();
          const view = await repositoryOf(tx, row!.id);
          await writeAudit(tx, audit, { action: "repository.create", resourceType: "repository", resourceId: view.id, resourceName: view.fullName });
          return view;
        }),
      {
        [constraints.repositoryName]: nameTaken(input.name),
        repositories_namespace_id_namespaces_id_fk: missingNamespace,
      },
    );
  }

  get(id: string): Promise<RepositoryView> {
    return guarded(() => this.byId(id));
  }

  /** The repository with this image name, if the caller (its visibility; undefined: everyone) may see it; else NOT_FOUND, whether or not it exists. */
  async lookup(name: ImageName, visibility?: Visibility): Promise<RepositoryView> {
    const row = await guarded(() => this.byName({ registry: name.registry, namespace: name.namespace, repository: name.repository }, visibility));
    if (!row) throw notFound(`repository ${name.full} not found`);
    return row;
  }

  update(id: string, patch: RepositoryPatch, etag: string, audit?: AuditTrail): Promise<RepositoryView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<RepositoryRow>(tx, table, id, patch, etag);
          if (patch.name !== undefined) await checkImageName(tx, row.namespaceId, row.name, () => notFound(`repository ${id} not found`));
          const view = await repositoryOf(tx, id);
          await writeAudit(tx, audit, {
            action: "repository.update",
            resourceType: "repository",
            resourceId: id,
            resourceName: view.fullName,
            detail: changedFields(patch),
          });
          return view;
        }),
      { [constraints.repositoryName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string; force: boolean }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        children: { table: tags, parentId: tags.repositoryId, nouns: "tags" },
        then: async (tx) => {
          // With force, the tags go too: none of them may be immutable.
          await refuseScopeDelete(tx, { kind: "repository", id }, "repository.delete");
          await writeAudit(tx, audit, {
            action: "repository.delete",
            resourceType: "repository",
            resourceId: id,
            resourceName: await repositoryPath(tx, id),
            detail: options.force ? "force" : "",
          });
        },
      }),
    );
  }

  list(request: ListRequest, filter: { namespaceId?: string }, visibility?: Visibility): Promise<Page<RepositoryView>> {
    return guarded(() => this.lister.list(request, { parent: filter.namespaceId, visibility }));
  }

  /** Repositories of every registry: `request.query` searches the image name; `digest`, a manifest they hold. */
  search(request: ListRequest, filter: { digest?: string }, visibility?: Visibility): Promise<Page<RepositoryView>> {
    return guarded(() => this.searcher.list(request, { values: { digest: filter.digest }, visibility }));
  }
}

/** The row just written, as the API shows it (in its transaction). */
async function repositoryOf(tx: Database, id: string): Promise<RepositoryView> {
  const view = await viewById<RepositoryView>(tx, repositoryView, id);
  if (!view) throw notFound(`repository ${id} not found`);
  return view;
}

/** `<registry>/<namespace>/<repository>` must stay within the OCI limit. */
async function checkImageName(db: Database, namespaceId: string, repositoryName: string, missing: () => Error): Promise<void> {
  const [parent] = await db
    .select({ registry: registries.name, namespace: namespaces.name })
    .from(namespaces)
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .where(eq(namespaces.id, namespaceId))
    .limit(1);
  if (!parent) throw missing();
  checkImageNameLength(
    imageNameLength(parent.registry, parent.namespace, repositoryName),
    `name: the image name "${parent.registry}/${parent.namespace}/${repositoryName.slice(0, 40)}…"`,
  );
}
