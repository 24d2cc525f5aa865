// RegistryService.SyncRegistry: checks the request, runs the sync (src/sync/registry-sync.ts,
// where everything about how a sync works lives) and turns its events into progress messages.
import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RegistryService, SyncRegistryProgressSchema } from "../../gen/artifact/v1/registry_pb.js";
import type { Store } from "../store/index.js";
import { syncRegistry, type SyncEvent, type SyncSettings } from "../sync/registry-sync.js";
import type { RegistryUpstreams } from "../upstream/registries.js";
import { requireId } from "./validate.js";
import { auditTrail } from "./caller.js";
import { trailActor } from "../store/events.js";

/** At most this many removed tags are named per progress message. */
const MAX_LISTED_REMOVALS = 100;

export function syncService(store: Store, upstreams: RegistryUpstreams, settings: SyncSettings): Pick<ServiceImpl<typeof RegistryService>, "syncRegistry"> {
  return {
    async *syncRegistry(req, ctx) {
      const registry = await store.registries.get(requireId("id", req.id));
      const client = upstreams.for(registry);
      const actor = trailActor(auditTrail(ctx));
      for await (const event of syncRegistry(registry, client, store.sync, settings, ctx.signal, { actor })) yield progressMessage(event);
    },
  };
}

function progressMessage(event: SyncEvent): MessageInitShape<typeof SyncRegistryProgressSchema> {
  if (event.kind === "done") return { ...event.totals, done: true };
  return { ...event.totals, repository: event.repository, error: event.error ?? "", removedTags: event.removedTags.slice(0, MAX_LISTED_REMOVALS) };
}
