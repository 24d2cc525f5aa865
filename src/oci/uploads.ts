// Blob uploads on /v2/: start (with cross-repository mount, or monolithic with ?digest=), chunks
// (PATCH with Content-Range, in order), status, close (PUT ?digest=), cancel. Sessions are the
// core's (src/registry), kept in the database and the content store, so an upload resumes after a
// restart or on another replica; this file only speaks the protocol.
import { exactly, watchBody } from "../content/body.js";
import { parseChunkRange } from "../domain/byte-range.js";
import { isDigest, parseDigest } from "../domain/digest.js";
import { bodyIdle, digestInvalid, isDomainError, rangeMismatch, sizeMismatch, tooLarge } from "../domain/errors.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";
import type { Repository, UploadSession } from "../registry/index.js";
import type { OciDeps } from "./deps.js";
import { ociErrorOf, type OciError } from "./errors.js";
import { contentLength, header, send, type Request, type Response } from "./http.js";

function uploadHeaders(name: ImageName, uploadId: string, size: number): Record<string, string> {
  return {
    location: `/v2/${name.full}/blobs/uploads/${uploadId}`,
    // Inclusive, as the spec writes it. An empty session also says 0-0 (as Distribution does):
    // the header's grammar has no way to say "nothing yet", and "0--1" breaks Docker clients.
    range: `0-${Math.max(0, size - 1)}`,
    "docker-upload-uuid": uploadId,
  };
}

function blobCreated(res: Response, name: ImageName, digest: string): void {
  send(res, 201, { location: `/v2/${name.full}/blobs/${digest}`, "docker-content-digest": digest, "content-length": 0 });
}

/** 416 with the session's Location and Range, so the client can continue from the right offset. */
function outOfOrder(name: ImageName, uploadId: string, size: number, message: string): OciError {
  return ociErrorOf(rangeMismatch(message), uploadHeaders(name, uploadId, size));
}

/**
 * The request's body, cut when it delivers no byte for the configured idle time: a client that
 * stops sending must not keep an upload (and a file, and its request) for ever. The append then
 * fails as a whole, so the session is back at its offset.
 */
function uploadBody(deps: OciDeps, req: Request): AsyncIterable<Uint8Array> {
  const idleMs = deps.limits.uploadIdleTimeoutMs;
  return watchBody(req, { idleMs, idleError: () => bodyIdle(`no byte of the upload's body arrived for ${idleMs} ms`) });
}

/**
 * Refuses (413) a body whose Content-Length declares more than BLOB_MAX_BYTES leaves room for
 * after the `offset` bytes the upload already holds, before a byte of it is read: waiting for
 * the limit to be crossed would mean reading up to 64 GiB only to refuse them. The session, if
 * any, is untouched. (A body without Content-Length is cut by the core when it crosses the limit.)
 */
function checkDeclaredSize(deps: OciDeps, req: Request, offset: number): void {
  const declared = contentLength(req);
  const max = deps.limits.blobMaxBytes;
  if (declared === undefined || declared <= max - offset) return;
  const held = offset > 0 ? ` after the ${offset} bytes the upload holds` : "";
  throw tooLarge(`content exceeds the limit of ${max} bytes: Content-Length declares ${declared} bytes${held}`);
}

export async function startUpload(deps: OciDeps, req: Request, res: Response, repository: Repository, q: URLSearchParams): Promise<void> {
  const name = repository.name;
  const mount = q.get("mount");
  if (mount !== null && (await tryMount(repository, mount, q.get("from")))) return blobCreated(res, name, mount);
  const digestParam = q.get("digest");
  if (digestParam === null) {
    const session = await repository.startUpload();
    return send(res, 202, { ...uploadHeaders(name, session.id, 0), "content-length": 0 });
  }
  // Monolithic: the whole blob in this request; a failure leaves no session behind (the client
  // never learnt of it), so a body that went silent is answered 408 and must be sent again.
  const digest = parseDigest(digestParam);
  checkDeclaredSize(deps, req, 0);
  await repository.putBlob(uploadBody(deps, req), digest, contentLength(req));
  blobCreated(res, name, digest);
}

/**
 * A cross-repository mount, when it can be done: `from` (any repository of the service) must be
 * able to read the blob; without `from`, any blob the service holds is mounted (OCI 1.1). When it
 * cannot be done (unknown repository, a name or digest that is not one, no such blob) the client
 * gets an ordinary upload session instead, as the spec and Distribution do.
 */
async function tryMount(repository: Repository, digest: string, fromName: string | null): Promise<boolean> {
  if (!isDigest(digest)) return false;
  let from: ImageName | undefined;
  if (fromName !== null) {
    try {
      from = parseImageName(fromName);
    } catch {
      return false;
    }
  }
  return repository.mountBlob(digest, from);
}

/** A chunk's declared range: its Content-Range header, and how many bytes that says the body carries. */
interface DeclaredChunk {
  header: string;
  bytes: number;
}

