// Blob uploads into HOSTED repositories: start (with cross-repository mount, or monolithic with
// ?digest=), chunks (PATCH with Content-Range, in order), status, close (PUT ?digest=), cancel.
// Sessions live in the uploads table and their bytes in the content store, so an upload resumes
// after a restart or on another replica.
import { watchBody } from "../content/body.js";
import { bodyIdle, digestInvalid, isDomainError, rangeMismatch, sizeMismatch } from "../domain/errors.js";
import type { UploadRow } from "../store/blobs.js";
import type { OciDeps } from "./deps.js";
import { ociErrorOf, type OciError } from "./errors.js";
import { contentLength, header, send, type Request, type Response } from "./http.js";
import { parseChunkRange } from "../domain/byte-range.js";
import { isDigest, parseDigest } from "../domain/digest.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";

function uploadHeaders(name: ImageName, uploadId: string, size: number): Record<string, string | number> {
  return {
    location: `/v2/${name.full}/blobs/uploads/${uploadId}`,
    // Inclusive, as the spec writes it. An empty session also says 0-0 (as Distribution does):
    // the header's grammar has no way to say "nothing yet", and "0--1" breaks Docker clients.
    range: `0-${Math.max(0, size - 1)}`,
    "docker-upload-uuid": uploadId,
    "content-length": 0,
  };
}

function blobCreated(res: Response, name: ImageName, digest: string): void {
  send(res, 201, { location: `/v2/${name.full}/blobs/${digest}`, "docker-content-digest": digest, "content-length": 0 });
}

/** 416 with the session's Location and Range, so the client can continue from the right offset. */
function outOfOrder(name: ImageName, uploadId: string, size: number, message: string): OciError {
  const { location, range } = uploadHeaders(name, uploadId, size);
  return ociErrorOf(rangeMismatch(message), { location: String(location), range: String(range), "docker-upload-uuid": uploadId });
}

/**
 * The request's body, cut when it delivers no byte for the configured idle time: a client that
 * stops sending must not keep an upload (and a file, and its request) for ever. The append then
 * fails as a whole, so the session is back at its offset.
 */
function uploadBody(deps: OciDeps, req: Request): AsyncIterable<Uint8Array> {
  const idleMs = deps.limits.uploadIdleTimeoutMs;
  return watchBody(req, {
    idleMs,
    idleError: () => bodyIdle(`no byte of the upload's body arrived for ${idleMs} ms`),
  });
}

export async function startUpload(deps: OciDeps, req: Request, res: Response, name: ImageName, repositoryId: string, q: URLSearchParams): Promise<void> {
  const { store } = deps;
  const mount = q.get("mount");
  if (mount !== null && (await tryMount(deps, repositoryId, mount, q.get("from")))) return blobCreated(res, name, mount);
  const digestParam = q.get("digest");
  const digest = digestParam === null ? undefined : parseDigest(digestParam);
  const upload = await store.blobs.startUpload(repositoryId);
  if (digest === undefined) return send(res, 202, uploadHeaders(name, upload.id, 0));
  // Monolithic: the whole blob in this request; a failure leaves no session behind (the client
  // never learnt of it), so a body that went silent is answered 408 and must be sent again.
  try {
    await store.blobs.append(upload, 0, uploadBody(deps, req), deps.limits.blobMaxBytes);
    await store.blobs.commit(upload, digest, contentLength(req));
  } catch (err) {
    await store.blobs.cancel(upload).catch(() => undefined);
    throw err;
  }
  blobCreated(res, name, digest);
}

/**
 * A cross-repository mount, when it can be done: `from` (any repository of the service) must be
 * able to read the blob; without `from`, any blob the service holds is mounted (OCI 1.1). When it
 * cannot be done (unknown repository, a name or digest that is not one, no such blob) the client
 * gets an ordinary upload session instead, as the spec and Distribution do.
 */
async function tryMount(deps: OciDeps, repositoryId: string, digest: string, fromName: string | null): Promise<boolean> {
  if (!isDigest(digest)) return false;
  let fromRepositoryId: string | undefined;
  if (fromName !== null) {
    let from;
    try {
      from = parseImageName(fromName);
    } catch {
      return false;
    }
    fromRepositoryId = (await deps.store.images.resolve(from.registry, from.namespace, from.repository))?.repositoryId;
    if (!fromRepositoryId) return false;
  }
  return (await deps.store.blobs.mount(repositoryId, digest, fromRepositoryId)) !== undefined;
}

