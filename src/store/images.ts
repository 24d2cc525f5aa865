// Images by name (`registry/namespace/repository`) and their manifests and tags: what the
// /v2/ API and ImageService read and write. The catalog tables (tags in particular) are the
// same ones the Connect API lists: a push shows up there at once.
// One file past 400 lines on purpose: a manifest push, its tag move, its references and the
// digest locks GC honours are one transaction protocol; split, its invariants would span files.
import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { blobs, manifestReferences, manifests, namespaces, registries, repositories, repositoryBlobs, tags } from "../db/schema.js";
import { manifestBlobUnknown, manifestInvalid } from "../domain/errors.js";
import { effectiveArtifactType, type Descriptor, type ParsedManifest } from "../domain/manifest.js";
import { checkImageNameLength, imageNameLength } from "../domain/image-name.js";
import { lockDigestsShared } from "./digest-locks.js";
import { protectingRuleFor, refuseManifestDelete, refuseTagChange, writeProtectedTag } from "./immutability.js";
import { guarded } from "./pg-errors.js";
import type { RegistryRow } from "./registries.js";
import { HotCache } from "./hot-cache.js";
import type { Visibility } from "./listing.js";
import { joinedVisible, visibilityValues } from "./visibility.js";
import { EVENT_TYPES, type EventActor } from "../domain/events.js";
import { recordEvent } from "./events.js";

/** What a pull needs of its registry: enough to tell HOSTED from REMOTE and to reach the upstream. */
export type ImageRegistry = Pick<RegistryRow, "id" | "name" | "kind" | "version" | "url" | "insecure" | "credentialSealed" | "autoCreate">;

export interface ResolvedImage {
  registry: ImageRegistry;
  namespaceId?: string;
  repositoryId?: string;
  upstreamName?: string | null;
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  payload: Uint8Array;
  subjectDigest: string | null;
}

export interface PushedManifest {
  digest: string;
  subjectDigest?: string;
}

const blobUnknownInManifest = (digest: string) => manifestBlobUnknown(`manifest references ${digest}, which is not in this repository`);

const MANIFEST_COLUMNS = {
  digest: manifests.digest,
  mediaType: manifests.mediaType,
  payload: manifests.payload,
  subjectDigest: manifests.subjectDigest,
};

/**
 * A page of tag names, as the JSON array the registry API answers with, built by PostgreSQL:
 * a page of 1000 tags then costs Node one string instead of a thousand mapped rows. Fetches one
 * name more than asked, to tell whether another page follows.
 */
function tagNamesQuery(db: Database, after: boolean) {
  const p = sql.placeholder;
  const page = db
    .select({ name: tags.name, rn: sql<number>`row_number() over (order by ${tags.name})`.as("rn") })
    .from(tags)
    .where(and(eq(tags.repositoryId, p("repositoryId")), after ? gt(tags.name, p("last")) : undefined))
    .orderBy(asc(tags.name))
    .limit(p("nPlusOne"))
    .as("page");
  return db
    .select({
      json: sql<string>`coalesce(json_agg(${page.name} order by ${page.name}) filter (where ${page.rn} <= ${p("n")}::int), '[]')::text`,
      more: sql<boolean>`count(*) > ${p("n")}::int`,
      last: sql<string | null>`max(${page.name}) filter (where ${page.rn} <= ${p("n")}::int)`,
    })
    .from(page)
    .prepare(after ? "tag_names_after" : "tag_names");
}

const RESOLVED_COLUMNS = {
  // Not the whole row: every /v2/ request runs this, and a description and two timestamps
  // parsed into Dates per request were a measurable part of a manifest GET.
  registry: {
    id: registries.id,
    name: registries.name,
    kind: registries.kind,
    version: registries.version,
    url: registries.url,
    insecure: registries.insecure,
    credentialSealed: registries.credentialSealed,
    autoCreate: registries.autoCreate,
  },
  namespaceId: namespaces.id,
  repositoryId: repositories.id,
  upstreamName: repositories.upstreamName,
};

interface TagNamesPage {
  json: string;
  next?: string;
}

