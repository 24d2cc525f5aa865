// Blobs on /v2/: GET/HEAD with ranges and conditional requests, delete.
import { contentRange, parseRangeHeader } from "../domain/byte-range.js";
import type { Repository } from "../registry/index.js";
import { rangeApplies } from "../http/conditional.js";
import { API_VERSION, header, notModified, send, type Request, type Response } from "./http.js";

/** Headers every blob answer carries: content addressed, so cacheable for good. */
function blobHeaders(digest: string): Record<string, string> {
  return {
    "content-type": "application/octet-stream",
    "docker-content-digest": digest,
    etag: `"${digest}"`,
    "accept-ranges": "bytes",
    "cache-control": "max-age=31536000, immutable",
  };
}

/** A blob: whole (200), a range (206), 304 when the client has it, 416 when the range is not in it. */
export async function getBlob(req: Request, res: Response, repository: Repository, digest: string): Promise<void> {
  const headers = blobHeaders(digest);
  const etag = headers.etag!;
  if (req.method === "HEAD" || notModified(req, etag)) {
    // The bytes are not needed: only whether the blob is there, and its size.
    const { size } = await repository.statBlob(digest);
    if (notModified(req, etag)) return send(res, 304, { "docker-content-digest": digest, etag });
    return send(res, 200, { ...headers, "content-length": size });
  }
  // If-Range with another validator: the client's partial copy is stale, it gets everything.
  const requested = rangeApplies(header(req, "if-range"), etag) ? parseRangeHeader(header(req, "range")) : undefined;
  const blob = await repository.getBlob(digest, { range: requested });
  const elsewhere = await blob.location?.();
  if (elsewhere !== undefined) {
    // BLOB_REDIRECT: the object store serves the bytes (and the client's Range) itself. The URL
    // expires soon, so the answer is not to be cached; the blob's own headers say what it is.
    blob.discard();
    return send(res, 307, { location: elsewhere, "docker-content-digest": digest, "cache-control": "no-store", "content-length": 0 });
  }
  const { range, size } = blob;
  await blob.pipeTo(res, {
    ready: () =>
      res.writeHead(requested && range ? 206 : 200, {
        ...API_VERSION,
        ...headers,
        "content-length": blob.length,
        ...(requested && range ? { "content-range": contentRange(range, size) } : {}),
      }),
    // A pull-through read may still be committing the blob to the cache: the client need not wait.
    delivered: () => res.end(),
  });
}

export async function deleteBlob(res: Response, repository: Repository, digest: string): Promise<void> {
  await repository.deleteBlob(digest);
  send(res, 202, { "content-length": 0 });
}
