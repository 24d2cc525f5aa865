// From what a request names (an id, an image name, a binding's scope) to the resource the policy
// judges: the thing with its parents and their public flags, one query each (src/store/access.ts).
import type { PolicyScope } from "../domain/policy-scope.js";
import type { AccessStore, ImagePlace } from "../store/access.js";
import type { Resource } from "./policy.js";

/** A role binding's scope as a request names it. */
export type ScopeRef = { kind: "global" } | { kind: "registry"; id: string } | { kind: "namespace"; id: string };

export class Locator {
  constructor(private readonly access: AccessStore) {}

  async registry(id: string): Promise<Resource> {
    const place = await this.access.registry(id);
    return place ? { type: "registry", registry: place.registry, publicNamespace: place.publicNamespace } : missing("registry", id);
  }

  async namespace(id: string): Promise<Resource> {
    const place = await this.access.namespace(id);
    return place ? { type: "namespace", ...place } : missing("namespace", id);
  }

  async repository(id: string): Promise<Resource> {
    const place = await this.access.repository(id);
    return place ? { type: "repository", ...place, namespaceName: place.namespace.name, repository: place.repository.name } : missing("repository", id);
  }

  async tag(id: string): Promise<Resource> {
    const place = await this.access.tag(id);
    return place ? { type: "repository", ...place, namespaceName: place.namespace.name, repository: place.repository.name } : missing("tag", id);
  }

  /** `<registry>/<namespace>/<repository>`; a malformed name is left to the call to refuse. */
  async image(name: string): Promise<Resource> {
    const parts = name.split("/");
    if (parts.length < 3 || parts.some((p) => p === "")) return missing("repository", name);
    const [registry, namespace, ...rest] = parts as [string, string, ...string[]];
    return imageResource(await this.access.image(registry, namespace, rest.join("/")), registry, namespace, rest.join("/"));
  }

  /** Where a policy (an immutability rule) is set: its registry, namespace or repository. */
  policyScope(scope: PolicyScope): Promise<Resource> {
    if (scope.kind === "registry") return this.registry(scope.id);
    return scope.kind === "namespace" ? this.namespace(scope.id) : this.repository(scope.id);
  }

  async scope(scope: ScopeRef): Promise<Resource> {
    if (scope.kind === "global") return { type: "service" };
    return scope.kind === "registry" ? this.registry(scope.id) : this.namespace(scope.id);
  }
}

/** An image name's resource: a repository (perhaps in a namespace a push will create), or missing. */
export function imageResource(place: ImagePlace | undefined, registry: string, namespace: string, repository: string): Resource {
  if (!place) return missing("registry", registry);
  return { type: "repository", registry: place.registry, namespace: place.namespace, namespaceName: namespace, repository };
}

/** What a request named that does not exist; the name is the client's, so only its start is kept (it ends up in messages). */
function missing(noun: string, id: string): Resource {
  return { type: "missing", noun, id: id.length > 100 ? `${id.slice(0, 100)}…` : id };
}