/**
 * Checks a chunk's Content-Range against the session's offset and the body's Content-Length;
 * returns what it declares, which the body must then carry exactly (see chunkBody).
 */
function checkChunk(req: Request, name: ImageName, session: UploadSession): DeclaredChunk | undefined {
  const value = header(req, "content-range");
  if (value === undefined) return undefined;
  const offset = session.size;
  const range = parseChunkRange(value);
  if (!range) throw outOfOrder(name, session.id, offset, `Content-Range ${JSON.stringify(value.slice(0, 80))} is not <start>-<end>`);
  if (range.start !== offset) {
    throw outOfOrder(
      name,
      session.id,
      offset,
      `chunk ${range.start}-${range.end} is out of order: the upload holds ${offset} bytes, so the next chunk starts at ${offset}`,
    );
  }
  const bytes = range.end - range.start + 1;
  const length = contentLength(req);
  if (length !== undefined && length !== bytes) {
    throw sizeMismatch(`Content-Range ${value} announces ${bytes} bytes but Content-Length is ${length}`);
  }
  return { header: value, bytes };
}

/**
 * The chunk's body; when it declared its range, held to exactly that many bytes. Without
 * Content-Length (chunked transfer encoding, or an HTTP/2 stream that gives none) only the bytes
 * can tell: more fail before the excess is stored, fewer at the end, and the append fails as a
 * whole, so the session stays at its offset and keeps none of a chunk that disagrees with its range.
 */
function chunkBody(deps: OciDeps, req: Request, declared: DeclaredChunk | undefined): AsyncIterable<Uint8Array> {
  const body = uploadBody(deps, req);
  if (declared === undefined) return body;
  return exactly(body, declared.bytes, (received) =>
    sizeMismatch(`Content-Range ${declared.header} announces ${declared.bytes} bytes but the body carries ${received === undefined ? "more" : received}`),
  );
}

/**
 * Appends the request body. An offset that moved meanwhile, or another request writing, is
 * answered like an out-of-order chunk; a body that went silent is a 408 that says where the
 * session stands (the append failed as a whole), so the client can continue from there.
 */
async function appendBody(deps: OciDeps, req: Request, repository: Repository, session: UploadSession, declared: DeclaredChunk | undefined): Promise<number> {
  try {
    return await repository.appendUpload(session, chunkBody(deps, req, declared));
  } catch (err) {
    throw await withSessionState(repository, session, err);
  }
}

/** `err`, with the session's Location and Range when the client can continue the upload after it. */
async function withSessionState(repository: Repository, session: UploadSession, err: unknown): Promise<unknown> {
  if (!isDomainError(err) || (err.reason !== "range-mismatch" && err.reason !== "body-idle")) return err;
  // A session that is gone by now is BLOB_UPLOAD_UNKNOWN instead.
  const current = await repository.getUpload(session.id);
  const name = repository.name;
  const headers = uploadHeaders(name, session.id, current.size);
  // Another writer holds the upload: its Retry-After says when that writer's claim runs out.
  if (err.reason === "range-mismatch") return ociErrorOf(err, headers);
  return ociErrorOf(
    bodyIdle(`${err.message}; the upload holds ${current.size} bytes: continue from there (GET ${headers.location} tells where it stands)`),
    headers,
  );
}

export async function patchUpload(deps: OciDeps, req: Request, res: Response, repository: Repository, uploadId: string): Promise<void> {
  const session = await repository.getUpload(uploadId);
  const declared = checkChunk(req, repository.name, session);
  checkDeclaredSize(deps, req, session.size);
  const size = await appendBody(deps, req, repository, session, declared);
  send(res, 202, { ...uploadHeaders(repository.name, session.id, size), "content-length": 0 });
}

export async function finishUpload(deps: OciDeps, req: Request, res: Response, repository: Repository, uploadId: string, q: URLSearchParams): Promise<void> {
  const session = await repository.getUpload(uploadId);
  const digestParam = q.get("digest");
  if (digestParam === null) throw digestInvalid("the digest query parameter is required to close an upload (PUT …?digest=<digest>)");
  const digest = parseDigest(digestParam);
  const declared = checkChunk(req, repository.name, session);
  checkDeclaredSize(deps, req, session.size);
  // The last chunk may come with the PUT.
  if ((contentLength(req) ?? 1) > 0) await appendBody(deps, req, repository, session, declared);
  try {
    await repository.commitUpload(session, digest);
  } catch (err) {
    throw await withSessionState(repository, session, err);
  }
  blobCreated(res, repository.name, digest);
}

export async function uploadStatus(res: Response, repository: Repository, uploadId: string): Promise<void> {
  const session = await repository.getUpload(uploadId);
  send(res, 204, { ...uploadHeaders(repository.name, session.id, session.size), "content-length": 0 });
}

export async function cancelUpload(res: Response, repository: Repository, uploadId: string): Promise<void> {
  await repository.cancelUpload(await repository.getUpload(uploadId));
  send(res, 204, { "content-length": 0 });
}