/** The statements every pull runs, built once (see crud.ts getterById for why). */
function pullQueries(db: Database) {
  const p = sql.placeholder;
  return {
    resolve: db
      .select(RESOLVED_COLUMNS)
      .from(registries)
      .leftJoin(namespaces, and(eq(namespaces.registryId, registries.id), eq(namespaces.name, p("namespace"))))
      .leftJoin(repositories, and(eq(repositories.namespaceId, namespaces.id), eq(repositories.name, p("repository"))))
      .where(eq(registries.name, p("registry")))
      .limit(1)
      .prepare("image_resolve"),
    // A pull by tag or digest in one round trip: the name's parts and the manifest, each when it exists.
    resolveWithManifestByTag: db
      .select({ ...RESOLVED_COLUMNS, manifest: MANIFEST_COLUMNS })
      .from(registries)
      .leftJoin(namespaces, and(eq(namespaces.registryId, registries.id), eq(namespaces.name, p("namespace"))))
      .leftJoin(repositories, and(eq(repositories.namespaceId, namespaces.id), eq(repositories.name, p("repository"))))
      .leftJoin(tags, and(eq(tags.repositoryId, repositories.id), eq(tags.name, p("tag"))))
      .leftJoin(manifests, eq(manifests.id, tags.manifestId))
      .where(eq(registries.name, p("registry")))
      .limit(1)
      .prepare("image_manifest_by_tag"),
    resolveWithManifestByDigest: db
      .select({ ...RESOLVED_COLUMNS, manifest: MANIFEST_COLUMNS })
      .from(registries)
      .leftJoin(namespaces, and(eq(namespaces.registryId, registries.id), eq(namespaces.name, p("namespace"))))
      .leftJoin(repositories, and(eq(repositories.namespaceId, namespaces.id), eq(repositories.name, p("repository"))))
      .leftJoin(manifests, and(eq(manifests.repositoryId, repositories.id), eq(manifests.digest, p("digest"))))
      .where(eq(registries.name, p("registry")))
      .limit(1)
      .prepare("image_manifest_by_digest"),
    manifestByDigest: db
      .select(MANIFEST_COLUMNS)
      .from(manifests)
      .where(and(eq(manifests.repositoryId, p("repositoryId")), eq(manifests.digest, p("digest"))))
      .limit(1)
      .prepare("manifest_by_digest"),
    manifestByTag: db
      .select(MANIFEST_COLUMNS)
      .from(tags)
      .innerJoin(manifests, eq(manifests.id, tags.manifestId))
      .where(and(eq(tags.repositoryId, p("repositoryId")), eq(tags.name, p("tag"))))
      .limit(1)
      .prepare("manifest_by_tag"),
    tagNames: tagNamesQuery(db, false),
    tagNamesAfter: tagNamesQuery(db, true),
  };
}

export class ImageStore {
  private readonly queries: ReturnType<typeof pullQueries>;

  /**
   * `cache`: reads of HOSTED repositories that exist are answered from it when it holds them
   * (hot-cache.ts: what invalidates them); a cache that is not listening serves and keeps nothing.
   */
  constructor(
    private readonly db: Database,
    readonly cache: HotCache = new HotCache(0),
  ) {
    this.queries = pullQueries(db);
  }

  /** The registry, and the namespace and repository when they exist: one query. */
  async resolve(registryName: string, namespaceName: string, repositoryName: string): Promise<ResolvedImage | undefined> {
    const key = `n\n${registryName}\n${namespaceName}\n${repositoryName}`;
    const hit = this.cache.get<ResolvedImage>(key);
    if (hit !== undefined) return { ...hit };
    const ticket = this.cache.ticket();
    const [row] = await guarded(() => this.queries.resolve.execute({ registry: registryName, namespace: namespaceName, repository: repositoryName }));
    if (!row) return undefined;
    const image = resolvedOf(row);
    this.keepImage(key, image, ticket);
    return { ...image };
  }

  /** A name that leads to an existing HOSTED repository is kept (a copy: HostedRepository sets repositoryId on its own). */
  private keepImage(key: string, image: ResolvedImage, ticket: number | undefined): void {
    if (ticket === undefined || image.repositoryId === undefined || image.registry.kind !== "hosted") return;
    this.cache.set(key, image.repositoryId, { ...image }, key.length * 2 + 512, ticket);
  }

