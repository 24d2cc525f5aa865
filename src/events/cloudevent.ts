// An event as a CloudEvent 1.0 in structured JSON mode (what a webhook is POSTed): the context
// attributes at the top level, the data as a JSON object. Built from the outbox row, which already
// holds the data in its JSON shape (src/domain/events.ts).
import { randomUUID } from "node:crypto";
import { EVENT_TYPES, type EventData } from "../domain/events.js";
import type { EventRow } from "../store/events.js";

export const CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8";

export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data: EventData | Record<string, unknown>;
}

export function cloudEvent(row: Pick<EventRow, "id" | "source" | "type" | "subject" | "time" | "data">): CloudEvent {
  return {
    specversion: "1.0",
    id: row.id,
    source: row.source,
    type: row.type,
    subject: row.subject,
    time: row.time.toISOString(),
    datacontenttype: "application/json",
    data: row.data,
  };
}

/** What TestWebhook sends: an event of its own type about the webhook, never stored. */
export function testEvent(webhook: { id: string; scopeName: string }): CloudEvent {
  return {
    specversion: "1.0",
    id: randomUUID(),
    source: `/v1/webhooks/${webhook.id}`,
    type: EVENT_TYPES.webhookTest,
    subject: webhook.scopeName,
    time: new Date().toISOString(),
    datacontenttype: "application/json",
    data: { webhookId: webhook.id, message: "a test event from TestWebhook" },
  };
}
