// Conditional requests on content-addressed answers (RFC 9110 §13.1), in one place for every
// route that serves blobs and manifests (/v2/ and the REST raw blob route). The one validator is
// the entity tag `"<digest>"`: strong, since the bytes of a digest never change.

/** If-None-Match holds no tag of this content: `*`, or a list, each tag compared weakly (§13.1.2). */
export function noneMatch(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return true;
  if (ifNoneMatch.trim() === "*") return false;
  return !ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag);
}

/**
 * Whether a Range request applies under If-Range (§13.1.5): without If-Range it does; with it,
 * only when it names this content's tag, compared strongly. A date never matches (these answers
 * carry no Last-Modified), so the client's partial copy is stale and it gets everything.
 */
export function rangeApplies(ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || ifRange.trim() === etag;
}