/** Checks a chunk's Content-Range against the session's offset and the body's length. */
function checkChunk(req: Request, name: ImageName, upload: UploadRow): void {
  const value = header(req, "content-range");
  if (value === undefined) return;
  const offset = upload.sizeBytes;
  const range = parseChunkRange(value);
  if (!range) throw outOfOrder(name, upload.id, offset, `Content-Range ${JSON.stringify(value.slice(0, 80))} is not <start>-<end>`);
  if (range.start !== offset) {
    throw outOfOrder(
      name,
      upload.id,
      offset,
      `chunk ${range.start}-${range.end} is out of order: the upload holds ${offset} bytes, so the next chunk starts at ${offset}`,
    );
  }
  const length = contentLength(req);
  if (length !== undefined && length !== range.end - range.start + 1) {
    throw sizeMismatch(`Content-Range ${value} announces ${range.end - range.start + 1} bytes but Content-Length is ${length}`);
  }
}

/**
 * Appends the request body. An offset that moved meanwhile, or another request writing, is
 * answered like an out-of-order chunk; a body that went silent is a 408 that says where the
 * session stands (the append failed as a whole), so the client can continue from there.
 */
async function appendBody(deps: OciDeps, req: Request, name: ImageName, upload: UploadRow): Promise<number> {
  try {
    return await deps.store.blobs.append(upload, upload.sizeBytes, uploadBody(deps, req), deps.limits.blobMaxBytes);
  } catch (err) {
    throw await withSessionState(deps, name, upload, err);
  }
}

/** `err`, with the session's Location and Range when the client can continue the upload after it. */
async function withSessionState(deps: OciDeps, name: ImageName, upload: UploadRow, err: unknown): Promise<unknown> {
  if (!isDomainError(err) || (err.reason !== "range-mismatch" && err.reason !== "body-idle")) return err;
  // A session that is gone by now is BLOB_UPLOAD_UNKNOWN instead.
  const current = await deps.store.blobs.getUpload(upload.repositoryId, upload.id);
  if (err.reason === "range-mismatch") return outOfOrder(name, upload.id, current.sizeBytes, err.message);
  const { location, range } = uploadHeaders(name, upload.id, current.sizeBytes);
  return ociErrorOf(bodyIdle(`${err.message}; the upload holds ${current.sizeBytes} bytes: continue from there (GET ${location} tells where it stands)`), {
    location: String(location),
    range: String(range),
    "docker-upload-uuid": upload.id,
  });
}

export async function patchUpload(deps: OciDeps, req: Request, res: Response, name: ImageName, repositoryId: string, uploadId: string): Promise<void> {
  const upload = await deps.store.blobs.getUpload(repositoryId, uploadId);
  checkChunk(req, name, upload);
  const size = await appendBody(deps, req, name, upload);
  send(res, 202, uploadHeaders(name, upload.id, size));
}

export async function finishUpload(
  deps: OciDeps,
  req: Request,
  res: Response,
  name: ImageName,
  repositoryId: string,
  uploadId: string,
  q: URLSearchParams,
): Promise<void> {
  const upload = await deps.store.blobs.getUpload(repositoryId, uploadId);
  const digestParam = q.get("digest");
  if (digestParam === null) throw digestInvalid("the digest query parameter is required to close an upload (PUT …?digest=<digest>)");
  const digest = parseDigest(digestParam);
  checkChunk(req, name, upload);
  // The last chunk may come with the PUT.
  if ((contentLength(req) ?? 1) > 0) await appendBody(deps, req, name, upload);
  try {
    await deps.store.blobs.commit(upload, digest);
  } catch (err) {
    throw await withSessionState(deps, name, upload, err);
  }
  blobCreated(res, name, digest);
}

export async function uploadStatus(deps: OciDeps, res: Response, name: ImageName, repositoryId: string, uploadId: string): Promise<void> {
  const upload = await deps.store.blobs.getUpload(repositoryId, uploadId);
  send(res, 204, uploadHeaders(name, upload.id, upload.sizeBytes));
}

export async function cancelUpload(deps: OciDeps, res: Response, repositoryId: string, uploadId: string): Promise<void> {
  const upload = await deps.store.blobs.getUpload(repositoryId, uploadId);
  await deps.store.blobs.cancel(upload);
  send(res, 204, { "content-length": 0 });
}
