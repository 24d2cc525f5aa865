// Syncing a REMOTE registry: imports its catalog and tags into namespaces, repositories and
// tags, a few repositories at a time, reporting progress after each one. Application logic, not
// an RPC: it reads the upstream (src/upstream/), writes through the store (store.sync) and yields
// plain events; RegistryService.SyncRegistry (src/api/sync-service.ts) turns them into messages
// and knows nothing of how a sync works. Nothing here knows protobuf or Connect.
//
// What it decides:
// - Names: upstream `a/b/c` → namespace `a`, repository `b/c`; `testbox` → `library/testbox`
//   (src/domain/upstream-names.ts), the exact upstream path recorded as upstream_name. Paths
//   that break our grammar, or that land on a name another path already holds, are reported
//   and skipped.
// - A tag's size_bytes is what pulling it downloads: the manifest's bytes plus the sizes it
//   lists (config and layers; for an index, each child manifest with its config and layers),
//   as for pushed tags. Manifests are fetched (by digest, verified) only for tags that are new
//   or moved; an unchanged tag costs one HEAD.
// - Idempotent: a tag is written only when its digest, media type or size changed; a second run
//   over an unchanged upstream writes nothing and moves no etag.
// - Tags that vanished upstream (within the tag filter) are deleted and listed in the progress
//   message of their repository; so are the tags of synced repositories that left the catalog
//   (the repositories themselves stay). Tags of a repository whose tag list could not be read
//   are left alone.
// - Errors of one repository (not found, a name we cannot represent, a malformed answer, a
//   permission it lacks) are counted, reported in its progress message, and the sync goes on.
//   Errors that concern the whole upstream (unreachable, timing out, credential refused,
//   throttling) stop it: the repositories already done are reported, then the stream ends with
//   that error (UNAVAILABLE naming the host, DEADLINE_EXCEEDED, UNAUTHENTICATED…). Running it
//   again picks up where it stopped, since nothing done is redone.
import { failedPrecondition, isDomainError, unknownFault, type ErrorKind } from "../domain/errors.js";
import { parseManifest, type ParsedManifest } from "../domain/manifest.js";
import { compileTagPattern, type TagPattern } from "../domain/tag-pattern.js";
import { catalogNameOf, isDockerHub, type CatalogImageName } from "../domain/upstream-names.js";
import type { RegistryRow } from "../store/registries.js";
import type { SyncedTag, SyncStore } from "../store/sync.js";
import type { Manifest, UpstreamClient } from "../upstream/client.js";
import type { EventActor } from "../domain/events.js";

/** What a sync has counted so far. */
export interface SyncTotals {
  repositoriesFound: number;
  repositoriesSynced: number;
  tagsAdded: number;
  tagsUpdated: number;
  tagsRemoved: number;
  errors: number;
}

/**
 * Progress: one `repository` event per repository done (synced, failed, or whose tags went because
 * it left the catalog), then one `done` event. A sync stopped by an upstream-wide error yields the
 * repositories already done and then throws that error.
 */
export type SyncEvent =
  { kind: "repository"; totals: SyncTotals; repository: string; error?: string; removedTags: string[] } | { kind: "done"; totals: SyncTotals };

export interface SyncSettings {
  /** Repositories synced at once. */
  concurrency: number;
  /** `n` asked of the upstream's catalog pages. */
  pageSize: number;
}

export interface SyncOptions {
  /** Who asked for the sync: its `registry.synced` event names them. */
  actor?: EventActor;
}

/** Manifest HEADs in flight per repository. */
const TAG_CONCURRENCY = 4;
/** Errors that say the upstream as a whole cannot be synced now. */
const UPSTREAM_WIDE = new Set<ErrorKind>(["unavailable", "deadline-exceeded", "unauthenticated", "resource-exhausted"]);

/**
 * Syncs `registry` from its upstream `client` (see the top of this file). `signal`: the caller
 * went away; the repositories in flight stop and the generator ends.
 */
export function syncRegistry(
  registry: RegistryRow,
  client: UpstreamClient,
  store: SyncStore,
  settings: SyncSettings,
  signal: AbortSignal,
  options: SyncOptions = {},
): AsyncGenerator<SyncEvent> {
  return new RegistrySync(registry, client, store, settings, signal, options).run();
}

interface RepositoryOutcome {
  path: string;
  added: number;
  updated: number;
  removed: string[];
  error?: string;
}

class RegistrySync {
  private readonly prefix: string;
  private readonly dockerHub: boolean;
  private readonly tagPattern?: TagPattern;
  private readonly abort = new AbortController();
  private readonly signal: AbortSignal;
  private readonly sizes = new Map<string, Promise<number>>();
  private readonly counts = { found: 0, synced: 0, added: 0, updated: 0, removed: 0, errors: 0 };
  private fatal: unknown;

