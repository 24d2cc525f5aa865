import { eq } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { constraints, namespaces, registries, repositories, tags } from "../db/schema.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, repositoryPath, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { repositoryVisible } from "./visibility.js";

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
  private readonly byId: (id: string) => Promise<RepositoryRow>;
  private readonly lister: Lister<RepositoryRow>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = getterById<RepositoryRow>(db, table);
    this.lister = new Lister<RepositoryRow>(db, tokens, {
      resource: "repositories",
      table: repositories,
      id: repositories.id,
      name: repositories.name,
      sortable: { name: repositories.name, create_time: repositories.createTime, update_time: repositories.updateTime },
      uniqueName: "parent",
      parent: { column: repositories.namespaceId, parentId: namespaces.id, noun: "namespace" },
      visible: (v) => repositoryVisible(repositories.id, v),
    });
  }

  create(input: NewRepository, audit?: AuditTrail): Promise<RepositoryRow> {
    const missingNamespace = () => notFound(`namespace ${input.namespaceId} not found`);
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          await checkImageName(tx, input.namespaceId, input.name, missingNamespace);
          const [row] = await tx.insert(repositories).values(input).returning();
          await writeAudit(tx, audit, {
            action: "repository.create",
            resourceType: "repository",
            resourceId: row!.id,
            resourceName: await repositoryPath(tx, row!.id),
          });
          return row!;
        }),
      {
        [constraints.repositoryName]: nameTaken(input.name),
        repositories_namespace_id_namespaces_id_fk: missingNamespace,
      },
    );
  }

  get(id: string): Promise<RepositoryRow> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: RepositoryPatch, etag: string, audit?: AuditTrail): Promise<RepositoryRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<RepositoryRow>(tx, table, id, patch, etag);
          if (patch.name !== undefined) await checkImageName(tx, row.namespaceId, row.name, () => notFound(`repository ${id} not found`));
          await writeAudit(tx, audit, {
            action: "repository.update",
            resourceType: "repository",
            resourceId: id,
            resourceName: await repositoryPath(tx, id),
            detail: changedFields(patch),
          });
          return row;
        }),
      { [constraints.repositoryName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string; force: boolean }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        children: { table: tags, parentId: tags.repositoryId, nouns: "tags" },
        then: async (tx) =>
          writeAudit(tx, audit, {
            action: "repository.delete",
            resourceType: "repository",
            resourceId: id,
            resourceName: await repositoryPath(tx, id),
            detail: options.force ? "force" : "",
          }),
      }),
    );
  }

  list(request: ListRequest, filter: { namespaceId?: string }, visibility?: Visibility): Promise<Page<RepositoryRow>> {
    return guarded(() => this.lister.list(request, { parent: filter.namespaceId, visibility }));
  }
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
