// The upstream client of a REMOTE registry row: built from its url, insecure flag and sealed
// credential, rebuilt when the row's version moves. The one place a credential is opened.
import { DomainError } from "../domain/errors.js";
import type { Sealer } from "../secrets.js";
import type { AddressPolicy } from "./address-policy.js";
import type { UpstreamClient } from "./client.js";
import { UpstreamClients, type UpstreamDefaults } from "./clients.js";

export interface RemoteRegistry {
  id: string;
  name: string;
  kind: "hosted" | "remote";
  version: number;
  url: string;
  insecure: boolean;
  credentialSealed: string | null;
}

export class RegistryUpstreams {
  private readonly clients: UpstreamClients;

  constructor(
    private readonly sealer: Sealer,
    defaults: UpstreamDefaults = {},
    policy?: AddressPolicy,
  ) {
    this.clients = new UpstreamClients(defaults, policy);
  }

  /** The client for a REMOTE registry; FAILED_PRECONDITION for a HOSTED one. */
  for(registry: RemoteRegistry): UpstreamClient {
    if (registry.kind !== "remote") {
      throw new DomainError("failed-precondition", `registry "${registry.name}" is HOSTED: it has no upstream (this needs a REMOTE registry)`);
    }
    return this.clients.get({ id: registry.id, version: String(registry.version) }, () => ({
      url: registry.url,
      insecure: registry.insecure,
      credential: registry.credentialSealed ? this.sealer.open(registry.credentialSealed) : undefined,
    }));
  }

  forget(id: string): void {
    this.clients.forget(id);
  }

  close(): Promise<void> {
    return this.clients.close();
  }
}
