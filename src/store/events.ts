// The outbox: events written in the transaction of the change they report (recordEvent, the one
// helper every change calls with its transaction), and read back in commit order by position
// (EventStore: WatchEvents, src/events/). A delivery row per matching webhook is written by the
// same statement, so the webhook queue is exactly as transactional as the event.
//
// Positions are commit order. Event inserts take one advisory transaction lock, held until
// commit, before the position is drawn: a transaction that got position p has committed (or rolled
// back) before any other draws p + 1. So once position p is visible, no event at or below p can
// still appear, and "every event after p" is a cursor that never skips one. The lock is taken
// last in each change's transaction (the event is its last statement) so it is held for the
// insert and the commit only: concurrent pushes queue for about a commit's time, not for their work.
import { and, eq, gt, inArray, lte, sql, type SQL } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { events, settings, webhookDeliveries } from "../db/schema.js";
import type { EventActor, EventData, EventType } from "../domain/events.js";
import { EVENT_TYPES } from "../domain/events.js";
import type { AuditTrail } from "./audit.js";
import type { Visibility } from "./listing.js";
import { guarded } from "./pg-errors.js";
import { visibilityValues } from "./visibility.js";

export type EventRow = typeof events.$inferSelect;

/** Where an event happened: a repository by id, an image by name (its rows may not exist yet: a pull through a cache), or a registry. */
export type EventPlace = { repositoryId: string } | { image: { registry: string; namespace: string; repository: string } } | { registryId: string };

export interface NewEvent {
  type: EventType;
  at: EventPlace;
  /** What the change adds to the names the outbox fills in. */
  data?: Omit<EventData, "registry" | "namespace" | "repository" | "actor">;
  actor?: EventActor;
}

// Any constant every replica shares ("ARTE").
const EVENTS_LOCK = 0x41525445;
const PRUNED_SETTING = "events_pruned_through";
const PRUNE_BATCH = 5000;

/**
 * Writes events as part of `tx` (a change's transaction, or a transaction of their own), with a
 * delivery for every enabled webhook whose scope and filter they match. Call it last in the
 * transaction: it takes the outbox's lock, held until commit (see the top of this file).
 */
async function recordEvents(tx: Database, list: readonly NewEvent[]): Promise<void> {
  if (list.length === 0) return;
  await tx.execute(sql`select pg_advisory_xact_lock(${EVENTS_LOCK})`);
  for (const event of list) await tx.execute(insertEvent(event));
}

/** The actor of an API change: who its audit trail names. */
export function trailActor(trail: AuditTrail | undefined): EventActor | undefined {
  return trail && { id: trail.actorId, name: trail.actorName };
}

export function recordEvent(tx: Database, event: NewEvent): Promise<void> {
  return recordEvents(tx, [event]);
}

/** A tag or manifest a retention policy deleted; `reason` names the policy and the rule. */
export interface RetentionDeletionEvent {
  repositoryId: string;
  tag?: string;
  digest: string;
  mediaType?: string;
  sizeBytes?: number;
  reason: string;
}

const RETENTION_ACTOR: EventActor = { id: null, name: "retention" };

/** For retention: a tag or manifest a policy deleted, in the deletion's transaction. */
export function recordRetentionDeletion(tx: Database, deletion: RetentionDeletionEvent): Promise<void> {
  const { repositoryId, ...data } = deletion;
  return recordRetentionDeletions(tx, repositoryId, [data]);
}

/**
 * recordRetentionDeletion for a batch of one repository deleted in one transaction: one event
 * each, in order, written by one statement (a run deletes hundreds per transaction); `actor`: who
 * ran it, else "retention".
 */
export async function recordRetentionDeletions(
  tx: Database,
  repositoryId: string,
  deletions: readonly Omit<RetentionDeletionEvent, "repositoryId">[],
  actor: EventActor = RETENTION_ACTOR,
): Promise<void> {
  if (deletions.length === 0) return;
  await tx.execute(sql`select pg_advisory_xact_lock(${EVENTS_LOCK})`);
  const items = JSON.stringify(deletions.map((data) => ({ ...data, actor })));
  await tx.execute(sql`with e as (
      insert into events (type, source, subject, registry_id, namespace_id, repository_id, data)
      select ${EVENT_TYPES.retentionDeleted}, '/v1/registries/' || g.id::text, g.name || '/' || n.name || '/' || r.name, g.id, n.id, r.id,
        jsonb_build_object('registry', g.name, 'namespace', n.name, 'repository', r.name) || d.value
      from repositories r join namespaces n on n.id = r.namespace_id join registries g on g.id = n.registry_id
        cross join jsonb_array_elements(${items}::jsonb) with ordinality as d(value, i)
      where r.id = ${repositoryId}::uuid
      order by d.i
      returning position, type, subject, registry_id, namespace_id, repository_id
    )
    ${deliveriesOf()}`);
}