  /**
   * resolve() and getManifest() in one round trip, for pulls: the image (undefined when the
   * registry does not exist) and the manifest when the repository holds it.
   */
  async resolveManifest(
    registryName: string,
    namespaceName: string,
    repositoryName: string,
    reference: { tag: string } | { digest: string },
  ): Promise<{ image: ResolvedImage; manifest?: StoredManifest; ticket?: number } | undefined> {
    const names = { registry: registryName, namespace: namespaceName, repository: repositoryName };
    const ticket = this.cache.ticket();
    const [row] = await guarded(() =>
      "digest" in reference
        ? this.queries.resolveWithManifestByDigest.execute({ ...names, digest: reference.digest })
        : this.queries.resolveWithManifestByTag.execute({ ...names, tag: reference.tag }),
    );
    if (!row) return undefined;
    const image = resolvedOf(row);
    this.keepImage(`n\n${registryName}\n${namespaceName}\n${repositoryName}`, image, ticket);
    return { image: { ...image }, manifest: row.manifest ?? undefined, ticket };
  }

  /**
   * What resolveManifest() answers for a HOSTED manifest the cache holds, without a round trip
   * (one lookup); undefined when it does not hold it. Its bytes were verified against the digest
   * when they were kept (they cannot change in memory).
   */
  cachedManifest(
    registryName: string,
    namespaceName: string,
    repositoryName: string,
    reference: { tag: string } | { digest: string },
  ): { image: ResolvedImage; manifest: StoredManifest } | undefined {
    const hit = this.cache.get<{ image: ResolvedImage; manifest: StoredManifest }>(manifestKey(registryName, namespaceName, repositoryName, reference));
    return hit && { image: { ...hit.image }, manifest: hit.manifest };
  }

  /**
   * Keeps a HOSTED manifest read by resolveManifest() (the caller verified its bytes against the
   * digest first), under the ticket taken before the read.
   */
  keepManifest(
    name: { registry: string; namespace: string; repository: string },
    image: ResolvedImage,
    reference: { tag: string } | { digest: string },
    manifest: StoredManifest,
    ticket: number | undefined,
  ): void {
    if (ticket === undefined || image.repositoryId === undefined || image.registry.kind !== "hosted") return;
    const key = manifestKey(name.registry, name.namespace, name.repository, reference);
    const bytes = key.length * 2 + manifest.payload.byteLength + manifest.digest.length * 2 + manifest.mediaType.length * 2 + 512;
    this.cache.set(key, image.repositoryId, { image: { ...image }, manifest }, bytes, ticket);
  }

