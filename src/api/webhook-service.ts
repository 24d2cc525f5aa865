// WebhookService: webhooks of a registry or namespace (their admins' business: src/auth/rules.ts),
// their delivery log, and a test delivery. The secret is sealed before it reaches the store and
// never leaves it; an endpoint the network policy refuses is refused here already.
import type { ServiceImpl } from "@connectrpc/connect";
import { DeliveryStatus, WebhookSchema, WebhookService } from "../../gen/artifact/v1/webhook_pb.js";
import { adminScope } from "../auth/policy.js";
import { invalidArgument } from "../domain/errors.js";
import { parseEventTypes } from "../domain/events.js";
import { checkDescription } from "../domain/names.js";
import { parseWebhookUrl } from "../domain/webhook-url.js";
import { testEvent } from "../events/cloudevent.js";
import type { WebhookSender } from "../events/sender.js";
import { UnopenableCredential, type Sealer } from "../secrets.js";
import type { Store } from "../store/index.js";
import type { NewWebhook, WebhookPatch } from "../store/webhooks.js";
import { auditTrail, callerOf } from "./caller.js";
import { deliveryStatusFromProto, deliveryToProto, listRequest, webhookToProto } from "./convert.js";
import { fieldsToUpdate } from "./update-mask.js";
import { optionalId, requireId, requireMessage, validate } from "./validate.js";

const MIN_SECRET = 16;
const MAX_SECRET = 1024;

export function webhookService(store: Store, sealer: Sealer, sender: WebhookSender): ServiceImpl<typeof WebhookService> {
  /** A URL as stored, refused when the network policy would refuse its address now. */
  const endpoint = async (value: string): Promise<string> => {
    const url = parseWebhookUrl(value, "webhook.url").href;
    const refusal = await sender.refusal(url);
    if (refusal) throw refusal;
    return url;
  };
  const sealSecret = (secret: string): string => {
    if (secret.length < MIN_SECRET || secret.length > MAX_SECRET) {
      throw invalidArgument(`webhook.secret: must be ${MIN_SECRET} to ${MAX_SECRET} characters (e.g. \`openssl rand -hex 32\`)`);
    }
    return sealer.sealText(secret);
  };

  return {
    async createWebhook(req, ctx) {
      const w = requireMessage("webhook", req.webhook);
      const registryId = optionalId("webhook.registry_id", w.registryId);
      const namespaceId = optionalId("webhook.namespace_id", w.namespaceId);
      if (!registryId && !namespaceId) throw invalidArgument("webhook.registry_id: set registry_id (the whole registry) or namespace_id (one namespace)");
      if (w.secret === "") throw invalidArgument(`webhook.secret: is required (${MIN_SECRET} to ${MAX_SECRET} characters, e.g. \`openssl rand -hex 32\`)`);
      const input: NewWebhook = {
        scope: namespaceId ? { namespaceId, registryId } : { registryId: registryId! },
        url: await endpoint(w.url),
        eventTypes: parseEventTypes("webhook.event_types", w.eventTypes),
        secretSealed: sealSecret(w.secret),
        enabled: w.enabled ?? true,
        description: validate("webhook.description", w.description, checkDescription),
      };
      return webhookToProto(await store.webhooks.create(input, auditTrail(ctx)));
    },

    async getWebhook(req) {
      return webhookToProto(await store.webhooks.get(requireId("id", req.id)));
    },

    async updateWebhook(req, ctx) {
      const w = requireMessage("webhook", req.webhook);
      const id = requireId("webhook.id", w.id);
      const fields = fieldsToUpdate(WebhookSchema, req.updateMask, (f) => f === "secret" && w.secret !== "");
      const patch: WebhookPatch = {};
      if (fields.has("url")) patch.url = await endpoint(w.url);
      if (fields.has("event_types")) patch.eventTypes = parseEventTypes("webhook.event_types", w.eventTypes);
      if (fields.has("secret")) patch.secretSealed = sealSecret(w.secret);
      if (fields.has("enabled")) patch.enabled = w.enabled ?? true;
      if (fields.has("description")) patch.description = validate("webhook.description", w.description, checkDescription);
      return webhookToProto(await store.webhooks.update(id, patch, w.etag, auditTrail(ctx)));
    },

    async deleteWebhook(req, ctx) {
      await store.webhooks.delete(requireId("id", req.id), { etag: req.etag }, auditTrail(ctx));
      return {};
    },

    async listWebhooks(req, ctx) {
      const page = await store.webhooks.list(
        listRequest(req),
        { registryId: optionalId("registry_id", req.registryId), namespaceId: optionalId("namespace_id", req.namespaceId) },
        adminScope(callerOf(ctx).principal),
      );
      return { webhooks: page.items.map(webhookToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async listDeliveries(req) {
      const status = req.status === DeliveryStatus.UNSPECIFIED ? undefined : deliveryStatusFromProto(req.status);
      if (req.status !== DeliveryStatus.UNSPECIFIED && !status) throw invalidArgument(`status: unknown value ${req.status}`);
      const page = await store.webhooks.listDeliveries(requireId("webhook_id", req.webhookId), listRequest({ ...req, query: "" }), { status });
      return { deliveries: page.items.map(deliveryToProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
    },

    async testWebhook(req) {
      const webhook = await store.webhooks.get(requireId("id", req.id));
      const event = testEvent(webhook);
      let secret: string;
      try {
        secret = sealer.openText(webhook.secretSealed);
      } catch (err) {
        if (!(err instanceof UnopenableCredential)) throw err;
        return { delivered: false, error: `the webhook's secret cannot be opened (${err.reason}): set it again`, eventId: event.id };
      }
      const outcome = await sender.send({ webhookId: webhook.id, url: webhook.url, secret }, event);
      return {
        delivered: outcome.delivered,
        responseStatus: outcome.status ?? 0,
        error: outcome.error ?? "",
        eventId: event.id,
        durationMs: outcome.durationMs,
      };
    },
  };
}