/** One INSERT … SELECT: the event with the names of where it happened, and its deliveries. */
function insertEvent(event: NewEvent): SQL {
  const extra = JSON.stringify({ ...event.data, ...(event.actor ? { actor: event.actor } : {}) });
  const at = event.at;
  let from: SQL;
  let names: SQL;
  let subject: SQL;
  if ("repositoryId" in at) {
    from = sql`repositories r join namespaces n on n.id = r.namespace_id join registries g on g.id = n.registry_id where r.id = ${at.repositoryId}::uuid`;
    names = sql`jsonb_build_object('registry', g.name, 'namespace', n.name, 'repository', r.name)`;
    subject = sql`g.name || '/' || n.name || '/' || r.name`;
  } else if ("image" in at) {
    const { registry, namespace, repository } = at.image;
    from = sql`registries g left join namespaces n on n.registry_id = g.id and n.name = ${namespace}
      left join repositories r on r.namespace_id = n.id and r.name = ${repository} where g.name = ${registry}`;
    names = sql`jsonb_build_object('registry', g.name, 'namespace', ${namespace}::text, 'repository', ${repository}::text)`;
    subject = sql`g.name || '/' || ${namespace}::text || '/' || ${repository}::text`;
  } else {
    from = sql`registries g left join namespaces n on false left join repositories r on false where g.id = ${at.registryId}::uuid`;
    names = sql`jsonb_build_object('registry', g.name)`;
    subject = sql`g.name`;
  }
  return sql`with e as (
      insert into events (type, source, subject, registry_id, namespace_id, repository_id, data)
      select ${event.type}, '/v1/registries/' || g.id::text, ${subject}, g.id, n.id, r.id, ${names} || ${extra}::jsonb
      from ${from}
      returning position, type, subject, registry_id, namespace_id, repository_id
    )
    ${deliveriesOf()}`;
}

/** The deliveries of the events a statement's `e` inserted: one per enabled webhook whose scope and filter they match. */
function deliveriesOf(): SQL {
  return sql`insert into webhook_deliveries (webhook_id, event_position, ordering_key)
    select w.id, e.position, coalesce(e.repository_id::text, e.subject)
    from e join webhooks w on w.enabled and w.registry_id = e.registry_id
      and (w.namespace_id is null or w.namespace_id = e.namespace_id)
      and (cardinality(w.event_types) = 0 or e.type = any(w.event_types))`;
}

export interface EventFilter {
  registryId?: string;
  namespaceId?: string;
  /** Empty: every type. */
  types: readonly string[];
}

/** A page of events after a position, and how far the page looked (its resume point). */
export interface EventPage {
  events: EventRow[];
  /** Every matching event up to here has been returned: the next read starts after it. */
  scannedTo: number;
}

export class EventStore {
  constructor(private readonly db: Database) {}

  /** Events that are no part of a change (pulls), in a transaction of their own. */
  write(list: readonly NewEvent[]): Promise<void> {
    return guarded(() => this.db.transaction((tx) => recordEvents(tx, list)));
  }

  /** The newest position (0: none yet). */
  async latest(): Promise<number> {
    const [row] = await guarded(() => this.db.select({ high: sql<string | null>`max(${events.position})` }).from(events));
    return Number(row?.high ?? 0);
  }

  /**
   * Matching events after `after`, in position order, at most `limit`, that `visibility` lets the
   * caller see (undefined: everything). Events are read only up to the newest position at the
   * start, so `scannedTo` is a resume point that skips nothing (see the top of this file).
   */
  async after(after: number, filter: EventFilter, visibility: Visibility | undefined, limit: number): Promise<EventPage> {
    const high = await this.latest();
    if (high <= after) return { events: [], scannedTo: after };
    const rows = await guarded(() =>
      this.db
        .select()
        .from(events)
        .where(
          and(
            gt(events.position, after),
            lte(events.position, high),
            filter.registryId ? eq(events.registryId, filter.registryId) : undefined,
            filter.namespaceId ? eq(events.namespaceId, filter.namespaceId) : undefined,
            filter.types.length > 0 ? inArray(events.type, [...filter.types]) : undefined,
            visibility ? eventVisible(visibility) : undefined,
          ),
        )
        .orderBy(events.position)
        .limit(limit),
    );
    return { events: rows, scannedTo: rows.length === limit ? rows[rows.length - 1]!.position : high };
  }

  /** The highest position pruning has deleted (0: none): a resume from before it may have missed events. */
  async prunedThrough(): Promise<number> {
    const [row] = await guarded(() => this.db.select({ value: settings.value }).from(settings).where(eq(settings.key, PRUNED_SETTING)));
    return Number(row?.value ?? 0);
  }

  /**
   * Deletes events older than `before` whose deliveries are all done (a pending one keeps its
   * event), with those deliveries; returns how many events went.
   */
  async prune(before: Date): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await guarded(() =>
        this.db.transaction(async (tx) => {
          const doomed = sql`(select ${events.position} from ${events} where ${events.time} < ${before.toISOString()}::timestamptz
            and not exists (select 1 from ${webhookDeliveries} d where d.event_position = ${events.position} and d.status = 'pending')
            order by ${events.position} limit ${PRUNE_BATCH})`;
          const rows = await tx
            .delete(events)
            .where(sql`${events.position} in ${doomed}`)
            .returning({ position: events.position });
          const highest = rows.reduce((max, r) => Math.max(max, r.position), 0);
          if (highest > 0) {
            await tx
              .insert(settings)
              .values({ key: PRUNED_SETTING, value: String(highest) })
              .onConflictDoUpdate({ target: settings.key, set: { value: sql`greatest(${settings.value}::bigint, excluded.value::bigint)::text` } });
          }
          return rows.length;
        }),
      );
      total += deleted;
      if (deleted < PRUNE_BATCH) return total;
    }
  }
}

/** What a caller may read: public registries and namespaces, and the scopes its bindings name. */
function eventVisible(visibility: Visibility): SQL {
  const v = visibilityValues(visibility);
  return sql`(${events.registryId} = any(${v.registries}) or ${events.namespaceId} = any(${v.namespaces})
    or exists (select 1 from registries vg where vg.id = ${events.registryId} and vg.public)
    or exists (select 1 from namespaces vn where vn.id = ${events.namespaceId} and vn.public))`;
}