  constructor(
    private readonly registry: RegistryRow,
    private readonly client: UpstreamClient,
    private readonly store: SyncStore,
    private readonly settings: SyncSettings,
    private readonly callerSignal: AbortSignal,
    private readonly options: SyncOptions,
  ) {
    this.prefix = registry.syncRepositoryPrefix;
    this.dockerHub = isDockerHub(registry.url);
    this.tagPattern = registry.syncTagPattern ? storedTagPattern(registry) : undefined;
    this.signal = AbortSignal.any([callerSignal, this.abort.signal]);
  }

  async *run(): AsyncGenerator<SyncEvent> {
    const done: RepositoryOutcome[] = [];
    let wake: (() => void) | undefined;
    let listed = false;
    let finished = false;
    const seen = new Set<string>();
    const report = (outcome: RepositoryOutcome | undefined) => {
      if (outcome) done.push(outcome);
      wake?.();
    };

    const producer = (async () => {
      const running = new Set<Promise<void>>();
      try {
        for await (const path of this.client.allRepositories({ pageSize: this.settings.pageSize, signal: this.signal })) {
          if (!path.startsWith(this.prefix)) continue;
          const name = catalogNameOf(path, { dockerHub: this.dockerHub });
          // Keyed by the upstream name a repository records, to find the ones that left.
          const key = "problem" in name ? path : name.upstreamName;
          if (seen.has(key)) continue;
          seen.add(key);
          this.counts.found++;
          while (running.size >= this.settings.concurrency) await Promise.race(running);
          if (this.fatal !== undefined) break;
          const work: Promise<void> = this.syncRepository(path, name).then(report);
          running.add(work);
          void work.finally(() => running.delete(work));
        }
        listed = this.fatal === undefined;
      } catch (err) {
        this.stop(err);
      } finally {
        await Promise.all(running);
        finished = true;
        wake?.();
      }
    })();

    try {
      for (;;) {
        while (done.length > 0) yield this.progress(done.shift()!);
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      await producer;
      if (this.fatal !== undefined) {
        // A sync the caller abandoned is not one that finished.
        if (!this.callerGone()) await this.finished(errorText(this.fatal));
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what was caught, as it was
        throw this.fatal;
      }
      // Only a complete catalog tells which synced repositories are gone.
      if (listed) for await (const outcome of this.removeDeparted(seen)) yield this.progress(outcome);
      await this.finished();
      yield { kind: "done", totals: this.totals() };
    } finally {
      // The client went away or the sync failed: stop the repositories still in flight.
      this.abort.abort();
    }
  }

  /** Its `registry.synced` event (the store writes it in a transaction of its own). */
  private finished(error?: string): Promise<void> {
    return this.store.finished(this.registry.id, { ...this.totals(), ...(error !== undefined ? { error } : {}) }, this.options.actor);
  }

  private callerGone(): boolean {
    return this.callerSignal.aborted;
  }

  private stop(err: unknown): void {
    this.fatal ??= err;
    this.abort.abort();
  }

  private totals(): SyncTotals {
    const c = this.counts;
    return { repositoriesFound: c.found, repositoriesSynced: c.synced, tagsAdded: c.added, tagsUpdated: c.updated, tagsRemoved: c.removed, errors: c.errors };
  }

  private progress(o: RepositoryOutcome): SyncEvent {
    return { kind: "repository", totals: this.totals(), repository: o.path, error: o.error, removedTags: o.removed };
  }

  private count(o: RepositoryOutcome, synced: boolean): RepositoryOutcome {
    this.counts.added += o.added;
    this.counts.updated += o.updated;
    this.counts.removed += o.removed.length;
    if (o.error !== undefined) this.counts.errors++;
    else if (synced) this.counts.synced++;
    return o;
  }

  /** One repository; undefined when the whole sync has to stop (the error is kept in `fatal`). */
  private async syncRepository(path: string, name: CatalogImageName | { problem: string }): Promise<RepositoryOutcome | undefined> {
    const outcome: RepositoryOutcome = { path, added: 0, updated: 0, removed: [] };
    if ("problem" in name) {
      outcome.error = `cannot be imported: ${name.problem}`;
      return this.count(outcome, false);
    }
    try {
      const upstreamTags: string[] = [];
      for await (const tag of this.client.allTags(path, { signal: this.signal })) {
        if (this.wanted(tag)) upstreamTags.push(tag);
      }
      const repositoryId = await this.store.ensureRepository(this.registry, name.namespace, name.repository, name.upstreamName);
      const stored = await this.store.tagsOf(repositoryId);
      const { changed, keep, errors } = await this.readTags(path, upstreamTags, stored);
      const vanished = [...stored.keys()].filter((t) => !keep.has(t) && this.wanted(t));
      const changes = await this.store.applyTags(repositoryId, changed, vanished);
      outcome.added = changes.added;
      outcome.updated = changes.updated;
      outcome.removed = changes.removed;
      if (errors.length > 0) outcome.error = `${errors.length} tag(s) not synced: ${errors.slice(0, 5).join("; ")}`;
      return this.count(outcome, true);
    } catch (err) {
      if (!isDomainError(err) || UPSTREAM_WIDE.has(err.kind) || this.signal.aborted) {
        this.stop(err);
        return undefined;
      }
      outcome.error = err.message;
      return this.count(outcome, false);
    }
  }

  private wanted(tag: string): boolean {
    return !this.tagPattern || this.tagPattern.matches(tag);
  }

  /**
   * HEADs every upstream tag; new and moved ones come back with their size. `keep` is every
   * tag still present upstream (or that could not be checked, so it is not deleted).
   */
  private async readTags(path: string, tags: string[], stored: Map<string, SyncedTag>) {
    const changed: SyncedTag[] = [];
    const keep = new Set<string>();
    const errors: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < tags.length) {
        const tag = tags[next++]!;
        try {
          const head = await this.client.getManifest(path, tag, { method: "HEAD", signal: this.signal });
          keep.add(tag);
          const before = stored.get(tag);
          if (before && before.digest === head.digest && before.mediaType === head.mediaType) continue;
          changed.push({ name: tag, digest: head.digest, mediaType: head.mediaType, sizeBytes: await this.totalSize(path, head) });
        } catch (err) {
          // Deleted between the tag list and now: it is gone, like one missing from the list.
          if (isDomainError(err, "not-found")) continue;
          if (!isDomainError(err) || UPSTREAM_WIDE.has(err.kind) || this.signal.aborted) throw err;
          keep.add(tag);
          errors.push(`${tag}: ${err.message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(TAG_CONCURRENCY, tags.length) }, worker));
    return { changed, keep, errors };
  }

  /** Manifest bytes plus everything it references (see the top of this file); one fetch per digest per sync. */
  private totalSize(path: string, manifest: Pick<Manifest, "digest" | "size">): Promise<number> {
    let size = this.sizes.get(manifest.digest);
    if (!size) {
      size = this.measure(path, manifest.digest);
      this.sizes.set(manifest.digest, size);
      // A failure is not cached: another repository may hold the same manifest intact.
      size.catch(() => this.sizes.delete(manifest.digest));
    }
    return size;
  }

  private async measure(path: string, digest: string): Promise<number> {
    const m = await this.client.getManifest(path, digest, { signal: this.signal });
    let parsed: ParsedManifest;
    try {
      parsed = parseManifest(m.bytes!, m.mediaType);
    } catch (err) {
      if (!isDomainError(err)) throw err;
      throw unknownFault(`upstream ${this.client.host} sent manifest ${path}@${digest} that is not valid (${err.message})`);
    }
    if (!parsed.isIndex) return m.size + (parsed.config?.size ?? 0) + parsed.layers.reduce((sum, d) => sum + d.size, 0);
    let total = m.size;
    for (const child of parsed.manifests) {
      try {
        total += await this.totalSize(path, child);
      } catch (err) {
        if (!isDomainError(err) || UPSTREAM_WIDE.has(err.kind) || this.signal.aborted) throw err;
        // A child the upstream cannot serve counts with its own bytes only.
        total += child.size;
      }
    }
    return total;
  }

  /** Deletes the tags of synced repositories (within the filter) that the catalog no longer lists. */
  private async *removeDeparted(seen: Set<string>): AsyncGenerator<RepositoryOutcome> {
    for (const repo of await this.store.syncedRepositories(this.registry.id)) {
      if (!repo.upstreamName.startsWith(this.prefix) || seen.has(repo.upstreamName)) continue;
      const stored = await this.store.tagsOf(repo.id);
      const vanished = [...stored.keys()].filter((t) => this.wanted(t));
      if (vanished.length === 0) continue;
      const changes = await this.store.applyTags(repo.id, [], vanished);
      this.counts.removed += changes.removed.length;
      yield { path: repo.upstreamName, added: 0, updated: 0, removed: changes.removed };
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The stored tag pattern, compiled. One stored before patterns were RE2 (JavaScript syntax) may use
 * what RE2 refuses: that sync fails, saying what to change, before anything is read or written.
 */
function storedTagPattern(registry: RegistryRow): TagPattern {
  const compiled = compileTagPattern(registry.syncTagPattern);
  if (!("problem" in compiled)) return compiled;
  throw failedPrecondition(
    `registry "${registry.name}" has sync_filter.tag_pattern ${JSON.stringify(registry.syncTagPattern)}: ${compiled.problem}; update the registry's sync_filter.tag_pattern`,
  );
}
