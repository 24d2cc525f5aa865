// Answers cached under a version number that the database bumps whenever their source changes
// (repositories.tags_version, by a trigger on tags). A hit needs the version, which the caller
// reads anyway; the answer is current exactly while the version is the same, in every process
// that shares the database, so nothing is ever invalidated by hand and no TTL is guessed.
//
// An entry computed after reading version v may already hold changes of v + 1 (read committed:
// the answer's query starts after the version was read), never older data: caching it under v
// can only serve a caller something newer than the version it saw.

interface Entry<T> {
  version: number;
  value: T;
  bytes: number;
}

export class VersionedCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private bytes = 0;

  /** `maxBytes` bounds the sum of the sizes given to set(); the least recently used go first. */
  constructor(private readonly maxBytes: number) {}

  get(key: string, version: number): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.version !== version) {
      // The source moved on (or, from another caller's older read, back): drop it.
      this.remove(key, entry);
      return undefined;
    }
    // Refresh its place in the LRU order (a Map iterates in insertion order).
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  set(key: string, version: number, value: T, bytes: number): void {
    const old = this.entries.get(key);
    if (old !== undefined) this.remove(key, old);
    if (bytes > this.maxBytes) return;
    this.entries.set(key, { version, value, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.remove(oldest, entry);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  private remove(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    this.bytes -= entry.bytes;
  }
}