  /** Creates the namespace and repository of a first push (both may already exist). */
  async ensureRepository(registry: Pick<RegistryRow, "id" | "name">, namespaceName: string, repositoryName: string, upstreamName?: string): Promise<string> {
    checkImageNameLength(imageNameLength(registry.name, namespaceName, repositoryName), `the image name ${registry.name}/${namespaceName}/${repositoryName}`);
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await tx.insert(namespaces).values({ registryId: registry.id, name: namespaceName }).onConflictDoNothing();
        const [ns] = await tx
          .select({ id: namespaces.id })
          .from(namespaces)
          .where(and(eq(namespaces.registryId, registry.id), eq(namespaces.name, namespaceName)));
        await tx.insert(repositories).values({ namespaceId: ns!.id, name: repositoryName, upstreamName }).onConflictDoNothing();
        const [repo] = await tx
          .select({ id: repositories.id })
          .from(repositories)
          .where(and(eq(repositories.namespaceId, ns!.id), eq(repositories.name, repositoryName)));
        return repo!.id;
      }),
    );
  }

  private invalidating<T>(repositoryId: string, write: () => Promise<T>): Promise<T> {
    return invalidatingAfter(this.cache, repositoryId, write);
  }

  /** A manifest by tag or digest. */
  async getManifest(repositoryId: string, reference: { tag: string } | { digest: string }): Promise<StoredManifest | undefined> {
    const rows = await guarded(() =>
      "digest" in reference
        ? this.queries.manifestByDigest.execute({ repositoryId, digest: reference.digest })
        : this.queries.manifestByTag.execute({ repositoryId, tag: reference.tag }),
    );
    return rows[0];
  }

  /**
   * Stores a manifest and, when `tag` is given, points the tag at it. Every config and layer
   * must be a blob of this repository and every child of an index a manifest of it
   * (MANIFEST_BLOB_UNKNOWN otherwise). Idempotent for the same bytes.
   */
  async pushManifest(input: {
    repositoryId: string;
    digest: string;
    bytes: Uint8Array;
    manifest: ParsedManifest;
    tag?: string;
    /** Who pushed, for the push's event. */
    actor?: EventActor;
  }): Promise<PushedManifest> {
    const { repositoryId, digest, bytes, manifest } = input;
    const blobDescriptors = [...(manifest.config ? [manifest.config] : []), ...manifest.layers];
    return this.invalidating(repositoryId, () =>
      this.db.transaction(async (tx) => {
        // Shared with blob commits, exclusive in garbage collection: a blob checked here cannot be
        // collected before this transaction's references to it are committed (digest-locks.ts).
        await lockDigestsShared(
          tx,
          blobDescriptors.map((d) => d.digest),
        );
        const blobDigests = [...new Set(blobDescriptors.map((d) => d.digest))];
        if (blobDigests.length > 0) {
          const present = await tx
            .select({ digest: blobs.digest, size: blobs.sizeBytes })
            .from(repositoryBlobs)
            .innerJoin(blobs, eq(blobs.digest, repositoryBlobs.digest))
            .where(and(eq(repositoryBlobs.repositoryId, repositoryId), inArray(repositoryBlobs.digest, blobDigests)));
          const sizes = new Map(present.map((r) => [r.digest, r.size]));
          const missing = blobDigests.find((d) => !sizes.has(d));
          if (missing) throw blobUnknownInManifest(missing);
          const wrong = blobDescriptors.find((d) => sizes.get(d.digest) !== d.size);
          if (wrong) {
            throw manifestInvalid(`manifest invalid: it gives ${wrong.digest} a size of ${wrong.size} bytes, but the blob has ${sizes.get(wrong.digest)}`);
          }
        }

        let totalSize = bytes.byteLength + blobDescriptors.reduce((sum, d) => sum + d.size, 0);
        const childDigests = [...new Set(manifest.manifests.map((d) => d.digest))].sort();
        if (childDigests.length > 0) {
          // Children are locked (in digest order: concurrent index pushes cannot deadlock) and
          // touched, so a collection racing this push re-checks them and keeps them.
          const children = await tx
            .select({ id: manifests.id, digest: manifests.digest, total: manifests.totalSizeBytes })
            .from(manifests)
            .where(and(eq(manifests.repositoryId, repositoryId), inArray(manifests.digest, childDigests)))
            .orderBy(asc(manifests.digest))
            .for("update");
          const have = new Map(children.map((c) => [c.digest, c.total]));
          const missing = childDigests.find((d) => !have.has(d));
          if (missing) throw blobUnknownInManifest(missing);
          await tx
            .update(manifests)
            .set({ pushTime: sql`now()` })
            .where(
              inArray(
                manifests.id,
                children.map((c) => c.id),
              ),
            );
          totalSize = bytes.byteLength + childDigests.reduce((sum, d) => sum + have.get(d)!, 0);
        }

        const [stored] = await tx
          .insert(manifests)
          .values(manifestRow(repositoryId, digest, bytes, manifest, totalSize))
          .onConflictDoUpdate({ target: [manifests.repositoryId, manifests.digest], set: { pushTime: sql`now()` } })
          .returning({ id: manifests.id, inserted: sql<boolean>`(xmax = 0)` });
        if (stored!.inserted) await insertReferences(tx, stored!.id, manifest);
        let previousDigest: string | undefined;
        if (input.tag !== undefined) {
          const tag = { repositoryId, name: input.tag, manifestId: stored!.id, digest, mediaType: manifest.mediaType, sizeBytes: totalSize };
          // The one query an immutability rule costs a push (immutability.ts).
          const protecting = await protectingRuleFor(tx, repositoryId, input.tag);
          previousDigest = protecting ? await writeProtectedTag(tx, tag, protecting) : await upsertTag(tx, tag);
        }
        // Last: the outbox's lock is held from here to the commit.
        await recordEvent(tx, {
          type: EVENT_TYPES.imagePushed,
          at: { repositoryId },
          data: {
            tag: input.tag,
            digest,
            mediaType: manifest.mediaType,
            sizeBytes: totalSize,
            previousDigest: previousDigest === digest ? undefined : previousDigest,
          },
          actor: input.actor,
        });
        return { digest, subjectDigest: manifest.subject?.digest };
      }),
    );
  }

  /**
   * Keeps a manifest a pull-through proxy fetched (already verified against its digest) in the
   * proxied repository. Its blobs need not be cached: they come when they are pulled. Untagged,
   * it is collected like any other after the grace period of its last use (see touch()).
   */
  async cacheManifest(input: { repositoryId: string; digest: string; bytes: Uint8Array; manifest: ParsedManifest }): Promise<void> {
    const { repositoryId, digest, bytes, manifest } = input;
    const blobDescriptors = [...(manifest.config ? [manifest.config] : []), ...manifest.layers];
    const totalSize = bytes.byteLength + [...blobDescriptors, ...manifest.manifests].reduce((sum, d) => sum + d.size, 0);
    await guarded(() =>
      this.db.transaction(async (tx) => {
        const [stored] = await tx
          .insert(manifests)
          .values(manifestRow(repositoryId, digest, bytes, manifest, totalSize))
          .onConflictDoNothing()
          .returning({ id: manifests.id });
        if (stored) await insertReferences(tx, stored.id, manifest);
      }),
    );
  }

  /**
   * Marks a cached manifest as used, so garbage collection keeps it another grace period. At most
   * one write per `intervalMs` per manifest, however often it is pulled.
   */
  async touch(repositoryId: string, digest: string, intervalMs: number): Promise<void> {
    await guarded(() =>
      this.db
        .update(manifests)
        .set({ pushTime: sql`now()` })
        .where(
          and(
            eq(manifests.repositoryId, repositoryId),
            eq(manifests.digest, digest),
            sql`${manifests.pushTime} < now() - ${intervalMs}::integer * interval '1 millisecond'`,
          ),
        ),
    );
  }

  /** When a manifest of the repository was last pulled, as written (pull-times.ts); undefined: never. */
  async lastPullTime(repositoryId: string, digest: string): Promise<Date | undefined> {
    const [row] = await guarded(() =>
      this.db
        .select({ at: manifests.lastPullTime })
        .from(manifests)
        .where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, digest))),
    );
    return row?.at ?? undefined;
  }

  /**
   * Deletes a manifest by digest; its tags go with it. False when there was none. Refused when an
   * immutable tag points at it, or at an index that lists it (the row is locked first, so no push
   * can tag it or list it meanwhile).
   */
  async deleteManifest(repositoryId: string, digest: string, actor?: EventActor): Promise<boolean> {
    return this.invalidating(repositoryId, () =>
      this.db.transaction(async (tx) => {
        const [manifest] = await tx
          .select({ id: manifests.id, mediaType: manifests.mediaType, sizeBytes: manifests.totalSizeBytes })
          .from(manifests)
          .where(and(eq(manifests.repositoryId, repositoryId), eq(manifests.digest, digest)))
          .for("update");
        if (!manifest) return false;
        await refuseManifestDelete(tx, repositoryId, { id: manifest.id, digest }, "manifest.delete");
        const tagged = await tx.select({ name: tags.name }).from(tags).where(eq(tags.manifestId, manifest.id)).orderBy(asc(tags.name));
        await tx.delete(manifests).where(eq(manifests.id, manifest.id));
        await recordEvent(tx, {
          type: EVENT_TYPES.manifestDeleted,
          at: { repositoryId },
          data: { digest, mediaType: manifest.mediaType, sizeBytes: manifest.sizeBytes, tags: tagged.map((t) => t.name) },
          actor,
        });
        return true;
      }),
    );
  }

  /** Removes a tag (the manifest stays until garbage collection). False when there was none; refused when it is immutable. */
  async deleteTag(repositoryId: string, name: string, actor?: EventActor): Promise<boolean> {
    return this.invalidating(repositoryId, () =>
      this.db.transaction(async (tx) => {
        const [tag] = await tx
          .select({ id: tags.id, digest: tags.digest, mediaType: tags.mediaType, sizeBytes: tags.sizeBytes })
          .from(tags)
          .where(and(eq(tags.repositoryId, repositoryId), eq(tags.name, name)))
          .for("update");
        if (!tag) return false;
        await refuseTagChange(tx, { id: tag.id, repositoryId, name }, "delete", "tag.delete");
        await tx.delete(tags).where(eq(tags.id, tag.id));
        await recordEvent(tx, {
          type: EVENT_TYPES.tagDeleted,
          at: { repositoryId },
          data: { tag: name, digest: tag.digest, mediaType: tag.mediaType, sizeBytes: tag.sizeBytes },
          actor,
        });
        return true;
      }),
    );
  }

  /**
   * Tag names in lexical (byte) order after `last`, at most `n`, as a JSON array; `last` is the
   * last name in it when another page follows. `hosted`: the page may be kept in the cache
   * (a REMOTE repository's tags are always asked of the upstream).
   */
  async tagNamesPage(repositoryId: string, n: number, last?: string, hosted = false): Promise<TagNamesPage> {
    const key = `p\n${repositoryId}\n${n}\n${last ?? ""}`;
    const hit = hosted ? this.cache.get<TagNamesPage>(key) : undefined;
    if (hit !== undefined) return hit;
    const ticket = hosted ? this.cache.ticket() : undefined;
    const [row] = await guarded(() =>
      last === undefined
        ? this.queries.tagNames.execute({ repositoryId, n, nPlusOne: n + 1 })
        : this.queries.tagNamesAfter.execute({ repositoryId, n, nPlusOne: n + 1, last }),
    );
    const page: TagNamesPage = { json: row?.json ?? "[]", next: row?.more ? (row.last ?? undefined) : undefined };
    this.cache.set(key, repositoryId, page, (key.length + page.json.length + (page.next?.length ?? 0)) * 2 + 64, ticket);
    return page;
  }

  /**
   * Manifests of the repository whose subject is `digest` (the referrers API), in digest order
   * after `after`, at most `limit`.
   */
  /** The media type a manifest of the repository gives blob `digest` (config or layer), if one lists it. */
  async blobMediaType(repositoryId: string, digest: string): Promise<string | undefined> {
    const [row] = await guarded(() =>
      this.db
        .select({ mediaType: manifestReferences.mediaType })
        .from(manifestReferences)
        .innerJoin(manifests, eq(manifests.id, manifestReferences.manifestId))
        .where(and(eq(manifests.repositoryId, repositoryId), eq(manifestReferences.digest, digest)))
        .limit(1),
    );
    return row?.mediaType;
  }

  async referrers(repositoryId: string, digest: string, options: { artifactType?: string; after?: string; limit: number }): Promise<Descriptor[]> {
    const rows = await guarded(() =>
      this.db
        .select({
          mediaType: manifests.mediaType,
          digest: manifests.digest,
          size: sql<number>`octet_length(${manifests.payload})::int`,
          artifactType: manifests.artifactType,
          annotations: manifests.annotations,
        })
        .from(manifests)
        .where(
          and(
            eq(manifests.repositoryId, repositoryId),
            eq(manifests.subjectDigest, digest),
            options.artifactType === undefined ? undefined : eq(manifests.artifactType, options.artifactType),
            options.after === undefined ? undefined : gt(manifests.digest, options.after),
          ),
        )
        .orderBy(asc(manifests.digest))
        .limit(options.limit),
    );
    return rows.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
      ...(r.annotations ? { annotations: r.annotations } : {}),
    }));
  }

  /**
   * Every repository (HOSTED, and REMOTE ones synced or cached) as full names, in (registry,
   * namespace, repository) order; with a visibility, only those it lets the caller see.
   */
  async catalog(n: number, after?: [string, string, string], visibility?: Visibility): Promise<string[]> {
    const rows = await guarded(() =>
      this.db
        .select({ registry: registries.name, namespace: namespaces.name, repository: repositories.name })
        .from(repositories)
        .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
        .innerJoin(registries, eq(registries.id, namespaces.registryId))
        .where(
          and(
            after ? sql`(${registries.name}, ${namespaces.name}, ${repositories.name}) > (${after[0]}, ${after[1]}, ${after[2]})` : undefined,
            visibility ? joinedVisible(visibilityValues(visibility)) : undefined,
          ),
        )
        .orderBy(asc(registries.name), asc(namespaces.name), asc(repositories.name))
        .limit(n),
    );
    return rows.map((r) => `${r.registry}/${r.namespace}/${r.repository}`);
  }
}

