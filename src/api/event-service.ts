// EventService.WatchEvents: checks the request and streams what src/events/watch.ts yields, as
// messages. A caller sees the events of what it may read (its readable scope, and what is public).
import type { ServiceImpl } from "@connectrpc/connect";
import type { EventService } from "../../gen/artifact/v1/event_pb.js";
import { parseEventTypes } from "../domain/events.js";
import { invalidArgument } from "../domain/errors.js";
import type { EventHub } from "../events/hub.js";
import { watchEvents } from "../events/watch.js";
import type { Store } from "../store/index.js";
import { visibilityOf } from "./caller.js";
import { eventToProto } from "./convert.js";
import { optionalId } from "./validate.js";

export function eventService(store: Store, hub: EventHub): ServiceImpl<typeof EventService> {
  return {
    async *watchEvents(req, ctx) {
      let after: number | undefined;
      if (req.afterPosition !== undefined) {
        if (req.afterPosition < 0n || req.afterPosition > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw invalidArgument(`after_position: must be from 0 to ${Number.MAX_SAFE_INTEGER} (got ${req.afterPosition})`);
        }
        after = Number(req.afterPosition);
      }
      const filter = {
        registryId: optionalId("registry_id", req.registryId),
        namespaceId: optionalId("namespace_id", req.namespaceId),
        types: parseEventTypes("types", req.types),
      };
      for await (const batch of watchEvents(store.events, hub, { after, filter, visibility: visibilityOf(ctx), signal: ctx.signal })) {
        yield { events: batch.events.map(eventToProto), position: BigInt(batch.position), live: batch.live };
      }
    },
  };
}
