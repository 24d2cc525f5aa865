// What the registry API needs from the rest of the service.
import type { Logger } from "pino";
import type { Registries } from "../registry/index.js";
import type { EventActor } from "../domain/events.js";
import type { ImageName } from "../domain/image-name.js";

export interface OciLimits {
  /** Largest manifest accepted on push (413 MANIFEST_INVALID beyond). */
  manifestMaxBytes: number;
  /**
   * Largest blob one upload may carry (BLOB_MAX_BYTES; 413 SIZE_INVALID beyond). The core enforces
   * it on the bytes as they arrive; the edge also refuses a body whose Content-Length declares more
   * before reading it.
   */
  blobMaxBytes: number;
  /** An upload body that delivers no byte this long is cut; its session stays where it was. */
  uploadIdleTimeoutMs: number;
}

export interface OciDeps {
  /** The image core (src/registry): every read and write of a repository goes through it. */
  registries: Registries;
  log: Logger;
  limits: OciLimits;
  /** True while the database is known not to answer: requests fail at once with 503. */
  databaseDown?: () => boolean;
  /** EVENTS_PULL: manifest pulls recorded as events (src/events/pulls.ts); absent: none. */
  pulls?: PullEvents;
}

/** Where a manifest pull is reported; it decides (sampling) and writes later, never on the request's path. */
export interface PullEvents {
  /** Whether this pull is to be recorded (EVENTS_PULL: off, on, or a sampling rate). */
  sampled(): boolean;
  record(pull: { name: ImageName; tag?: string; digest: string; mediaType: string; sizeBytes: number; actor: () => Promise<EventActor> }): void;
}
