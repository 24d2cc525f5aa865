// The audit log's SQL. A change that is a database transaction writes its event inside that
// transaction (writeAudit with the transaction), so an event exists exactly when the change does;
// refusals, failed sign-ins and changes outside a transaction are recorded on their own (record).
import { eq, lt, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { auditEvents, namespaces, registries, repositories } from "../db/schema.js";
import { Lister, type ListRequest, type Page } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";

export type AuditRow = typeof auditEvents.$inferSelect;
export type AuditOutcome = AuditRow["outcome"];

/** Who acted, and from where: the same for every event of one request. */
export interface AuditTrail {
  /** Null: anonymous (or, in a failed sign-in, nobody known). */
  actorId: string | null;
  actorName: string;
  requestId: string;
  clientAddress: string;
}

/** What happened. */
export interface AuditEvent {
  action: string;
  resourceType: string;
  resourceId?: string;
  resourceName?: string;
  outcome?: AuditOutcome;
  detail?: string;
}

const MAX_TEXT = 1024;
const clip = (value: string | undefined) => (value ?? "").slice(0, MAX_TEXT);

/** Writes one event with `db` (a transaction, to make it part of a change); nothing without a trail. */
export async function writeAudit(db: Database, trail: AuditTrail | undefined, event: AuditEvent): Promise<void> {
  if (!trail) return;
  await db.insert(auditEvents).values({
    actorId: trail.actorId,
    actorName: clip(trail.actorName),
    requestId: clip(trail.requestId),
    clientAddress: clip(trail.clientAddress),
    action: clip(event.action),
    resourceType: clip(event.resourceType),
    resourceId: clip(event.resourceId),
    resourceName: clip(event.resourceName),
    outcome: event.outcome ?? "success",
    detail: clip(event.detail),
  });
}

export interface AuditFilter {
  actorId?: string;
  actorName?: string;
  action?: string;
  resourceId?: string;
  resourceName?: string;
  /** ISO times: at or after `start`, before `end`. */
  start?: string;
  end?: string;
}

export class AuditStore {
  private readonly lister: Lister<AuditRow>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.lister = new Lister<AuditRow>(db, tokens, {
      resource: "audit_events",
      table: auditEvents,
      id: auditEvents.id,
      sortable: { event_time: auditEvents.eventTime },
      defaultOrder: "event_time desc",
      uniqueName: "none",
      filters: {
        actorId: { column: auditEvents.actorId, op: "=", cast: "uuid" },
        actorName: auditEvents.actorName,
        action: auditEvents.action,
        resourceId: auditEvents.resourceId,
        resourceName: auditEvents.resourceName,
        start: { column: auditEvents.eventTime, op: ">=", cast: "timestamptz" },
        end: { column: auditEvents.eventTime, op: "<", cast: "timestamptz" },
      },
    });
  }

  /** An event outside any change (a refusal, a failed sign-in, a change that is no transaction). */
  record(trail: AuditTrail, event: AuditEvent): Promise<void> {
    return guarded(() => writeAudit(this.db, trail, event));
  }

  list(request: ListRequest, filter: AuditFilter): Promise<Page<AuditRow>> {
    return guarded(() => this.lister.list(request, { values: { ...filter } }));
  }
}

/** Deletes events older than `before` (retention; garbage collection runs it); returns how many. */
export function pruneAuditEvents(db: Database, before: Date): Promise<number> {
  return guarded(async () => {
    const rows = await db
      .delete(auditEvents)
      .where(lt(auditEvents.eventTime, sql`${before.toISOString()}::timestamptz`))
      .returning({ id: auditEvents.id });
    return rows.length;
  });
}

/** `<registry>/<namespace>` of a namespace, for events about it (its id when it is gone). */
export async function namespacePath(db: Database, namespaceId: string): Promise<string> {
  const [row] = await db
    .select({ registry: registries.name, namespace: namespaces.name })
    .from(namespaces)
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .where(eq(namespaces.id, namespaceId));
  return row ? `${row.registry}/${row.namespace}` : namespaceId;
}

/** `<registry>/<namespace>/<repository>` of a repository, for events about it (its id when it is gone). */
export async function repositoryPath(db: Database, repositoryId: string): Promise<string> {
  const [row] = await db
    .select({ registry: registries.name, namespace: namespaces.name, repository: repositories.name })
    .from(repositories)
    .innerJoin(namespaces, eq(namespaces.id, repositories.namespaceId))
    .innerJoin(registries, eq(registries.id, namespaces.registryId))
    .where(eq(repositories.id, repositoryId));
  return row ? `${row.registry}/${row.namespace}/${row.repository}` : repositoryId;
}

/** The fields an update changed, for its audit event (names only, never values: a credential is one). */
export function changedFields(patch: object): string {
  return Object.keys(patch)
    .map((k) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/_sealed$/, ""))
    .sort()
    .join(",");
}
