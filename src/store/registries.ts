import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { constraints, namespaces, registries, repositories } from "../db/schema.js";
import { alreadyExists, invalidArgument, notFound } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { deleteById, getterById, updateById, type CatalogTable } from "./crud.js";
import { changedFields, writeAudit, type AuditTrail } from "./audit.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { refuseScopeDelete } from "./immutability.js";
import { guarded } from "./pg-errors.js";
import { registryVisible } from "./visibility.js";
import { registryView, viewFinder } from "./views.js";

export type RegistryRow = typeof registries.$inferSelect;
export type RegistryKind = RegistryRow["kind"];
type Settable = "name" | "url" | "insecure" | "description" | "credentialSealed" | "autoCreate" | "syncRepositoryPrefix" | "syncTagPattern" | "public";
export type NewRegistry = Pick<RegistryRow, "kind"> & Partial<Pick<RegistryRow, Settable>> & Pick<RegistryRow, "name">;
export type RegistryPatch = Partial<Pick<RegistryRow, Settable>>;

const table: CatalogTable = {
  table: registries,
  id: registries.id,
  version: registries.version,
  updateTime: registries.updateTime,
  noun: "registry",
};

const nameTaken = (name: string) => () => alreadyExists(`a registry named "${name}" already exists`);
const urlRule = () => invalidArgument("url: a REMOTE registry needs the URL of its upstream, a HOSTED registry must not have one");
const hostedRule = () => invalidArgument("insecure, credential and sync_filter apply to REMOTE registries only");
const rules = { [constraints.registryUrl]: urlRule, [constraints.registryHosted]: hostedRule };

export class RegistryStore {
  private readonly byId: (id: string) => Promise<RegistryRow>;
  private readonly lister: Lister<RegistryRow>;
  private readonly byName: (values: { name: string }, visibility?: Visibility) => Promise<RegistryRow | undefined>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = getterById<RegistryRow>(db, table);
    this.lister = new Lister<RegistryRow>(db, tokens, {
      resource: "registries",
      table: registries,
      id: registries.id,
      name: registries.name,
      sortable: { name: registries.name, create_time: registries.createTime, update_time: registries.updateTime },
      uniqueName: "global",
      filters: { kind: registries.kind },
      visible: registryVisible,
    });
    this.byName = viewFinder<RegistryRow>(db, registryView, "registry_by_name", eq(registries.name, sql.placeholder("name")), registryVisible);
  }

  create(input: NewRegistry, audit?: AuditTrail): Promise<RegistryRow> {
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const [row] = await tx.insert(registries).values(input).returning();
          await writeAudit(tx, audit, { action: "registry.create", resourceType: "registry", resourceId: row!.id, resourceName: row!.name, detail: row!.kind });
          return row!;
        }),
      { [constraints.registryName]: nameTaken(input.name), ...rules },
    );
  }

  get(id: string): Promise<RegistryRow> {
    return guarded(() => this.byId(id));
  }

  /** The registry named `name`, if the caller (its visibility; undefined: everyone) may see it; else NOT_FOUND, whether or not it exists. */
  async lookup(name: string, visibility?: Visibility): Promise<RegistryRow> {
    const row = await guarded(() => this.byName({ name }, visibility));
    if (!row) throw notFound(`registry ${name} not found`);
    return row;
  }

  async findByName(name: string): Promise<RegistryRow | undefined> {
    return guarded(async () => (await this.db.select().from(registries).where(eq(registries.name, name)).limit(1))[0]);
  }

  /**
   * A credential belongs to the upstream it was given for: an update that moves `url` to another
   * scheme, host or port without setting `credential` too drops the stored one, so the old secret
   * is never sent to the new host. Decided in the UPDATE itself, against the row's url at that
   * moment (urls are stored normalised, `scheme://host[:port]`, so equal strings mean the same
   * origin).
   */
  update(id: string, patch: RegistryPatch, etag: string, audit?: AuditTrail): Promise<RegistryRow> {
    const set: Record<string, unknown> =
      patch.url !== undefined && patch.credentialSealed === undefined
        ? {
            ...patch,
            credentialSealed: sql`case when ${registries.url} = ${patch.url} then ${registries.credentialSealed} else null end`,
          }
        : patch;
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          const row = await updateById<RegistryRow>(tx, table, id, set, etag);
          if (patch.name !== undefined) await checkLongestImageName(tx, row.id, patch.name);
          await writeAudit(tx, audit, {
            action: "registry.update",
            resourceType: "registry",
            resourceId: id,
            resourceName: row.name,
            detail: changedFields(patch),
          });
          return row;
        }),
      { [constraints.registryName]: nameTaken(patch.name ?? ""), ...rules },
    );
  }

  delete(id: string, options: { etag: string; force: boolean }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        children: { table: namespaces, parentId: namespaces.registryId, nouns: "namespaces" },
        then: async (tx) => {
          // With force, the tags go too: none of them may be immutable.
          await refuseScopeDelete(tx, { kind: "registry", id }, "registry.delete");
          const [row] = await tx.select({ name: registries.name }).from(registries).where(eq(registries.id, id));
          await writeAudit(tx, audit, {
            action: "registry.delete",
            resourceType: "registry",
            resourceId: id,
            resourceName: row?.name,
            detail: options.force ? "force" : "",
          });
        },
      }),
    );
  }

  list(request: ListRequest, filter: { kind?: RegistryKind }, visibility?: Visibility): Promise<Page<RegistryRow>> {
    return guarded(() => this.lister.list(request, { values: { kind: filter.kind }, visibility }));
  }
}

/** A rename must keep every image name in the registry within the limit. */
async function checkLongestImageName(db: Database, registryId: string, registryName: string): Promise<void> {
  const [row] = await db
    .select({ longest: sql<number | null>`max(length(${namespaces.name}) + length(${repositories.name}))::int` })
    .from(namespaces)
    .innerJoin(repositories, eq(repositories.namespaceId, namespaces.id))
    .where(eq(namespaces.registryId, registryId));
  // `longest` counts a namespace and a repository together; the two "/" are counted once here.
  const longest = row?.longest ?? 0;
  if (longest > 0) checkImageNameLength(imageNameLength(registryName, longest, 0), `name: renaming the registry to "${registryName}"`);
}
