// Webhooks (endpoints a registry's or namespace's events are POSTed to) and their deliveries: the
// queue the deliverer claims from (src/events/delivery.ts) and the log the API lists. Delivery
// rows are written by the outbox with their event (events.ts); here they are claimed, settled
// and listed.
import { eq, sql } from "drizzle-orm";
import type { Database } from "../db/database.js";
import { events, namespaces, registries, webhookDeliveries, webhooks } from "../db/schema.js";
import { invalidArgument, notFound } from "../domain/errors.js";
import { changedFields, writeAudit, type AuditTrail } from "./audit.js";
import { deleteById, updateById, type CatalogTable } from "./crud.js";
import type { EventRow } from "./events.js";
import { Lister, type ListRequest, type Page, type Visibility } from "./listing.js";
import type { PageTokens } from "./page-token.js";
import { guarded } from "./pg-errors.js";
import { viewById, viewGetterById, type View } from "./views.js";

export type WebhookRow = typeof webhooks.$inferSelect;
/** A webhook with its scope's name for people: `<registry>` or `<registry>/<namespace>`. */
export type WebhookView = WebhookRow & { scopeName: string };
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
/** A delivery with what its event is. */
export type DeliveryView = DeliveryRow & { eventId: string; eventType: string; subject: string };
export type DeliveryStatus = DeliveryRow["status"];

export interface NewWebhook {
  /** The registry (whole), or a namespace (its registry is found; a registry id given with it must match). */
  scope: { registryId: string; namespaceId?: undefined } | { registryId?: string; namespaceId: string };
  url: string;
  eventTypes: string[];
  secretSealed: string;
  enabled: boolean;
  description: string;
}

export type WebhookPatch = Partial<Pick<WebhookRow, "url" | "eventTypes" | "secretSealed" | "enabled" | "description">>;

/** A delivery a process has claimed (holds the lease of), with what it needs to send it. */
export interface ClaimedDelivery {
  id: string;
  leaseToken: string;
  /** This attempt's number (1 for the first). */
  attempt: number;
  webhookId: string;
  url: string;
  secretSealed: string;
  event: EventRow;
}

const table: CatalogTable = { table: webhooks, id: webhooks.id, version: webhooks.version, updateTime: webhooks.updateTime, noun: "webhook" };

// A webhook's scope: its registry, and its namespace when it has one.
const webhookView: View = {
  table: webhooks,
  id: webhooks.id,
  joins: [
    { table: registries, on: eq(registries.id, webhooks.registryId) },
    { table: namespaces, on: eq(namespaces.id, webhooks.namespaceId), optional: true },
  ],
  columns: { scopeName: sql<string>`(${registries.name} || coalesce('/' || ${namespaces.name}, ''))` },
};

const deliveryView: View = {
  table: webhookDeliveries,
  id: webhookDeliveries.id,
  joins: [{ table: events, on: eq(events.position, webhookDeliveries.eventPosition) }],
  columns: { eventId: events.id, eventType: events.type, subject: events.subject },
};

/** What a webhook is called in the audit log: its scope and its endpoint's origin (a URL's path or query may hold a token). */
function auditName(view: WebhookView): string {
  let origin = "";
  try {
    origin = new URL(view.url).origin;
  } catch {
    // stored URLs always parse
  }
  return `${view.scopeName} -> ${origin}`;
}

export class WebhookStore {
  private readonly byId: (id: string) => Promise<WebhookView>;
  private readonly lister: Lister<WebhookView>;
  private readonly deliveries: Lister<DeliveryView>;

