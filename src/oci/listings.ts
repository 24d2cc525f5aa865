// Listings: a HOSTED repository's tags, the catalog of every repository, and referrers. Keyset
// pages of at most MAX_LIST, with a Link to the next page only when there is one.
import type { OciDeps } from "./deps.js";
import { invalidArgument } from "../domain/errors.js";
import { MAX_LIST, page, pageSize, send, type Response } from "./http.js";
import { parseDigest } from "../domain/digest.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";

const INDEX = "application/vnd.oci.image.index.v1+json";

export async function listTags(
  deps: OciDeps,
  res: Response,
  name: ImageName,
  repositoryId: string,
  tagsVersion: number | undefined,
  q: URLSearchParams,
): Promise<void> {
  const n = pageSize(q);
  const last = q.get("last") || undefined;
  const page = n === 0 ? { json: "[]" } : await deps.store.images.tagNamesPage(repositoryId, n, last, tagsVersion);
  const link = page.next === undefined ? undefined : tagsLink(name, n, page.next);
  send(res, 200, { "content-type": "application/json", ...(link ? { link } : {}) }, `{"name":${JSON.stringify(name.full)},"tags":${page.json}}`);
}

const tagsLink = (name: ImageName, n: number, last: string) => `</v2/${name.full}/tags/list?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;

/** A page of tag names (up to n + 1 fetched, so a Link appears only when more exist). */
export function sendTags(res: Response, name: ImageName, rows: string[], n: number): void {
  const { items, link } = page(
    rows,
    n,
    (t) => t,
    (last) => `/v2/${name.full}/tags/list?n=${n}&last=${encodeURIComponent(last)}`,
  );
  send(res, 200, { "content-type": "application/json", ...(link ? { link } : {}) }, JSON.stringify({ name: name.full, tags: items }));
}

export async function catalog(deps: OciDeps, res: Response, q: URLSearchParams): Promise<void> {
  const n = pageSize(q);
  const last = q.get("last");
  let after: [string, string, string] | undefined;
  if (last !== null && last !== "") {
    const name = parseImageName(last);
    after = [name.registry, name.namespace, name.repository];
  }
  const rows = n === 0 ? [] : await deps.store.images.catalog(n + 1, after);
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
  const image = await deps.store.images.resolve(name.registry, name.namespace, name.repository);
  const rows = image?.repositoryId ? await deps.store.images.referrers(image.repositoryId, digest, { artifactType, after, limit: MAX_LIST + 1 }) : [];
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
