// Listings: a repository's tags, the catalog of every repository, and referrers. Pages of at most
// MAX_LIST, with a Link to the next page only when there is one.
import { parseDigest } from "../domain/digest.js";
import { invalidArgument, isDomainError } from "../domain/errors.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";
import type { Repository } from "../registry/index.js";
import type { OciDeps } from "./deps.js";
import { MAX_LIST, page, pageSize, send, type Response } from "./http.js";

const INDEX = "application/vnd.oci.image.index.v1+json";

export async function listTags(res: Response, repository: Repository, q: URLSearchParams): Promise<void> {
  const name = repository.name;
  const n = pageSize(q);
  const tags = await repository.listTags({ n, last: q.get("last") || undefined });
  const link = tags.next === undefined ? undefined : `</v2/${name.full}/tags/list?n=${n}&last=${encodeURIComponent(tags.next)}>; rel="next"`;
  send(res, 200, { "content-type": "application/json", ...(link ? { link } : {}) }, `{"name":${JSON.stringify(name.full)},"tags":${tags.json}}`);
}

export async function catalog(deps: OciDeps, res: Response, q: URLSearchParams): Promise<void> {
  const n = pageSize(q);
  const last = q.get("last");
  const after = last === null || last === "" ? undefined : parseImageName(last);
  const rows = n === 0 ? [] : await deps.registries.catalog(n + 1, after);
  const { items, link } = page(
    rows,
    n,
    (r) => r,
    (l) => `/v2/_catalog?n=${n}&last=${encodeURIComponent(l)}`,
  );
  send(res, 200, { "content-type": "application/json", ...(link ? { link } : {}) }, JSON.stringify({ repositories: items }));
}

/**
 * The referrers API: always an image index, empty when nothing refers to the digest or the
 * repository does not exist (the spec forbids 404 here). artifactType filters, and
 * OCI-Filters-Applied says so.
 */
export async function referrers(deps: OciDeps, res: Response, name: ImageName, digest: string, q: URLSearchParams): Promise<void> {
  const artifactType = q.get("artifactType") || undefined;
  const lastParam = q.get("last");
  const after = lastParam === null || lastParam === "" ? undefined : parseDigest(lastParam);
  if (artifactType !== undefined && artifactType.length > 255) throw invalidArgument("artifactType is longer than 255 characters");
  const repository = await deps.registries.repository(name).catch((err: unknown) => {
    if (isDomainError(err, "not-found")) return undefined;
    throw err;
  });
  const rows = repository ? await repository.referrers(digest, { artifactType, after, limit: MAX_LIST + 1 }) : [];
  const filter = artifactType === undefined ? "" : `&artifactType=${encodeURIComponent(artifactType)}`;
  const { items, link } = page(
    rows,
    MAX_LIST,
    (d) => d.digest,
    (l) => `/v2/${name.full}/referrers/${digest}?last=${l}${filter}`,
  );
  const headers: Record<string, string> = { "content-type": INDEX, ...(link ? { link } : {}) };
  if (artifactType !== undefined) headers["oci-filters-applied"] = "artifactType";
  send(res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: items }));
}
