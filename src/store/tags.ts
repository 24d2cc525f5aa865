import { sql } from "drizzle-orm";
import { repositories, tags } from "../db/schema.js";
import type { Database } from "../db/database.js";
import { alreadyExists, notFound } from "../domain/errors.js";
import { deleteById, getById, updateById, type CatalogTable } from "./crud.js";
import { listPage, type ListRequest, type Page } from "./listing.js";
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
  constructor(
    private readonly db: Database,
    private readonly tokens: PageTokens,
  ) {}

  create(input: NewTag): Promise<TagRow> {
    return guarded(async () => (await this.db.insert(tags).values(input).returning())[0]!, {
      tags_repository_name_unique: nameTaken(input.name),
      tags_repository_id_repositories_id_fk: () => notFound(`repository ${input.repositoryId} not found`),
    });
  }

  get(id: string): Promise<TagRow> {
    return guarded(() => getById<TagRow>(this.db, table, id));
  }

  update(id: string, patch: TagPatch, etag: string): Promise<TagRow> {
    const values: Record<string, unknown> = { ...patch };
    // push_time is when the tag last moved, so it changes only with the digest.
    if (patch.digest !== undefined) {
      values.pushTime = sql`case when ${tags.digest} = ${patch.digest} then ${tags.pushTime} else now() end`;
    }
    return guarded(() => updateById<TagRow>(this.db, table, id, values, etag), {
      tags_repository_name_unique: nameTaken(patch.name ?? ""),
    });
  }

  delete(id: string, options: { etag: string }): Promise<void> {
    return guarded(() => deleteById(this.db, table, id, options));
  }

  list(request: ListRequest, filter: { repositoryId?: string }): Promise<Page<TagRow>> {
    return guarded(() =>
      listPage<TagRow>(this.db, this.tokens, "tags", {
        table: tags,
        id: tags.id,
        name: tags.name,
        sortable: {
          name: tags.name,
          create_time: tags.createTime,
          update_time: tags.updateTime,
          push_time: tags.pushTime,
        },
        parent: filter.repositoryId
          ? { column: tags.repositoryId, value: filter.repositoryId, parentId: repositories.id, noun: "repository" }
          : undefined,
      }, request),
    );
  }
}