/**
 * Runs a write of the repository's tags or manifests, and drops what this process cached of the
 * repository once it has committed (other processes hear of it from the trigger's notice), so
 * the next read here sees it. Also after a failure: whether it committed may be unknown.
 */
function invalidatingAfter<T>(cache: HotCache, repositoryId: string | undefined, write: () => Promise<T>): Promise<T> {
  return guarded(write).finally(() => (repositoryId === undefined ? cache.invalidateAll() : cache.invalidateRepository(repositoryId)));
}

function resolvedOf(row: { registry: ImageRegistry; namespaceId: string | null; repositoryId: string | null; upstreamName: string | null }): ResolvedImage {
  return {
    registry: row.registry,
    namespaceId: row.namespaceId ?? undefined,
    repositoryId: row.repositoryId ?? undefined,
    upstreamName: row.upstreamName,
  };
}

const manifestKey = (registry: string, namespace: string, repository: string, reference: { tag: string } | { digest: string }): string =>
  "digest" in reference ? `d\n${registry}\n${namespace}\n${repository}\n${reference.digest}` : `t\n${registry}\n${namespace}\n${repository}\n${reference.tag}`;

/** The manifests row for pushed or cached bytes. */
function manifestRow(repositoryId: string, digest: string, bytes: Uint8Array, manifest: ParsedManifest, totalSizeBytes: number) {
  return {
    repositoryId,
    digest,
    mediaType: manifest.mediaType,
    payload: bytes,
    totalSizeBytes,
    configDigest: manifest.config?.digest,
    subjectDigest: manifest.subject?.digest,
    artifactType: effectiveArtifactType(manifest),
    annotations: manifest.annotations,
  };
}

