import { and, eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { constraints, namespaces, registries, repositories } from "../db/schema.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, namespacePath, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { refuseScopeDelete } from "./immutability.js";
import { guarded } from "./pg-errors.js";
import { joinedVisible, namespaceVisible } from "./visibility.js";
import { namespaceView, viewById, viewFinder, viewGetterById, type NamespaceView } from "./views.js";

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
  private readonly byId: (id: string) => Promise<NamespaceView>;
  private readonly lister: Lister<NamespaceView>;
  private readonly byName: (values: { registry: string; namespace: string }, visibility?: Visibility) => Promise<NamespaceView | undefined>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = viewGetterById<NamespaceView>(db, namespaceView, "namespace");
    this.lister = new Lister<NamespaceView>(db, tokens, {
      resource: "namespaces",
      table: namespaces,
      id: namespaces.id,
      view: namespaceView,
      name: namespaces.name,
      sortable: { name: namespaces.name, create_time: namespaces.createTime, update_time: namespaces.updateTime },
      uniqueName: "parent",
      parent: { column: namespaces.registryId, parentId: registries.id, noun: "registry" },
      visible: namespaceVisible,
    });
    const p = (name: string) => sql.placeholder(name);
    this.byName = viewFinder<NamespaceView>(
      db,
      namespaceView,
      "namespace_by_name",
      and(eq(registries.name, p("registry")), eq(namespaces.name, p("namespace")))!,
      joinedVisible,
    );
  }

  create(input: NewNamespace, audit?: AuditTrail): Promise<NamespaceView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [row] = await tx.insert(namespaces).values(input).returning();
          const view = await namespaceOf(tx, row!.id);
          await writeAudit(tx, audit, { action: "namespace.create", resourceType: "namespace", resourceId: view.id, resourceName: view.fullName });
          return view;
        }),
      {
        [constraints.namespaceName]: nameTaken(input.name),
        namespaces_registry_id_registries_id_fk: () => notFound(`registry ${input.registryId} not found`),
      },
    );
  }

  get(id: string): Promise<NamespaceView> {
    return guarded(() => this.byId(id));
  }

  /** `<registry>/<namespace>`, if the caller (its visibility; undefined: everyone) may see it; else NOT_FOUND, whether or not it exists. */
  async lookup(name: { registry: string; namespace: string }, visibility?: Visibility): Promise<NamespaceView> {
    const row = await guarded(() => this.byName({ registry: name.registry, namespace: name.namespace }, visibility));
    if (!row) throw notFound(`namespace ${name.registry}/${name.namespace} not found`);
    return row;
  }

  update(id: string, patch: NamespacePatch, etag: string, audit?: AuditTrail): Promise<NamespaceView> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<NamespaceRow>(tx, table, id, patch, etag);
          if (patch.name !== undefined) await checkLongestImageName(tx, row);
          const view = await namespaceOf(tx, id);
          await writeAudit(tx, audit, {
            action: "namespace.update",
            resourceType: "namespace",
            resourceId: id,
            resourceName: view.fullName,
            detail: changedFields(patch),
          });
          return view;
        }),
      { [constraints.namespaceName]: nameTaken(patch.name ?? "") },
    );
  }

  delete(id: string, options: { etag: string; force: boolean }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        children: { table: repositories, parentId: repositories.namespaceId, nouns: "repositories" },
        then: async (tx) => {
          // With force, the tags go too: none of them may be immutable.
          await refuseScopeDelete(tx, { kind: "namespace", id }, "namespace.delete");
          await writeAudit(tx, audit, {
            action: "namespace.delete",
            resourceType: "namespace",
            resourceId: id,
            resourceName: await namespacePath(tx, id),
            detail: options.force ? "force" : "",
          });
        },
      }),
    );
  }

  list(request: ListRequest, filter: { registryId?: string }, visibility?: Visibility): Promise<Page<NamespaceView>> {
    return guarded(() => this.lister.list(request, { parent: filter.registryId, visibility }));
  }
}

/** The row just written, as the API shows it (in its transaction). */
async function namespaceOf(tx: Database, id: string): Promise<NamespaceView> {
  const view = await viewById<NamespaceView>(tx, namespaceView, id);
  if (!view) throw notFound(`namespace ${id} not found`);
  return view;
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
