// What the registry API needs from the rest of the service.
import type { Logger } from "pino";
import type { ContentDriver } from "../content/driver.js";
import type { Store } from "../store/index.js";
import type { ImageRegistry } from "../store/images.js";
import type { UpstreamClient } from "../upstream/client.js";

export interface OciLimits {
  /** Largest manifest accepted on push (413 MANIFEST_INVALID beyond). */
  manifestMaxBytes: number;
  /** Largest blob one upload may carry (413 SIZE_INVALID beyond). */
  blobMaxBytes: number;
  /** An upload body that delivers no byte this long is cut; its session stays where it was. */
  uploadIdleTimeoutMs: number;
}

export interface OciDeps {
  store: Store;
  content: ContentDriver;
  log: Logger;
  limits: OciLimits;
  /** True while the database is known not to answer: requests fail at once with 503. */
  databaseDown?: () => boolean;
  /** The upstream client of a REMOTE registry, for the pull-through proxy. */
  upstreams?: { for(registry: ImageRegistry): UpstreamClient };
}