/** What a manifest points at: config and layers (blobs), or an index's children (manifests). */
async function insertReferences(tx: Database, manifestId: string, manifest: ParsedManifest): Promise<void> {
  const references = [
    ...(manifest.config ? [{ kind: "config" as const, d: manifest.config }] : []),
    ...manifest.layers.map((d) => ({ kind: "layer" as const, d })),
    ...manifest.manifests.map((d) => ({ kind: "manifest" as const, d })),
  ].map(({ kind, d }, position) => ({ manifestId, position, kind, digest: d.digest, mediaType: d.mediaType, sizeBytes: d.size }));
  for (let i = 0; i < references.length; i += 500) {
    await tx.insert(manifestReferences).values(references.slice(i, i + 500));
  }
}

/**
 * Points a tag at a manifest. Re-tagging the same manifest writes nothing (the upsert's WHERE, as
 * the GitLab Container Registry does it); moving it bumps version, update_time and push_time.
 * Returns the digest the tag named before (undefined: it is new), read by the statement itself:
 * a subquery in RETURNING sees the rows as they were before the statement.
 */
async function upsertTag(
  tx: Database,
  tag: { repositoryId: string; name: string; manifestId: string; digest: string; mediaType: string; sizeBytes: number },
): Promise<string | undefined> {
  const rows = await tx
    .insert(tags)
    .values(tag)
    .onConflictDoUpdate({
      target: [tags.repositoryId, tags.name],
      set: {
        manifestId: sql`excluded.manifest_id`,
        digest: sql`excluded.digest`,
        mediaType: sql`excluded.media_type`,
        sizeBytes: sql`excluded.size_bytes`,
        pushTime: sql`now()`,
        updateTime: sql`now()`,
        version: sql`${tags.version} + 1`,
      },
      setWhere: sql`${tags.manifestId} is distinct from excluded.manifest_id`,
    })
    .returning({ previous: sql<string | null>`(select t.digest from tags t where t.repository_id = ${tag.repositoryId} and t.name = ${tag.name})` });
  // No row: the tag already named this manifest.
  if (rows.length === 0) return tag.digest;
  return rows[0]!.previous ?? undefined;
}
