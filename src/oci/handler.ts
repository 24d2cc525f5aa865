// The OCI Distribution API (v1.1) on /v2/, for HOSTED registries: pull, push (monolithic,
// chunked, resumable, mounts), tags, referrers, deletes, and the Docker Registry API parts tools
// rely on (the /v2/ check, _catalog). One middleware in front of it (authorize) is where
// identity and permissions will be decided.
import { createHash, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { ContentDriver } from "../content/driver.js";
import { parseManifest } from "../domain/manifest.js";
import type { Store } from "../store/index.js";
import type { ResolvedImage } from "../store/images.js";
import { blobUnknown, digestInvalid, errorBody, manifestUnknown, nameUnknown, OciError, toOciError, unsupported } from "./errors.js";
import { parseDigest, parseName, parseOciPath, type ImageName, type OciRoute } from "./routes.js";

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

export interface OciLimits {
  /** Largest manifest accepted on push. */
  manifestMaxBytes: number;
  /** Largest blob accepted by one upload. */
  blobMaxBytes: number;
}

export interface OciDeps {
  store: Store;
  content: ContentDriver;
  log: Logger;
  limits: OciLimits;
}

const API_VERSION = { "docker-distribution-api-version": "registry/2.0" };
const MAX_LIST = 1000;

/** Returns a handler for paths under /v2/ (the caller routes them here). */
export function ociHandler(deps: OciDeps): (req: Request, res: Response) => void {
  const api = new OciApi(deps);
  return (req, res) => {
    const requestId = pickRequestId(req.headers["x-request-id"]);
    const started = performance.now();
    res.setHeader("x-request-id", requestId);
    api
      .serve(req, res)
      .catch((err: unknown) => {
        const { error, unexpected } = toOciError(err, requestId);
        if (unexpected) deps.log.error({ requestId, err }, "unexpected error on /v2/");
        sendError(req, res, error);
      })
      .finally(() => {
        deps.log.info(
          { requestId, method: req.method, path: (req.url ?? "").split("?")[0], status: res.statusCode, ms: Math.round((performance.now() - started) * 10) / 10 },
          "registry request",
        );
      });
  };
}

function pickRequestId(value: string | string[] | undefined): string {
  return typeof value === "string" && /^[A-Za-z0-9._:-]{1,128}$/.test(value) ? value : randomUUID();
}

function sendError(req: Request, res: Response, error: OciError): void {
  if (res.headersSent) {
    // Mid-stream: the status is gone; cutting the connection is the only honest signal left.
    res.destroy?.();
    return;
  }
  const body = errorBody(error);
  res.writeHead(error.status, { ...API_VERSION, "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

function send(res: Response, status: number, headers: Record<string, string | number>, body?: string | Uint8Array): void {
  res.writeHead(status, { ...API_VERSION, ...headers });
  if (body === undefined) res.end();
  else res.end(body);
}

class OciApi {
  constructor(private readonly deps: OciDeps) {}

  async serve(req: Request, res: Response): Promise<void> {
    const url = new URL(req.url ?? "/", "http://registry.invalid");
    const path = url.pathname;
    const rest = path === "/v2" || path === "/v2/" ? "" : path.slice("/v2/".length);
    const route = parseOciPath(rest);
    if (!route) throw new OciError(404, "NAME_UNKNOWN", `no registry API at ${path.slice(0, 200)}`);
    await this.authorize(req, route);
    const method = req.method ?? "GET";
    const q = url.searchParams;
    switch (route.kind) {
      case "base":
        return allow(method, ["GET", "HEAD"], () => send(res, 200, { "content-type": "application/json", "content-length": 2 }, method === "HEAD" ? undefined : "{}"));
      case "catalog":
        return allow(method, ["GET"], () => this.catalog(res, q));
      case "manifest":
        if (method === "GET" || method === "HEAD") return this.getManifest(req, res, route);
        if (method === "PUT") return this.putManifest(req, res, route);
        if (method === "DELETE") return this.deleteManifest(res, route);
        break;
      case "blob":
        if (method === "GET" || method === "HEAD") return this.getBlob(req, res, route);
        if (method === "DELETE") return this.deleteBlob(res, route);
        break;
      case "uploads":
        if (method === "POST") return this.startUpload(req, res, route.name, q);
        break;
      case "upload":
        if (method === "PATCH") return this.patchUpload(req, res, route);
        if (method === "PUT") return this.finishUpload(req, res, route, q);
        if (method === "GET") return this.uploadStatus(res, route);
        if (method === "DELETE") return this.cancelUpload(res, route);
        break;
      case "tags":
        return allow(method, ["GET"], () => this.listTags(res, route.name, q));
      case "referrers":
        return allow(method, ["GET"], () => this.referrers(res, route.name, route.digest, q));
    }
    throw new OciError(405, "UNSUPPORTED", `${method} is not supported on ${path.slice(0, 200)}`);
  }

  /** The one place where identity and permissions will be decided. Everyone may do everything today. */
  private async authorize(_req: Request, _route: OciRoute): Promise<void> {}

  // ---- names ---------------------------------------------------------------------------

  /** The image's registry and repository; NAME_UNKNOWN unless both exist. */
  private async existing(name: ImageName): Promise<ResolvedImage & { repositoryId: string }> {
    const image = await this.deps.store.images.resolve(name.registry, name.namespace, name.repository);
    if (!image?.repositoryId) throw nameUnknown(name.full);
    return image as ResolvedImage & { repositoryId: string };
  }

  /** For a push: the repository, created on first push when the HOSTED registry allows it. */
  private async forPush(name: ImageName): Promise<string> {
    const image = await this.deps.store.images.resolve(name.registry, name.namespace, name.repository);
    if (!image) throw nameUnknown(name.full);
    if (image.registry.kind !== "hosted") throw unsupported(`registry "${name.registry}" is REMOTE: it is read-only here`);
    if (image.repositoryId) return image.repositoryId;
    if (!image.registry.autoCreate) throw nameUnknown(name.full);
    return this.deps.store.images.ensureRepository(image.registry, name.namespace, name.repository);
  }

  // ---- manifests -------------------------------------------------------------------------

  private async getManifest(req: Request, res: Response, route: Extract<OciRoute, { kind: "manifest" }>): Promise<void> {
    const image = await this.existing(route.name);
    const manifest = await this.deps.store.images.getManifest(image.repositoryId, route.reference);
    if (!manifest) throw manifestUnknown("tag" in route.reference ? route.reference.tag : route.reference.digest);
    send(
      res,
      200,
      {
        "content-type": manifest.mediaType,
        "content-length": manifest.payload.byteLength,
        "docker-content-digest": manifest.digest,
        etag: `"${manifest.digest}"`,
      },
      req.method === "HEAD" ? undefined : manifest.payload,
    );
  }

  private async putManifest(req: Request, res: Response, route: Extract<OciRoute, { kind: "manifest" }>): Promise<void> {
    const bytes = await readLimited(req, this.deps.limits.manifestMaxBytes);
    const manifest = parseManifest(bytes, header(req, "content-type"));
    let digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if ("digest" in route.reference) {
      const algorithm = route.reference.digest.split(":")[0]!;
      if (algorithm !== "sha256") digest = `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
      if (digest !== route.reference.digest) {
        throw digestInvalid(`manifest digest ${digest} does not match the reference ${route.reference.digest}`);
      }
    }
    const repositoryId = await this.forPush(route.name);
    const pushed = await this.deps.store.images.pushManifest({
      repositoryId,
      digest,
      bytes,
      manifest,
      tag: "tag" in route.reference ? route.reference.tag : undefined,
    });
    const headers: Record<string, string | number> = {
      location: `/v2/${route.name.full}/manifests/${digest}`,
      "docker-content-digest": digest,
      "content-length": 0,
    };
    if (pushed.subjectDigest) headers["oci-subject"] = pushed.subjectDigest;
    send(res, 201, headers);
  }

  private async deleteManifest(res: Response, route: Extract<OciRoute, { kind: "manifest" }>): Promise<void> {
    const image = await this.existing(route.name);
    if (image.registry.kind !== "hosted") throw unsupported(`registry "${route.name.registry}" is REMOTE: it is read-only here`);
    const deleted =
      "digest" in route.reference
        ? await this.deps.store.images.deleteManifest(image.repositoryId, route.reference.digest)
        : await this.deps.store.images.deleteTag(image.repositoryId, route.reference.tag);
    if (!deleted) throw manifestUnknown("tag" in route.reference ? route.reference.tag : route.reference.digest);
    send(res, 202, { "content-length": 0 });
  }

  // ---- blobs -----------------------------------------------------------------------------

  private async getBlob(req: Request, res: Response, route: Extract<OciRoute, { kind: "blob" }>): Promise<void> {
    const image = await this.existing(route.name);
    const blob = await this.deps.store.blobs.find(image.repositoryId, route.digest);
    if (!blob) throw blobUnknown(route.digest);
    const headers: Record<string, string | number> = {
      "content-type": "application/octet-stream",
      "docker-content-digest": route.digest,
      etag: `"${route.digest}"`,
      "accept-ranges": "bytes",
      "cache-control": "max-age=31536000, immutable",
    };
    const range = parseRange(header(req, "range"), blob.size);
    if (range === "unsatisfiable") {
      throw new OciError(416, "UNSUPPORTED", `range ${header(req, "range")} is not satisfiable for a blob of ${blob.size} bytes`);
    }
    if (req.method === "HEAD") return send(res, 200, { ...headers, "content-length": blob.size });
    const stream = await this.deps.content.read(route.digest, range);
    if (range) {
      res.writeHead(206, { ...API_VERSION, ...headers, "content-length": range.end - range.start + 1, "content-range": `bytes ${range.start}-${range.end}/${blob.size}` });
    } else {
      res.writeHead(200, { ...API_VERSION, ...headers, "content-length": blob.size });
    }
    await pipeline(stream, res as NodeJS.WritableStream);
  }

  private async deleteBlob(res: Response, route: Extract<OciRoute, { kind: "blob" }>): Promise<void> {
    const image = await this.existing(route.name);
    if (image.registry.kind !== "hosted") throw unsupported(`registry "${route.name.registry}" is REMOTE: it is read-only here`);
    if (!(await this.deps.store.blobs.unlink(image.repositoryId, route.digest))) throw blobUnknown(route.digest);
    send(res, 202, { "content-length": 0 });
  }

  // ---- uploads ---------------------------------------------------------------------------

  private async startUpload(req: Request, res: Response, name: ImageName, q: URLSearchParams): Promise<void> {
    const repositoryId = await this.forPush(name);
    const mount = q.get("mount");
    if (mount !== null) {
      const digest = parseDigest(mount);
      const fromName = q.get("from");
      let fromRepositoryId: string | undefined;
      if (fromName !== null) {
        const from = parseName(fromName);
        fromRepositoryId = (await this.deps.store.images.resolve(from.registry, from.namespace, from.repository))?.repositoryId;
      }
      // Without `from`, any blob the service holds may be mounted (OCI 1.1).
      const mounted =
        fromName !== null && !fromRepositoryId ? undefined : await this.deps.store.blobs.mount(repositoryId, digest, fromRepositoryId);
      if (mounted) return blobCreated(res, name, digest);
      // Nothing to mount: fall through to an ordinary upload session.
    }
    const digest = q.get("digest");
    const upload = await this.deps.store.blobs.startUpload(repositoryId);
    if (digest !== null) {
      // Monolithic: the whole blob in this request.
      parseDigest(digest);
      await this.deps.store.blobs.append(upload, 0, req, this.deps.limits.blobMaxBytes);
      await this.deps.store.blobs.commit(upload, digest, contentLength(req));
      return blobCreated(res, name, digest);
    }
    await drain(req);
    send(res, 202, uploadHeaders(name, upload.id, 0));
  }

  private async patchUpload(req: Request, res: Response, route: Extract<OciRoute, { kind: "upload" }>): Promise<void> {
    const image = await this.existing(route.name);
    const upload = await this.deps.store.blobs.getUpload(image.repositoryId, route.uploadId);
    const offset = upload.sizeBytes;
    const contentRange = header(req, "content-range");
    if (contentRange !== undefined) {
      const m = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(contentRange.trim());
      if (!m || Number(m[1]) !== offset || Number(m[2]) < Number(m[1])) {
        await drain(req);
        throw new OciError(416, "BLOB_UPLOAD_INVALID", `chunk ${contentRange} does not start at the upload's offset ${offset}`, { offset });
      }
      const length = contentLength(req);
      if (length !== undefined && length !== Number(m[2]) - Number(m[1]) + 1) {
        await drain(req);
        throw new OciError(400, "BLOB_UPLOAD_INVALID", `Content-Range ${contentRange} does not match Content-Length ${length}`);
      }
    }
    const size = await this.deps.store.blobs.append(upload, offset, req, this.deps.limits.blobMaxBytes);
    send(res, 202, uploadHeaders(route.name, upload.id, size));
  }

  private async finishUpload(req: Request, res: Response, route: Extract<OciRoute, { kind: "upload" }>, q: URLSearchParams): Promise<void> {
    const image = await this.existing(route.name);
    const upload = await this.deps.store.blobs.getUpload(image.repositoryId, route.uploadId);
    const digestParam = q.get("digest");
    if (digestParam === null) {
      await drain(req);
      throw digestInvalid("the digest query parameter is required to finish an upload");
    }
    const digest = parseDigest(digestParam);
    // The last chunk may come with the PUT.
    if ((contentLength(req) ?? 1) > 0) await this.deps.store.blobs.append(upload, upload.sizeBytes, req, this.deps.limits.blobMaxBytes);
    await this.deps.store.blobs.commit(upload, digest);
    blobCreated(res, route.name, digest);
  }

  private async uploadStatus(res: Response, route: Extract<OciRoute, { kind: "upload" }>): Promise<void> {
    const image = await this.existing(route.name);
    const upload = await this.deps.store.blobs.getUpload(image.repositoryId, route.uploadId);
    send(res, 204, uploadHeaders(route.name, upload.id, upload.sizeBytes));
  }

  private async cancelUpload(res: Response, route: Extract<OciRoute, { kind: "upload" }>): Promise<void> {
    const image = await this.existing(route.name);
    const upload = await this.deps.store.blobs.getUpload(image.repositoryId, route.uploadId);
    await this.deps.store.blobs.cancel(upload);
    send(res, 204, { "content-length": 0 });
  }

  // ---- listings --------------------------------------------------------------------------

  private async listTags(res: Response, name: ImageName, q: URLSearchParams): Promise<void> {
    const image = await this.existing(name);
    const n = pageSize(q);
    const last = q.get("last") ?? undefined;
    const tags = n === 0 ? [] : await this.deps.store.images.listTagNames(image.repositoryId, n, last);
    const headers: Record<string, string | number> = { "content-type": "application/json" };
    if (q.has("n") && tags.length === n) {
      headers.link = `</v2/${name.full}/tags/list?n=${n}&last=${encodeURIComponent(tags[tags.length - 1]!)}>; rel="next"`;
    }
    send(res, 200, headers, JSON.stringify({ name: name.full, tags }));
  }

  private async catalog(res: Response, q: URLSearchParams): Promise<void> {
    const n = pageSize(q);
    const last = q.get("last");
    let after: [string, string, string] | undefined;
    if (last !== null && last !== "") {
      const name = parseName(last);
      after = [name.registry, name.namespace, name.repository];
    }
    const repositories = n === 0 ? [] : await this.deps.store.images.catalog(n, after);
    const headers: Record<string, string | number> = { "content-type": "application/json" };
    if (q.has("n") && repositories.length === n) {
      headers.link = `</v2/_catalog?n=${n}&last=${encodeURIComponent(repositories[repositories.length - 1]!)}>; rel="next"`;
    }
    send(res, 200, headers, JSON.stringify({ repositories }));
  }

  private async referrers(res: Response, name: ImageName, digest: string, q: URLSearchParams): Promise<void> {
    const image = await this.deps.store.images.resolve(name.registry, name.namespace, name.repository);
    if (!image) throw nameUnknown(name.full);
    const artifactType = q.get("artifactType") ?? undefined;
    const manifests = image.repositoryId ? await this.deps.store.images.referrers(image.repositoryId, digest, artifactType) : [];
    const headers: Record<string, string | number> = { "content-type": "application/vnd.oci.image.index.v1+json" };
    if (artifactType !== undefined) headers["oci-filters-applied"] = "artifactType";
    send(res, 200, headers, JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests }));
  }
}

// ---- helpers ----------------------------------------------------------------------------------

function allow(method: string, methods: string[], then: () => unknown): Promise<void> {
  if (!methods.includes(method)) throw new OciError(405, "UNSUPPORTED", `${method} is not supported here; use ${methods.join(" or ")}`);
  return Promise.resolve(then()).then(() => undefined);
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function contentLength(req: Request): number | undefined {
  const value = header(req, "content-length");
  return value === undefined || !/^\d+$/.test(value) ? undefined : Number(value);
}

function pageSize(q: URLSearchParams): number {
  const raw = q.get("n");
  if (raw === null || raw === "") return MAX_LIST;
  if (!/^\d+$/.test(raw)) throw new OciError(400, "UNSUPPORTED", `n must be a non-negative integer (got ${JSON.stringify(raw.slice(0, 20))})`);
  return Math.min(Number(raw), MAX_LIST);
}

function uploadHeaders(name: ImageName, uploadId: string, size: number): Record<string, string | number> {
  return {
    location: `/v2/${name.full}/blobs/uploads/${uploadId}`,
    range: `0-${Math.max(0, size - 1)}`,
    "docker-upload-uuid": uploadId,
    "content-length": 0,
  };
}

function blobCreated(res: Response, name: ImageName, digest: string): void {
  send(res, 201, { location: `/v2/${name.full}/blobs/${digest}`, "docker-content-digest": digest, "content-length": 0 });
}

/** `Range: bytes=a-b` (also `a-` and `-n`) against a blob of `size` bytes. */
function parseRange(value: string | undefined, size: number): { start: number; end: number } | undefined | "unsatisfiable" {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined; // not a single range we understand: whole blob (RFC 9110 allows ignoring)
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "unsatisfiable";
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return { start, end };
}

/** Reads a request body of at most `max` bytes (413 MANIFEST_INVALID beyond). */
async function readLimited(req: Request, max: number): Promise<Buffer> {
  const declared = contentLength(req);
  if (declared !== undefined && declared > max) {
    await drain(req);
    throw new OciError(413, "MANIFEST_INVALID", `manifest is ${declared} bytes; at most ${max} accepted`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > max) throw new OciError(413, "MANIFEST_INVALID", `manifest is over ${max} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Reads and discards a body we will not use, so the connection stays usable. */
async function drain(req: Request): Promise<void> {
  for await (const _ of req as AsyncIterable<Buffer>) {
    // discard
  }
}
