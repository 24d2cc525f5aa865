// From an image name to the repository that serves it: a HOSTED registry's repository, or a
// REMOTE registry's through its cache; no registry of that name is NAME_UNKNOWN. One query finds
// the registry, namespace and repository together (and, when asked, the manifest a pull wants).
import type { Logger } from "pino";
import type { ContentDriver } from "../content/driver.js";
import { nameUnknown } from "../domain/errors.js";
import type { ImageName } from "../domain/image-name.js";
import { isDockerHub, upstreamPathOf } from "../domain/upstream-names.js";
import type { Store } from "../store/index.js";
import type { ImageRegistry, ResolvedImage } from "../store/images.js";
import type { UpstreamClient } from "../upstream/client.js";
import { HostedRepository, type CoreDeps, type Prefetched } from "./hosted.js";
import { DEFAULT_CACHE_POLICY, type CachePolicy, type Registries, type Repository } from "./index.js";
import { PullThroughRepository } from "./pull-through.js";

export interface RegistriesOptions {
  store: Store;
  content: ContentDriver;
  log: Logger;
  /** The upstream client of a REMOTE registry (src/upstream/registries.ts). */
  upstreams: { for(registry: ImageRegistry): UpstreamClient };
  /** Largest blob one upload, or one cache fill, may carry (BLOB_MAX_BYTES). */
  blobMaxBytes: number;
  cachePolicy?: CachePolicy;
  /** BLOB_REDIRECT (only with a content store that presigns: S3). */
  blobRedirect?: boolean;
}

export function createRegistries(options: RegistriesOptions): Registries {
  const deps: CoreDeps = { ...options, cachePolicy: options.cachePolicy ?? DEFAULT_CACHE_POLICY };
  const { store, upstreams } = options;

  const repositoryOf = (name: ImageName, image: ResolvedImage, prefetched?: Prefetched): Repository => {
    if (image.registry.kind === "hosted") return new HostedRepository(deps, name, image, prefetched);
    // A REMOTE image need not have been synced or pulled: without a recorded upstream name the rule decides.
    const path = upstreamPathOf(name.namespace, name.repository, { dockerHub: isDockerHub(image.registry.url), upstreamName: image.upstreamName });
    const cache = new HostedRepository(deps, name, image, prefetched, { upstreamPath: path });
    return new PullThroughRepository(cache, { client: () => upstreams.for(image.registry), path }, deps.cachePolicy, deps.log);
  };

  return {
    async repository(name, prefetch) {
      if (prefetch) {
        const hot = store.images.cachedManifest(name.registry, name.namespace, name.repository, prefetch.manifest);
        if (hot) return repositoryOf(name, hot.image, { reference: prefetch.manifest, manifest: hot.manifest, verified: true });
        const found = await store.images.resolveManifest(name.registry, name.namespace, name.repository, prefetch.manifest);
        if (!found) throw unknownRegistry(name);
        return repositoryOf(name, found.image, { reference: prefetch.manifest, manifest: found.manifest, ticket: found.ticket });
      }
      const image = await store.images.resolve(name.registry, name.namespace, name.repository);
      if (!image) throw unknownRegistry(name);
      return repositoryOf(name, image);
    },

    catalog(limit, after) {
      return store.images.catalog(limit, after && [after.registry, after.namespace, after.repository]);
    },
  };
}

/** Says how to make the registry, since a first push to a name nobody created ends here. */
const unknownRegistry = (name: ImageName) =>
  nameUnknown(
    `registry "${name.registry}" not found (repository name ${name.full}); to push there, create it first: ` +
      `POST /v1/registries {"name":"${name.registry}","kind":"REGISTRY_KIND_HOSTED"} (RegistryService.CreateRegistry)`,
  );
