import { invalidArgument } from "./errors.js";

// What the service tells the world happened (issue 15): the event types, CloudEvents 1.0 `type`
// values in reverse-DNS form, and what their `data` carries. Stored in the outbox (src/store/events.ts),
// streamed by EventService.WatchEvents and POSTed to webhooks (src/events/).

export const EVENT_TYPES = {
  /** A manifest was pushed on /v2/ (by tag or by digest). */
  imagePushed: "dev.artifact.image.pushed",
  /** A manifest was pulled on /v2/ (a GET; only with EVENTS_PULL on or sampled). */
  imagePulled: "dev.artifact.image.pulled",
  /** A tag was set to a digest through the API (TagService.CreateTag, or UpdateTag with another digest). */
  tagMoved: "dev.artifact.tag.moved",
  /** A tag was deleted (/v2/ DELETE by tag, TagService.DeleteTag). */
  tagDeleted: "dev.artifact.tag.deleted",
  /** A manifest was deleted by digest, with the tags that pointed at it. */
  manifestDeleted: "dev.artifact.manifest.deleted",
  /** A SyncRegistry of a REMOTE registry finished (completed, or stopped by an upstream-wide error). */
  registrySynced: "dev.artifact.registry.synced",
  /** A retention policy deleted a tag or manifest. */
  retentionDeleted: "dev.artifact.retention.deleted",
  /** WebhookService.TestWebhook: sent to one webhook, never stored. */
  webhookTest: "dev.artifact.webhook.test",
} as const;

export type EventType = (typeof EVENT_TYPES)[keyof typeof EVENT_TYPES];

const ALL_EVENT_TYPES: readonly EventType[] = Object.values(EVENT_TYPES);

const MAX_FILTER_TYPES = 20;

/** The types a filter names (a webhook's, a watch's): stored types only (not the test type), each once. */
export function parseEventTypes(field: string, types: readonly string[]): string[] {
  if (types.length > MAX_FILTER_TYPES) throw invalidArgument(`${field}: at most ${MAX_FILTER_TYPES} types`);
  const known = ALL_EVENT_TYPES.filter((t) => t !== EVENT_TYPES.webhookTest);
  for (const [i, type] of types.entries()) {
    if (!(known as readonly string[]).includes(type)) {
      throw invalidArgument(`${field}[${i}]: ${JSON.stringify(type.slice(0, 80))} is not an event type; expected one of ${known.join(", ")}`);
    }
  }
  return [...new Set(types)];
}

/** Who acted: an account, or nobody known (anonymous). */
export interface EventActor {
  id: string | null;
  name: string;
}

/** What a sync counted (SyncRegistry's totals), and why it stopped early if it did. */
export interface SyncSummary {
  repositoriesFound: number;
  repositoriesSynced: number;
  tagsAdded: number;
  tagsUpdated: number;
  tagsRemoved: number;
  errors: number;
  /** Set when an upstream-wide error ended the sync before it was done. */
  error?: string;
}

/**
 * The CloudEvent's `data` (JSON, camelCase, sizes as numbers). The names are filled in by the
 * outbox from the rows (registry, namespace, repository); the rest by the change.
 */
export interface EventData {
  registry: string;
  namespace?: string;
  repository?: string;
  tag?: string;
  digest?: string;
  mediaType?: string;
  sizeBytes?: number;
  /** The digest a tag pointed at before (a push or UpdateTag that moved it). */
  previousDigest?: string;
  /** manifest.deleted: the tags deleted with the manifest. */
  tags?: string[];
  /** retention.deleted: which rule decided it. */
  reason?: string;
  sync?: SyncSummary;
  actor?: EventActor;
}
