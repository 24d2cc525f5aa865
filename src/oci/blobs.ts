// Blobs of HOSTED repositories (and blobs a pull-through proxy has cached): GET/HEAD with
// ranges and conditional requests, delete.
import { pipeline } from "node:stream/promises";
import type { OciDeps } from "./deps.js";
import { blobUnknown, unsupported } from "../domain/errors.js";
import { contentRange, parseRangeHeader, resolveRange } from "../domain/byte-range.js";
import { header, notModified, send, API_VERSION, type Request, type Response } from "./http.js";
import type { ImageName } from "../domain/image-name.js";

export async function getBlob(deps: OciDeps, req: Request, res: Response, repositoryId: string, digest: string): Promise<void> {
  const blob = await deps.store.blobs.find(repositoryId, digest);
  if (!blob) throw blobUnknown(`blob unknown to registry: ${digest}`);
  await serveStoredBlob(deps, req, res, digest, blob.size);
}

/** Headers every blob answer carries: content addressed, so cacheable for good. */
export function blobHeaders(digest: string): Record<string, string> {
  return {
    "content-type": "application/octet-stream",
    "docker-content-digest": digest,
    etag: `"${digest}"`,
    "accept-ranges": "bytes",
    "cache-control": "max-age=31536000, immutable",
  };
}

/** Streams a blob from the content store: whole (200), a range (206), 304, or 416. */
export async function serveStoredBlob(deps: OciDeps, req: Request, res: Response, digest: string, size: number): Promise<void> {
  const headers = blobHeaders(digest);
  if (notModified(req, headers.etag!)) return send(res, 304, { "docker-content-digest": digest, etag: headers.etag! });
  if (req.method === "HEAD") return send(res, 200, { ...headers, "content-length": size });
  const request = parseRangeHeader(header(req, "range"));
  const range = request && resolveRange(request, size);
  const writeHead = () =>
    range
      ? res.writeHead(206, {
          ...API_VERSION,
          ...headers,
          "content-length": range.end - range.start + 1,
          "content-range": contentRange(range, size),
        })
      : res.writeHead(200, { ...API_VERSION, ...headers, "content-length": size });
  if (deps.content.pipeTo) {
    await deps.content.pipeTo(digest, range, res, writeHead);
    res.end();
    return;
  }
  const stream = await deps.content.read(digest, range);
  writeHead();
  await pipeline(stream, res as NodeJS.WritableStream);
}

/**
 * Unlinks the blob from the repository; the bytes go when garbage collection finds them unused.
 * A blob that a manifest of the repository still lists is refused the way the spec refuses a
 * blob delete (405 UNSUPPORTED): deleting it would leave that manifest pullable without it.
 */
export async function deleteBlob(deps: OciDeps, res: Response, name: ImageName, repositoryId: string, digest: string): Promise<void> {
  const result = await deps.store.blobs.unlink(repositoryId, digest);
  if (result.outcome === "unknown") throw blobUnknown(`blob unknown to registry: ${digest}`);
  if (result.outcome === "in-use") {
    throw unsupported(`blob ${digest} is still used by manifest ${result.manifest} of ${name.full}; delete the manifest first`);
  }
  send(res, 202, { "content-length": 0 });
}
