// One client per REMOTE registry, made again when the registry's settings change (its version
// moves), all sharing connection pools per upstream origin. Callers pass a factory for the
// settings so a sealed credential is opened only when a client is actually (re)built.
import type { AddressPolicy } from "./address-policy.js";
import { UpstreamClient } from "./client.js";
import type { UpstreamLimits, UpstreamSettings } from "./settings.js";
import { Dispatchers } from "./transport.js";

export interface ClientKey {
  /** The registry's id. */
  id: string;
  /** Anything that changes whenever the registry's url, insecure flag or credential does (its etag or update time). */
  version: string;
}

export class UpstreamClients {
  private readonly dispatchers: Dispatchers;
  private readonly clients = new Map<string, { version: string; client: UpstreamClient }>();

  /** `policy`: which addresses upstream connections may reach. */
  constructor(
    private readonly limits: UpstreamLimits,
    policy: AddressPolicy,
  ) {
    this.dispatchers = new Dispatchers({ policy, timeouts: limits.timeouts });
  }

  /** The client for `key`, built from `settings()` unless one for this exact version exists. */
  get(key: ClientKey, settings: () => UpstreamSettings): UpstreamClient {
    const known = this.clients.get(key.id);
    if (known && known.version === key.version) return known.client;
    const client = new UpstreamClient(settings(), { limits: this.limits, dispatchers: this.dispatchers });
    // The old client's token cache goes with it; its connections stay in the shared pools.
    this.clients.set(key.id, { version: key.version, client });
    return client;
  }

  /** Drops the client of a deleted registry. */
  forget(id: string): void {
    this.clients.delete(id);
  }

  get size(): number {
    return this.clients.size;
  }

  /** Closes every pooled connection (at shutdown). */
  async close(): Promise<void> {
    this.clients.clear();
    await this.dispatchers.close();
  }
}
