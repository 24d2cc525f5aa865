// Manifests on /v2/: pull (GET/HEAD by tag or digest, 304 for a client that has them), push, delete.
import { manifestTooLarge } from "../domain/errors.js";
import type { EventActor } from "../domain/events.js";
import type { ImageName } from "../domain/image-name.js";
import type { Reference } from "../domain/reference.js";
import type { Manifest, Repository } from "../registry/index.js";
import type { OciDeps } from "./deps.js";
import { API_VERSION, header, notModified, ONE_WRITE_MAX, readLimited, send, type Headers, type Request, type Response } from "./http.js";

export async function getManifest(
  deps: OciDeps,
  req: Request,
  res: Response,
  repository: Repository,
  reference: Reference,
  actor: () => Promise<EventActor>,
): Promise<void> {
  const manifest = await repository.getManifest(reference, { metadataOnly: req.method === "HEAD" });
  serveManifest(req, res, manifest);
  // A pull is a GET that got the bytes (HEADs and 304s are checks); recorded after the answer, when sampled.
  if (req.method === "GET" && res.statusCode === 200 && deps.pulls?.sampled()) {
    const { digest, mediaType, size } = manifest;
    deps.pulls.record({ name: repository.name, tag: "tag" in reference ? reference.tag : undefined, digest, mediaType, sizeBytes: size, actor });
  }
}

/** A manifest's 200 answer, built once per bytes: a manifest the read cache holds is the same bytes on every hit. */
interface Prepared {
  etag: string;
  headers: Headers;
  /** The bytes as a latin1 string (one write with the head on HTTP/1.1; see send()), when small enough. */
  latin1?: string;
}

const prepared = new WeakMap<Uint8Array, Prepared>();

function prepare(manifest: Manifest, bytes: Uint8Array): Prepared {
  let p = prepared.get(bytes);
  if (p === undefined || p.etag !== `"${manifest.digest}"`) {
    const etag = `"${manifest.digest}"`;
    p = {
      etag,
      headers: { ...API_VERSION, "content-type": manifest.mediaType, "content-length": manifest.size, "docker-content-digest": manifest.digest, etag },
      latin1: bytes.byteLength <= ONE_WRITE_MAX ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1") : undefined,
    };
    prepared.set(bytes, p);
  }
  return p;
}

/** A manifest's exact bytes (none for HEAD), or 304 when the client has them. */
function serveManifest(req: Request, res: Response, manifest: Manifest): void {
  const bytes = manifest.bytes;
  if (bytes === undefined) {
    // A HEAD an upstream answered without the bytes.
    const etag = `"${manifest.digest}"`;
    if (notModified(req, etag)) return send(res, 304, { "docker-content-digest": manifest.digest, etag });
    return send(res, 200, { "content-type": manifest.mediaType, "content-length": manifest.size, "docker-content-digest": manifest.digest, etag });
  }
  const p = prepare(manifest, bytes);
  if (notModified(req, p.etag)) return send(res, 304, { "docker-content-digest": manifest.digest, etag: p.etag });
  res.writeHead(200, p.headers);
  if (req.method === "HEAD") res.end();
  else if (p.latin1 !== undefined && !("stream" in res)) res.end(p.latin1, "latin1");
  else res.end(bytes);
}

export async function putManifest(
  deps: OciDeps,
  req: Request,
  res: Response,
  repository: Repository,
  name: ImageName,
  reference: Reference,
  actor: () => Promise<EventActor>,
): Promise<void> {
  const max = deps.limits.manifestMaxBytes;
  const bytes = await readLimited(req, max, (size) =>
    manifestTooLarge(`manifest invalid: it is ${size}; at most ${max} bytes are accepted (MANIFEST_MAX_BYTES)`),
  );
  const pushed = await repository.putManifest(reference, bytes, header(req, "content-type"), { actor: await actor() });
  const headers: Record<string, string | number> = {
    location: `/v2/${name.full}/manifests/${pushed.digest}`,
    "docker-content-digest": pushed.digest,
    "content-length": 0,
  };
  if (pushed.subjectDigest) headers["oci-subject"] = pushed.subjectDigest;
  send(res, 201, headers);
}

export async function deleteManifest(res: Response, repository: Repository, reference: Reference, actor: () => Promise<EventActor>): Promise<void> {
  await repository.deleteManifest(reference, { actor: await actor() });
  send(res, 202, { "content-length": 0 });
}
