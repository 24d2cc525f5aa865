// WatchEvents as application logic (EventService in src/api/event-service.ts only translates):
// the events after a position, page by page, then each new one as the outbox's notice announces
// it. Positions are commit order (src/store/events.ts), so the resume point a message carries
// never skips an event. A heartbeat (no events, the position so far) comes while nothing matches,
// so a client's resume point moves on and idle proxies keep the stream open.
import { DomainError } from "../domain/errors.js";
import type { EventFilter, EventRow, EventStore } from "../store/events.js";
import type { Visibility } from "../store/listing.js";
import type { EventHub } from "./hub.js";

export interface WatchRequest {
  /** Send the events after this position first; undefined: only those committed from now on. */
  after?: number;
  filter: EventFilter;
  /** What the caller may read (undefined: everything). */
  visibility?: Visibility;
  signal: AbortSignal;
}

export interface WatchBatch {
  events: EventRow[];
  /** The resume point: every matching event up to here has been sent. */
  position: number;
  /** The past events have been sent; what follows comes as it is committed. */
  live: boolean;
}

const PAGE = 100;
const HEARTBEAT_MS = 30_000;
/** How often a stream looks at the outbox while this process hears no notices (its LISTEN is down). */
const POLL_MS = 1_000;

export async function* watchEvents(store: EventStore, hub: EventHub, req: WatchRequest): AsyncGenerator<WatchBatch> {
  let cursor: number;
  if (req.after === undefined) {
    cursor = await store.latest();
  } else {
    const pruned = await store.prunedThrough();
    if (req.after > 0 && req.after < pruned) {
      throw new DomainError(
        "out-of-range",
        `after_position: events up to position ${pruned} were deleted (EVENTS_RETENTION_DAYS), so some after ${req.after} are gone; resume from ${pruned} or from 0 (the oldest kept)`,
      );
    }
    cursor = req.after;
  }
  // Notices that come while a page is read are not lost: the mark is taken before each read, and
  // a wait returns at once when a notice came after it.
  let mark = hub.mark;
  const read = () => {
    mark = hub.mark;
    return store.after(cursor, req.filter, req.visibility, PAGE);
  };
  // The past, page by page; the last page is the first live message (it may be empty).
  for (;;) {
    const page = await read();
    cursor = page.scannedTo;
    const full = page.events.length === PAGE;
    yield { events: page.events, position: cursor, live: !full };
    if (!full) break;
  }
  let lastSent = Date.now();
  for (;;) {
    const left = HEARTBEAT_MS - (Date.now() - lastSent);
    const outcome = left <= 0 ? "timeout" : await hub.wait(mark, hub.live ? left : Math.min(left, POLL_MS), req.signal);
    if (outcome === "closed") return;
    let sent = false;
    for (;;) {
      const page = await read();
      cursor = page.scannedTo;
      if (page.events.length === 0) break;
      yield { events: page.events, position: cursor, live: true };
      sent = true;
      if (page.events.length < PAGE) break;
    }
    if (!sent && Date.now() - lastSent >= HEARTBEAT_MS) {
      yield { events: [], position: cursor, live: true };
      sent = true;
    }
    if (sent) lastSent = Date.now();
  }
}