  constructor(
    private readonly db: Database,
    tokens: PageTokens,
  ) {
    this.byId = viewGetterById<WebhookView>(db, webhookView, "webhook");
    this.lister = new Lister<WebhookView>(db, tokens, {
      resource: "webhooks",
      table: webhooks,
      id: webhooks.id,
      view: webhookView,
      name: webhooks.url,
      sortable: { create_time: webhooks.createTime, update_time: webhooks.updateTime },
      defaultOrder: "create_time",
      uniqueName: "none",
      filters: {
        registryId: { column: webhooks.registryId, op: "=", cast: "uuid" },
        namespaceId: { column: webhooks.namespaceId, op: "=", cast: "uuid" },
      },
      // Webhooks of the scopes where the caller is an admin (a namespace admin sees its namespace's).
      visible: (v) => sql`(${webhooks.registryId} = any(${v.registries}) or ${webhooks.namespaceId} = any(${v.namespaces}))`,
    });
    this.deliveries = new Lister<DeliveryView>(db, tokens, {
      resource: "webhook_deliveries",
      table: webhookDeliveries,
      id: webhookDeliveries.id,
      view: deliveryView,
      sortable: { create_time: webhookDeliveries.createTime },
      defaultOrder: "create_time desc",
      uniqueName: "none",
      parent: { column: webhookDeliveries.webhookId, parentId: webhooks.id, noun: "webhook" },
      filters: { status: webhookDeliveries.status },
    });
  }

  create(input: NewWebhook, audit?: AuditTrail): Promise<WebhookView> {
    const { scope, ...fields } = input;
    return guarded(
      () =>
        this.db.transaction(async (tx) => {
          let registryId = scope.registryId;
          if (scope.namespaceId !== undefined) {
            const [ns] = await tx.select({ registryId: namespaces.registryId }).from(namespaces).where(eq(namespaces.id, scope.namespaceId));
            if (!ns) throw notFound(`namespace ${scope.namespaceId} not found`);
            if (registryId !== undefined && registryId !== ns.registryId) {
              throw invalidArgument(`webhook.registry_id: namespace ${scope.namespaceId} is in registry ${ns.registryId}, not ${registryId}`);
            }
            registryId = ns.registryId;
          }
          const [row] = await tx
            .insert(webhooks)
            .values({ ...fields, registryId: registryId!, namespaceId: scope.namespaceId ?? null })
            .returning({ id: webhooks.id });
          const view = await webhookOf(tx, row!.id);
          await writeAudit(tx, audit, { action: "webhook.create", resourceType: "webhook", resourceId: view.id, resourceName: auditName(view) });
          return view;
        }),
      { webhooks_registry_id_registries_id_fk: () => notFound(`registry ${scope.registryId ?? ""} not found`) },
    );
  }

  get(id: string): Promise<WebhookView> {
    return guarded(() => this.byId(id));
  }

  update(id: string, patch: WebhookPatch, etag: string, audit?: AuditTrail): Promise<WebhookView> {
    return guarded(() =>
      this.db.transaction(async (tx) => {
        await updateById<WebhookRow>(tx, table, id, patch, etag);
        const view = await webhookOf(tx, id);
        await writeAudit(tx, audit, {
          action: "webhook.update",
          resourceType: "webhook",
          resourceId: id,
          resourceName: auditName(view),
          // Names only: the secret is one of them.
          detail: changedFields(patch),
        });
        return view;
      }),
    );
  }

  delete(id: string, options: { etag: string }, audit?: AuditTrail): Promise<void> {
    return guarded(() =>
      deleteById(this.db, table, id, {
        ...options,
        then: async (tx) => {
          const view = await webhookOf(tx, id);
          await writeAudit(tx, audit, { action: "webhook.delete", resourceType: "webhook", resourceId: id, resourceName: auditName(view) });
        },
      }),
    );
  }

  /** `visibility`: the scopes where the caller is an admin (undefined: every webhook). */
  list(request: ListRequest, filter: { registryId?: string; namespaceId?: string }, visibility?: Visibility): Promise<Page<WebhookView>> {
    return guarded(() => this.lister.list(request, { values: { ...filter }, visibility }));
  }

  listDeliveries(webhookId: string, request: ListRequest, filter: { status?: DeliveryStatus }): Promise<Page<DeliveryView>> {
    return guarded(() => this.deliveries.list(request, { parent: webhookId, values: { status: filter.status } }));
  }

  // ---- the delivery queue ----

