// The SQL of a sync of a REMOTE registry: namespaces and repositories made on first sight, tags
// written only when something about them changed. A sync that finds nothing new writes nothing:
// no version, update time or etag moves, so running it again (or on a schedule) is free.
import { and, eq, inArray, isNotNull, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { namespaces, repositories, tags } from "../db/schema.js";
import { alreadyExists } from "../domain/errors.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { guarded } from "./pg-errors.js";
import type { RegistryRow } from "./registries.js";
import { EVENT_TYPES, type EventActor, type SyncSummary } from "../domain/events.js";
import { recordEvent } from "./events.js";

export interface SyncedTag {
  name: string;
  digest: string;
  mediaType: string;
  sizeBytes: number;
}

export interface TagChanges {
  added: number;
  updated: number;
  removed: string[];
}

const BATCH = 500;

export class SyncStore {
  constructor(private readonly db: Database) {}

  /**
   * The repository for an upstream path, with its namespace, created when missing. A repository
   * made through the API (no upstream name yet) is adopted; one that already stands for another
   * upstream path (`testbox` and `library/testbox` map to the same name) → already-exists.
   */
  async ensureRepository(registry: Pick<RegistryRow, "id" | "name">, namespace: string, repository: string, upstreamName: string): Promise<string> {
    checkImageNameLength(imageNameLength(registry.name, namespace, repository), `the image name ${registry.name}/${namespace}/${repository}`);
    return guarded(async () => {
      // Read first: the common case (synced before) then costs one query and writes nothing.
      const existing = await this.find(registry.id, namespace, repository);
      if (existing?.repositoryId && existing.upstreamName === upstreamName) return existing.repositoryId;
      return this.db.transaction(async (tx) => {
        await tx.insert(namespaces).values({ registryId: registry.id, name: namespace }).onConflictDoNothing();
        const [ns] = await tx
          .select({ id: namespaces.id })
          .from(namespaces)
          .where(and(eq(namespaces.registryId, registry.id), eq(namespaces.name, namespace)));
        await tx.insert(repositories).values({ namespaceId: ns!.id, name: repository, upstreamName }).onConflictDoNothing();
        const [repo] = await tx
          .select({ id: repositories.id, upstreamName: repositories.upstreamName })
          .from(repositories)
          .where(and(eq(repositories.namespaceId, ns!.id), eq(repositories.name, repository)))
          .for("update");
        if (repo!.upstreamName === null) {
          await tx.update(repositories).set({ upstreamName }).where(eq(repositories.id, repo!.id));
        } else if (repo!.upstreamName !== upstreamName) {
          throw alreadyExists(
            `${namespace}/${repository} already stands for upstream repository ${repo!.upstreamName}, so upstream ${upstreamName} cannot be imported under the same name`,
          );
        }
        return repo!.id;
      });
    });
  }

  private async find(registryId: string, namespace: string, repository: string) {
    const [row] = await this.db
      .select({ repositoryId: repositories.id, upstreamName: repositories.upstreamName })
      .from(namespaces)
      .innerJoin(repositories, and(eq(repositories.namespaceId, namespaces.id), eq(repositories.name, repository)))
      .where(and(eq(namespaces.registryId, registryId), eq(namespaces.name, namespace)))
      .limit(1);
    return row;
  }

  /** The repository's tags as stored, by name. */
  async tagsOf(repositoryId: string): Promise<Map<string, SyncedTag>> {
    const rows = await guarded(() =>
      this.db
        .select({ name: tags.name, digest: tags.digest, mediaType: tags.mediaType, sizeBytes: tags.sizeBytes })
        .from(tags)
        .where(eq(tags.repositoryId, repositoryId)),
    );
    return new Map(rows.map((r) => [r.name, r]));
  }

  /**
   * Writes the tags that are new or changed and deletes the named ones, in one transaction.
   * An upsert touches a row only when digest, media type or size differ (a concurrent sync that
   * got there first leaves nothing to do); push_time moves only with the digest.
   */
  async applyTags(repositoryId: string, changed: SyncedTag[], vanished: string[]): Promise<TagChanges> {
    const result: TagChanges = { added: 0, updated: 0, removed: [] };
    if (changed.length === 0 && vanished.length === 0) return result;
    await guarded(() =>
      this.db.transaction(async (tx) => {
        for (let i = 0; i < changed.length; i += BATCH) {
          const rows = await tx
            .insert(tags)
            .values(changed.slice(i, i + BATCH).map((t) => ({ repositoryId, ...t })))
            .onConflictDoUpdate({
              target: [tags.repositoryId, tags.name],
              set: {
                digest: sql`excluded.digest`,
                mediaType: sql`excluded.media_type`,
                sizeBytes: sql`excluded.size_bytes`,
                pushTime: sql`case when ${tags.digest} = excluded.digest then ${tags.pushTime} else now() end`,
                updateTime: sql`now()`,
                version: sql`${tags.version} + 1`,
              },
              setWhere: sql`(${tags.digest}, ${tags.mediaType}, ${tags.sizeBytes}) is distinct from (excluded.digest, excluded.media_type, excluded.size_bytes)`,
            })
            .returning({ inserted: sql<boolean>`(xmax = 0)` });
          for (const r of rows) {
            if (r.inserted) result.added++;
            else result.updated++;
          }
        }
        for (let i = 0; i < vanished.length; i += BATCH) {
          const rows = await tx
            .delete(tags)
            .where(and(eq(tags.repositoryId, repositoryId), inArray(tags.name, vanished.slice(i, i + BATCH))))
            .returning({ name: tags.name });
          result.removed.push(...rows.map((r) => r.name));
        }
      }),
    );
    return result;
  }

  /** A sync of the registry ended (done, or stopped by an upstream-wide error): its event. */
  async finished(registryId: string, summary: SyncSummary, actor?: EventActor): Promise<void> {
    await guarded(() => this.db.transaction((tx) => recordEvent(tx, { type: EVENT_TYPES.registrySynced, at: { registryId }, data: { sync: summary }, actor })));
  }

  /** Repositories of the registry that came from the upstream (have an upstream name), with it. */
  async syncedRepositories(registryId: string): Promise<{ id: string; upstreamName: string }[]> {
    return guarded(() =>
      this.db
        .select({ id: repositories.id, upstreamName: sql<string>`${repositories.upstreamName}` })
        .from(repositories)
        .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
        .where(and(eq(namespaces.registryId, registryId), isNotNull(repositories.upstreamName))),
    );
  }
}
