// RFC 8288 Link headers, as registries use them for `_catalog` and `tags/list` pages:
//   Link: </v2/_catalog?last=team%2Fapp&n=100>; rel="next"

/** The target of the first `rel="next"` link, as written (relative or absolute), or undefined. */
export function nextLink(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const values = Array.isArray(header) ? header : [header];
  for (const value of values) {
    for (const m of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
      const params = m[2] ?? "";
      for (const p of params.matchAll(/;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/gi)) {
        const rels = (p[1] ?? p[2] ?? "").toLowerCase().split(/\s+/);
        if (rels.includes("next")) return m[1];
      }
    }
  }
  return undefined;
}
