// Where an image named `registry/namespace/repository` lives: in this service's store (HOSTED)
// or on an upstream registry (REMOTE, under the upstream path the naming rule gives).
import { notFound } from "../domain/errors.js";
import type { ImageName } from "../domain/image-name.js";
import { isDockerHub, upstreamPathOf } from "../domain/upstream-names.js";
import type { Store } from "../store/index.js";
import type { ImageRegistry } from "../store/images.js";
import type { UpstreamClient } from "../upstream/client.js";
import type { RegistryUpstreams } from "../upstream/registries.js";

export type ImageSource =
  | { kind: "hosted"; name: ImageName; registry: ImageRegistry; repositoryId: string }
  | {
      kind: "remote";
      name: ImageName;
      registry: ImageRegistry;
      client: UpstreamClient;
      path: string;
      /** The repository in the catalog, when a sync or a /v2/ pull-through made it: its cache. */
      repositoryId?: string;
    };

export async function locateImage(store: Store, upstreams: RegistryUpstreams, name: ImageName): Promise<ImageSource> {
  const found = await store.images.resolve(name.registry, name.namespace, name.repository);
  if (!found) throw notFound(`registry "${name.registry}" not found`);
  const registry = found.registry;
  if (registry.kind === "hosted") {
    if (!found.repositoryId) throw notFound(`repository ${name.namespace}/${name.repository} not found in registry "${name.registry}"`);
    return { kind: "hosted", name, registry, repositoryId: found.repositoryId };
  }
  // A REMOTE image need not have been synced: without a recorded upstream name the rule decides.
  const path = upstreamPathOf(name.namespace, name.repository, { dockerHub: isDockerHub(registry.url), upstreamName: found.upstreamName });
  return { kind: "remote", name, registry, client: upstreams.for(registry), path, repositoryId: found.repositoryId };
}
