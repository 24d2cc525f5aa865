// Reads of HOSTED repositories answered from memory, with no database round trip on a hit: a
// name's registry, namespace and repository; a manifest by tag or by digest; a page of tag names.
// Every entry belongs to one repository (its row id). What invalidates them, in every process
// that shares the database:
//
// - PostgreSQL sends a notice on the "artifact_cache" channel when a transaction that changed a
//   repository's tags or manifests, or the repository, its namespace or registry, commits
//   (triggers of migration 0006; payload "r<repository id>" or "*" for everything). Each process
//   listens on a connection of its own (db/database.ts listen()) and drops what the notice names.
// - The process that made the change drops the same entries itself once its transaction has
//   committed (the store's write paths call invalidate*()), so its next request sees the change
//   without waiting for its own notice.
// - While the listening connection is not established (before the first LISTEN, after it drops,
//   while it reconnects) nothing is served from memory and nothing is kept: notices sent meanwhile
//   are lost, so everything cached before the drop is dropped, and the cache comes back empty
//   once LISTEN succeeds again.
// - A fill (a query's answer about to be kept) carries the sequence number of the last
//   invalidation seen before its query started. It is kept only when no invalidation of its
//   repository (or of everything) came in since: a notice that overtakes a slower query's older
//   answer is never undone by that answer.
//
// Values are immutable once kept (callers must not change them). Memory is bounded by the sizes
// the callers declare (bytes), least recently used first out, approximately: a hit only marks its
// entry used (a hit is every manifest GET, and moving the entry to the end of the order cost a
// Map delete and insert on each: 8% of a hot GET's CPU), and eviction gives a used entry a second
// chance (moved to the end, mark cleared) before taking the next one ("second chance", CLOCK).

interface Entry {
  value: unknown;
  repositoryId: string;
  bytes: number;
  /** Read since it was kept or last given its second chance. */
  used: boolean;
}

/** Sequence numbers of invalidations by repository kept for tickets in flight; past this, all is dropped instead. */
const MAX_TRACKED_INVALIDATIONS = 4096;

export class HotCache {
  private readonly entries = new Map<string, Entry>();
  /** Keys by repository, to drop one repository's entries. */
  private readonly byRepository = new Map<string, Set<string>>();
  private bytes = 0;
  /** Counts invalidations; a ticket is its value when the fill's query started. */
  private seq = 0;
  /** seq of the last invalidation of everything. */
  private allAt = 0;
  /** seq of the last invalidation of each repository (since allAt). */
  private readonly repositoryAt = new Map<string, number>();
  private listening = false;

  /** `maxBytes` 0 turns the cache off. */
  constructor(readonly maxBytes: number) {}

  /** True while a notice of every committed change reaches this process. */
  get active(): boolean {
    return this.listening && this.maxBytes > 0;
  }

  /** The listening connection is up (LISTEN done) or down: either way, what was kept is dropped. */
  setListening(listening: boolean): void {
    this.invalidateAll();
    this.listening = listening;
  }

  /** Taken before the query whose answer may be kept; undefined when nothing may be kept now. */
  ticket(): number | undefined {
    return this.active ? this.seq : undefined;
  }

  get<T>(key: string): T | undefined {
    if (!this.listening) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    entry.used = true;
    return entry.value as T;
  }

  /** Keeps `value` unless the repository (or everything) was invalidated since `ticket` was taken. */
  set(key: string, repositoryId: string, value: unknown, bytes: number, ticket: number | undefined): void {
    if (ticket === undefined || !this.active) return;
    if (this.allAt > ticket || (this.repositoryAt.get(repositoryId) ?? 0) > ticket) return;
    if (bytes > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(key, old);
    this.entries.set(key, { value, repositoryId, bytes, used: false });
    let keys = this.byRepository.get(repositoryId);
    if (keys === undefined) this.byRepository.set(repositoryId, (keys = new Set()));
    keys.add(key);
    this.bytes += bytes;
    // Oldest first (a Map iterates in insertion order); an entry moved to the end is met again
    // with its mark cleared, so the loop ends. The entry just kept is never the one to go.
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      if (oldest === key) continue;
      if (entry.used) {
        entry.used = false;
        this.entries.delete(oldest);
        this.entries.set(oldest, entry);
      } else this.remove(oldest, entry);
    }
  }

  invalidateRepository(repositoryId: string): void {
    this.seq++;
    if (this.repositoryAt.size >= MAX_TRACKED_INVALIDATIONS) {
      this.invalidateAll();
      return;
    }
    this.repositoryAt.set(repositoryId, this.seq);
    const keys = this.byRepository.get(repositoryId);
    if (keys === undefined) return;
    for (const key of keys) {
      const entry = this.entries.get(key);
      if (entry !== undefined) this.remove(key, entry);
    }
  }

  invalidateAll(): void {
    this.seq++;
    this.allAt = this.seq;
    this.repositoryAt.clear();
    this.entries.clear();
    this.byRepository.clear();
    this.bytes = 0;
  }

  /** A notice's payload (see the triggers of migration 0006): "*" or "r<repository id>". */
  notice(payload: string): void {
    if (payload.startsWith("r") && payload.length > 1) this.invalidateRepository(payload.slice(1));
    else this.invalidateAll();
  }

  get size(): number {
    return this.entries.size;
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
    const keys = this.byRepository.get(entry.repositoryId);
    if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.byRepository.delete(entry.repositoryId);
    }
  }
}

/** The channel the triggers notify and every process listens on. */
export const CACHE_CHANNEL = "artifact_cache";
