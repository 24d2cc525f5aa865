// When tags and manifests were last pulled (Tag.last_pull_time, retention's pulled_within), without
// slowing pulls: a pull (a GET of a manifest on /v2/ or ImageService.GetManifest, by tag or digest)
// only sets an entry of a map in memory, on the request's path; every PULL_TIME_FLUSH_MS the map
// is written in one statement and emptied. So:
// - staleness: a pull shows up at most one interval (plus the statement's time) after it;
// - writes: at most one per tag and per manifest per interval, however often they are pulled;
// - a process that stops abruptly loses its last interval's pulls (a clean stop writes them).
//   That is acceptable: a pull time only ever keeps an image longer, and the next pull sets it.
// Tags keep theirs in tag_pulls, not in a column of tags, so a write never bumps tags_version
// (which would drop the read cache of the repository in every process); manifests in
// manifests.last_pull_time (no trigger watches its updates). A time only moves forward, so
// replicas writing the same rows in any order agree.
//
// This is not the pull-through cache's touch() (images.ts): that keeps a cached manifest from
// garbage collection by moving its push_time, on the pull's own path, once per interval. This
// records use for people and for retention, and never keeps anything from garbage collection.
import type { Logger } from "pino";
import { sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { guarded } from "./pg-errors.js";

/** Distinct entries kept between flushes; past it a flush starts at once, and while one runs new pulls are dropped. */
const MAX_ENTRIES = 50_000;

interface Entry {
  repositoryId: string;
  /** Pulled by this tag; absent: by digest. */
  tag?: string;
  digest: string;
  /** Epoch ms of the latest pull. */
  at: number;
}

export class PullTimes {
  private pending = new Map<string, Entry>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private dropped = 0;

  constructor(
    private readonly db: Database,
    /** PULL_TIME_FLUSH_MS: how often recorded pulls are written (the staleness bound). */
    readonly intervalMs: number,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** A manifest of a HOSTED repository was pulled, by `tag` or by digest. No I/O. */
  record(repositoryId: string, tag: string | undefined, digest: string): void {
    const key = tag === undefined ? `${repositoryId}\n@${digest}` : `${repositoryId}\n:${tag}\n${digest}`;
    const entry = this.pending.get(key);
    if (entry) {
      entry.at = this.now();
      return;
    }
    if (this.pending.size >= MAX_ENTRIES) {
      if (this.flushing) {
        this.dropped++;
        return;
      }
      void this.flush();
    }
    this.pending.set(key, { repositoryId, tag, digest, at: this.now() });
  }

  /** Writes every PULL_TIME_FLUSH_MS until stop(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is pending. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes what was recorded so far (one statement); a failure is logged and those pulls are lost. */
  async flush(): Promise<void> {
    if (this.flushing) await this.flushing;
    if (this.pending.size === 0) return;
    const batch = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = this.write(batch).finally(() => (this.flushing = undefined));
    await this.flushing;
  }

  private async write(batch: Entry[]): Promise<void> {
    const rows = JSON.stringify(batch.map((e) => ({ r: e.repositoryId, t: e.tag ?? null, d: e.digest, at: new Date(e.at).toISOString() })));
    try {
      await guarded(() =>
        this.db.execute(sql`with v as (
            select * from jsonb_to_recordset(${rows}::jsonb) as v(r uuid, t text, d text, at timestamptz)
          ), tagged as (
            insert into tag_pulls (tag_id, last_pull_time)
            select t.id, max(v.at) from v join tags t on t.repository_id = v.r and t.name = v.t
            where v.t is not null group by t.id
            on conflict (tag_id) do update set last_pull_time = excluded.last_pull_time
              where tag_pulls.last_pull_time < excluded.last_pull_time
            returning 1
          ), pulled as (
            update manifests m set last_pull_time = x.at
            from (select r, d, max(at) as at from v group by r, d) x
            where m.repository_id = x.r and m.digest = x.d and (m.last_pull_time is null or m.last_pull_time < x.at)
            returning 1
          ) select (select count(*) from tagged) as tags, (select count(*) from pulled) as manifests`),
      );
    } catch (err) {
      this.log?.warn({ err, pulls: batch.length }, "pull times could not be written; they are lost (a later pull records them again)");
    }
    if (this.dropped > 0) {
      this.log?.warn({ dropped: this.dropped }, "pull times dropped: more distinct tags and manifests were pulled than one flush holds");
      this.dropped = 0;
    }
  }
}
