// What the registry API needs from the rest of the service.
import type { Logger } from "pino";
import type { Registries } from "../registry/index.js";

export interface OciLimits {
  /** Largest manifest accepted on push (413 MANIFEST_INVALID beyond). */
  manifestMaxBytes: number;
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
}
