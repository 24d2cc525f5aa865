// The upstream client of a REMOTE registry row: built from its url, insecure flag and sealed
// credential, rebuilt when the row's version or its sealed credential moves. The one place a
// credential is opened.
import { failedPrecondition, misconfigured } from "../domain/errors.js";
import { UnopenableCredential, type Sealer } from "../secrets.js";
import type { AddressPolicy } from "./address-policy.js";
import type { UpstreamClient } from "./client.js";
import { UpstreamClients } from "./clients.js";
import type { UpstreamLimits } from "./settings.js";

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
    limits: UpstreamLimits,
    policy: AddressPolicy,
  ) {
    this.clients = new UpstreamClients(limits, policy);
  }

  /**
   * The client for a REMOTE registry; FAILED_PRECONDITION for a HOSTED one, and for one whose
   * stored credential no configured key opens (the message names the registry and the remedy).
   */
  for(registry: RemoteRegistry): UpstreamClient {
    if (registry.kind !== "remote") {
      throw failedPrecondition(`registry "${registry.name}" is HOSTED: it has no upstream (this needs a REMOTE registry)`);
    }
    // `npm run reseal` rewrites the sealed value without moving the version (nothing a client can
    // see changes), so the sealed value is part of what the cached client was built from.
    const version = `${registry.version}:${registry.credentialSealed ?? ""}`;
    return this.clients.get({ id: registry.id, version }, () => ({
      url: registry.url,
      insecure: registry.insecure,
      credential: registry.credentialSealed ? this.open(registry.name, registry.credentialSealed) : undefined,
    }));
  }

  forget(id: string): void {
    this.clients.forget(id);
  }

  close(): Promise<void> {
    return this.clients.close();
  }

  private open(name: string, sealed: string) {
    try {
      return this.sealer.open(sealed);
    } catch (err) {
      if (err instanceof UnopenableCredential) throw misconfigured(err.explain(name), err);
      throw err;
    }
  }
}
