// How a REMOTE registry's upstream repository paths map to catalog names
// (`<registry>/<namespace>/<repository>`) and back. One rule, used by sync (upstream → catalog)
// and by the /v2/ pull-through proxy (catalog → upstream); docs/design-notes.md explains it.
//
//   upstream path            catalog namespace / repository   repositories.upstream_name
//   team/app                 team / app                       team/app
//   org/team/app             org / team/app                   org/team/app
//   testbox (one component)  library / testbox                testbox      (not Docker Hub)
//   library/ubuntu           library / ubuntu                 library/ubuntu (Docker Hub)
//   ubuntu on Docker Hub     library / ubuntu                 library/ubuntu (Hub's own spelling)
//
// Back, from a catalog name: the repository row's upstream_name when there is one (sync and
// the proxy always record it), otherwise `library/<x>` means `<x>` upstream except on Docker
// Hub (where `library/<x>` is the real path), and anything else means `<namespace>/<repository>`.
import { checkRepositoryName } from "./names.js";

/** Namespace that holds an upstream's single-component repositories (Docker's convention). */
const SINGLE_COMPONENT_NAMESPACE = "library";

const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);

/** Whether a REMOTE registry's URL is Docker Hub, whose single-component names live under `library/`. */
export function isDockerHub(url: string): boolean {
  try {
    return DOCKER_HUB_HOSTS.has(new URL(url).hostname.toLowerCase());
  } catch {
    return false;
  }
}

export interface CatalogImageName {
  namespace: string;
  repository: string;
  /** The upstream path to record in repositories.upstream_name (the upstream's canonical spelling). */
  upstreamName: string;
}

/**
 * The catalog namespace and repository for an upstream repository path, or a reason why the path
 * cannot be one (not an OCI repository name). The caller still checks the full name's length.
 */
export function catalogNameOf(upstreamPath: string, options: { dockerHub: boolean }): CatalogImageName | { problem: string } {
  const problem = checkRepositoryName(upstreamPath);
  if (problem) return { problem: `upstream repository ${problem}` };
  const slash = upstreamPath.indexOf("/");
  if (slash < 0) {
    return {
      namespace: SINGLE_COMPONENT_NAMESPACE,
      repository: upstreamPath,
      upstreamName: options.dockerHub ? `${SINGLE_COMPONENT_NAMESPACE}/${upstreamPath}` : upstreamPath,
    };
  }
  return { namespace: upstreamPath.slice(0, slash), repository: upstreamPath.slice(slash + 1), upstreamName: upstreamPath };
}

/**
 * The upstream path of a catalog image name. `upstreamName` is the repository row's recorded
 * path (when the row exists); it wins, so whatever sync or the proxy recorded is what is asked for.
 */
export function upstreamPathOf(namespace: string, repository: string, options: { dockerHub: boolean; upstreamName?: string | null }): string {
  if (options.upstreamName) return options.upstreamName;
  if (namespace === SINGLE_COMPONENT_NAMESPACE && !repository.includes("/") && !options.dockerHub) return repository;
  return `${namespace}/${repository}`;
}