  /**
   * Claims up to `limit` deliveries that are due, each the oldest pending one of its webhook and
   * repository (later ones wait for it: in order per repository), for `leaseMs`. Rows another
   * process is claiming right now are skipped (SKIP LOCKED), rows it holds a live lease on are
   * not due; a lease that ran out (its process died) makes the row due again. One statement: the
   * delivery queue's cost is paid per delivery on every push, on PGlite's one connection too.
   */
  async claim(limit: number, leaseMs: number, leaseToken: string): Promise<ClaimedDelivery[]> {
    const d = webhookDeliveries;
    const rows = await guarded(() =>
      this.db
        .update(d)
        .set({
          leaseUntil: sql`now() + ${leaseMs}::integer * interval '1 millisecond'`,
          leaseToken,
          attempts: sql`${d.attempts} + 1`,
          lastAttemptTime: sql`now()`,
        })
        .from(webhooks)
        .innerJoin(events, sql`true`)
        .where(
          sql`${webhooks.id} = ${d.webhookId} and ${events.position} = ${d.eventPosition} and ${d.id} in (select c.id from webhook_deliveries c
            join webhooks cw on cw.id = c.webhook_id
            where c.status = 'pending' and c.next_attempt_time <= now() and (c.lease_until is null or c.lease_until < now()) and cw.enabled
              and not exists (select 1 from webhook_deliveries p where p.webhook_id = c.webhook_id and p.ordering_key = c.ordering_key
                and p.status = 'pending' and p.event_position < c.event_position)
            order by c.event_position limit ${limit} for update of c skip locked)`,
        )
        .returning({ id: d.id, attempt: d.attempts, webhookId: webhooks.id, url: webhooks.url, secretSealed: webhooks.secretSealed, event: events }),
    );
    return rows.map((r) => ({ ...r, leaseToken })).sort((a, b) => a.event.position - b.event.position);
  }

  /**
   * Records how attempts went, in one statement: delivered (2xx), to be tried again in `retryInMs`
   * (by the database's clock, which the claim compares with), or given up (neither), which lets
   * the next delivery of its repository go. A row whose lease was lost meanwhile (another process
   * has it now) is left alone; the ids settled are returned.
   */
  async settle(outcomes: readonly DeliveryOutcome[]): Promise<Set<string>> {
    if (outcomes.length === 0) return new Set();
    const d = webhookDeliveries;
    const values = JSON.stringify(
      outcomes.map((o) => ({
        id: o.id,
        token: o.leaseToken,
        status: o.delivered ? "delivered" : o.retryInMs !== undefined ? "pending" : "failed",
        response: o.responseStatus ?? null,
        error: (o.error ?? "").slice(0, 1024),
        retry: o.retryInMs === undefined ? null : Math.ceil(o.retryInMs),
      })),
    );
    const rows = await guarded(() =>
      this.db
        .update(d)
        .set({
          status: sql`v.status`,
          responseStatus: sql`v.response`,
          lastError: sql`v.error`,
          nextAttemptTime: sql`case when v.retry is null then ${d.nextAttemptTime} else now() + v.retry * interval '1 millisecond' end`,
          leaseUntil: null,
          leaseToken: null,
        })
        .from(sql`jsonb_to_recordset(${values}::jsonb) as v(id uuid, token uuid, status text, response integer, error text, retry integer)`)
        .where(sql`${d.id} = v.id and ${d.leaseToken} = v.token`)
        .returning({ id: d.id }),
    );
    return new Set(rows.map((r) => r.id));
  }
}

/** How one attempt of a claimed delivery went. */
export interface DeliveryOutcome {
  id: string;
  leaseToken: string;
  delivered: boolean;
  responseStatus?: number;
  error?: string;
  /** Not delivered: try again after this long; undefined: give up. */
  retryInMs?: number;
}

/** The row just written, as the API shows it (in its transaction). */
async function webhookOf(tx: Database, id: string): Promise<WebhookView> {
  const view = await viewById<WebhookView>(tx, webhookView, id);
  if (!view) throw notFound(`webhook ${id} not found`);
  return view;
}
