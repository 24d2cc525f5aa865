import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { constraints, namespaces, registries, repositories } from "../db/schema.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, namespacePath, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

export type NamespaceRow = typeof namespaces.$inferSelect;
export type NewNamespace = Pick<NamespaceRow, "registryId" | "name" | "description"> & Partial<Pick<NamespaceRow, "public">>;
export type NamespacePatch = Partial<Pick<NamespaceRow, "name" | "description" | "public">>;

const table: CatalogTable = {
  table: namespaces,
  id: namespaces.id,
  version: namespaces.version,
  updateTime: namespaces.updateTime,
  noun: "namespace",
};

const nameTaken = (name: string) => () => alreadyExists(`a namespace named "${name}" already exists in this registry`);

export class NamespaceStore {
  private readonly byId: (id: string) => Promise<NamespaceRow>;
  private readonly lister: Lister<NamespaceRow>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = getterById<NamespaceRow>(db, table);
    this.lister = new Lister<NamespaceRow>(db, tokens, {
      resource: "namespaces",
      table: namespaces,
      id: namespaces.id,
      name: namespaces.name,
      sortable: { name: namespaces.name, create_time: namespaces.createTime, update_time: namespaces.updateTime },
      uniqueName: "parent",
      parent: { column: namespaces.registryId, parentId: registries.id, noun: "registry" },
      visible: (v) => sql`(${namespaces.public} or ${namespaces.id} = any(${v.namespaces}) or ${namespaces.registryId} = any(${v.registries})
        or exists (select 1 from ${registries} r where r.id = ${namespaces.registryId} and r.public))`,
    });
  }

  create(input: NewNamespace, audit?: AuditTrail): Promise<NamespaceRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [row] = await tx.insert(namespaces).values(input).returning();
          await writeAudit(tx, audit, {
            action: "namespace.create",
            resourceType: "namespace",
            resourceId: row!.id,
            resourceName: await namespacePath(tx, row!.id),
          });
          return row!;
        }),
      {
        [constraints.namespaceName]: nameTaken(input.name),
        namespaces_registry_id_registries_id_fk: () => notFound(`registry ${input.registryId} not found`),
      },
    );
  }

  get(id: string): Promise<NamespaceRow> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: NamespacePatch, etag: string, audit?: AuditTrail): Promise<NamespaceRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<NamespaceRow>(tx, table, id, patch, etag);
          if (patch.name !== undefined) await checkLongestImageName(tx, row);
          await writeAudit(tx, audit, {
            action: "namespace.update",
            resourceType: "namespace",
            resourceId: id,
            resourceName: await namespacePath(tx, id),
            detail: changedFields(patch),
          });
          return row;
        }),
      { [constraints.namespaceName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string; force: boolean }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        children: { table: repositories, parentId: repositories.namespaceId, nouns: "repositories" },
        then: async (tx) =>
          writeAudit(tx, audit, {
            action: "namespace.delete",
            resourceType: "namespace",
            resourceId: id,
            resourceName: await namespacePath(tx, id),
            detail: options.force ? "force" : "",
          }),
      }),
    );
  }

  list(request: ListRequest, filter: { registryId?: string }, visibility?: Visibility): Promise<Page<NamespaceRow>> {
    return guarded(() => this.lister.list(request, { parent: filter.registryId, visibility }));
  }
}

/** A rename must keep every image name in the namespace within the limit. */
async function checkLongestImageName(db: Database, namespace: NamespaceRow): Promise<void> {
  const [row] = await db
    .select({
      registry: registries.name,
      longest: sql<number | null>`(select max(length(${repositories.name})) from ${repositories} where ${repositories.namespaceId} = ${namespace.id})::int`,
    })
    .from(registries)
    .where(eq(registries.id, namespace.registryId));
  if (!row?.longest) return;
  checkImageNameLength(imageNameLength(row.registry, namespace.name, row.longest), `name: renaming the namespace to "${namespace.name}"`);
}
