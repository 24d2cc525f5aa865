// How a repository path on an upstream registry maps to our namespace + repository, and back.
// One rule for sync, ImageService and the pull-through proxy:
//   upstream `a/b/c`          → namespace `a`, repository `b/c`
//   upstream `testbox`        → namespace `library`, repository `testbox` (Docker's implicit library/)
//   upstream `library/ubuntu` → namespace `library`, repository `ubuntu`
// The exact upstream path is kept as the repository's upstream_name, because `library/testbox`
// alone cannot tell whether the upstream calls it `testbox` or `library/testbox`.
import { DomainError } from "./errors.js";
import { checkRepositoryName } from "./names.js";

/** Docker's namespace for single-component names (`ubuntu` is `library/ubuntu` on Docker Hub). */
export const IMPLICIT_NAMESPACE = "library";

export interface CatalogName {
  namespace: string;
  repository: string;
}

/**
 * Our namespace and repository for an upstream repository path. A path that breaks our name
 * grammar (upper case, empty components…) → invalid-argument naming it; such repositories
 * cannot be represented and are skipped by the callers.
 */
export function catalogNameOf(upstreamPath: string): CatalogName {
  const problem = checkRepositoryName(upstreamPath);
  if (problem) {
    throw new DomainError("invalid-argument", `upstream repository ${JSON.stringify(upstreamPath.slice(0, 255))} cannot be named here: it ${problem.replace(/^"[^"]*" /, "")}`);
  }
  const slash = upstreamPath.indexOf("/");
  if (slash < 0) return { namespace: IMPLICIT_NAMESPACE, repository: upstreamPath };
  return { namespace: upstreamPath.slice(0, slash), repository: upstreamPath.slice(slash + 1) };
}

/**
 * The upstream paths to try for one of our repositories, best guess first: its recorded
 * upstream_name when it has one (synced or proxied before); otherwise `namespace/repository`,
 * and under `library` also the single-component name (Distribution serves `testbox`, not
 * `library/testbox`, where Docker Hub serves both).
 */
export function upstreamPathsOf(name: CatalogName, upstreamName?: string | null): string[] {
  if (upstreamName) return [upstreamName];
  const full = `${name.namespace}/${name.repository}`;
  return name.namespace === IMPLICIT_NAMESPACE ? [full, name.repository] : [full];
}
