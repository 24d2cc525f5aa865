// Events at run time, one set per process: the ear on the outbox (hub.ts), the webhook sender and
// deliverer, and the pull recorder. server.ts builds it; the API (WatchEvents, TestWebhook, the
// URL check of CreateWebhook) and /v2/ (pulls) use it. What events are and how they are written
// (in the change's transaction) is src/domain/events.ts and src/store/events.ts.
import type { Logger } from "pino";
import type { EventSettings, WebhookSettings } from "../config.js";
import type { DatabaseHandle } from "../db/database.js";
import type { Sealer } from "../secrets.js";
import type { Store } from "../store/index.js";
import { AddressPolicy, type AllowedNetwork, type Listening } from "../upstream/address-policy.js";
import { WebhookDeliverer } from "./delivery.js";
import { EventHub } from "./hub.js";
import { PullRecorder } from "./pulls.js";
import { WebhookSender } from "./sender.js";

export interface Events {
  hub: EventHub;
  sender: WebhookSender;
  /** EVENTS_PULL: absent when off. */
  pulls?: PullRecorder;
  /** Ends live WatchEvents streams (first, so they do not hold up the drain of calls). */
  endStreams(): Promise<void>;
  /** Stops delivering (waiting for deliveries in flight) and writes the pulls still queued. */
  close(): Promise<void>;
}

export interface EventsSetup {
  database: Pick<DatabaseHandle, "listen">;
  store: Store;
  sealer: Sealer;
  events: EventSettings;
  webhooks: WebhookSettings;
  /** UPSTREAM_ALLOWED_NETWORKS: webhook endpoints pass the same fence as upstreams. */
  allowedNetworks: readonly AllowedNetwork[];
  /** The service's own listeners (filled in once it listens): never a webhook endpoint. */
  ownListeners: () => readonly Listening[];
  log: Logger;
}

export async function startEvents(setup: EventsSetup): Promise<Events> {
  const hub = new EventHub();
  await hub.start(setup.database);
  const policy = new AddressPolicy({ allowed: setup.allowedNetworks, ownListeners: setup.ownListeners, purpose: "webhook" });
  const sender = new WebhookSender(policy, setup.webhooks.timeoutMs);
  const deliverer = new WebhookDeliverer(setup.store.webhooks, sender, setup.sealer, setup.webhooks, hub, setup.log);
  deliverer.start();
  const pulls = setup.events.pullSampleRate > 0 ? new PullRecorder(setup.store.events, setup.events.pullSampleRate, setup.log) : undefined;
  return {
    hub,
    sender,
    pulls,
    endStreams: () => hub.stop(),
    async close() {
      await hub.stop();
      await deliverer.stop();
      await pulls?.flush();
      await sender.close();
    },
  };
}
