// The OCI Distribution API (v1.1) on /v2/: HOSTED registries are served from the catalog tables
// and the content store (manifests.ts, blobs.ts, uploads.ts, listings.ts), REMOTE ones through
// the pull-through proxy (proxy.ts). One middleware in front of it (authorize) is where identity
// and permissions will be decided.
import { pickRequestId } from "../request-id.js";
import type { ImageName, OciRoute, Reference } from "./routes.js";
import { parseOciPath } from "./routes.js";
import type { OciDeps } from "./deps.js";
import { badRequest, errorBody, manifestUnknown, nameUnknown, OciError, readOnly, toOciError, unsupported } from "./errors.js";
import { API_VERSION, closeAfter, send, type Headers, type Request, type Response } from "./http.js";
import { deleteManifest, putManifest, referenceText, serveManifest } from "./manifests.js";
import { deleteBlob, getBlob } from "./blobs.js";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./uploads.js";
import { catalog, listTags, referrers } from "./listings.js";
import { PullThrough } from "./proxy.js";
import type { ResolvedImage } from "../store/images.js";
import { hasControlCharacter } from "../domain/text.js";
import { databaseUnavailable } from "../domain/errors.js";
import { registryAccessOf } from "../auth/registry-access.js";

export type { OciDeps, OciLimits } from "./deps.js";

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
        if (res.destroyed || req.socket?.destroyed) {
          // The client went away (an aborted upload, a cancelled pull): nobody to answer.
          deps.log.debug({ requestId, err }, "registry client went away");
          return;
        }
        if (res.headersSent) {
          // Mid-stream: the status is gone; cutting the connection is the only honest signal left.
          deps.log.warn({ requestId, err }, "registry response cut short");
          res.destroy?.();
          return;
        }
        const { error, unexpected, logDetails } = toOciError(err, requestId);
        if (unexpected) deps.log.error({ requestId, err }, "unexpected error on /v2/");
        else if (logDetails) deps.log.warn({ requestId, ...logDetails }, error.message);
        sendError(req, res, error);
      })
      .finally(() => {
        // Successful pulls are the flood (every client, every layer): a line each at debug;
        // pushes, deletes and every failure at info.
        const pull = (req.method === "GET" || req.method === "HEAD") && res.statusCode < 400;
        deps.log[pull ? "debug" : "info"](
          {
            requestId,
            method: req.method,
            path: (req.url ?? "").split("?")[0],
            status: res.statusCode,
            ms: Math.round((performance.now() - started) * 10) / 10,
          },
          "registry request",
        );
      });
  };
}

function sendError(req: Request, res: Response, error: OciError): void {
  const body = errorBody(error);
  const headers: Headers = { ...API_VERSION, ...error.headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  if (error.status === 408) {
    // 408: the rest of the request body is not coming, so the connection cannot carry another
    // request (RFC 9110 §15.5.9: the server closes it, and says so).
    closeAfter(req, headers);
  } else if (!req.complete) {
    // Refused before its body was read (a blob that does not fit): the rest of the body is still
    // on its way. On HTTP/1.1 the connection cannot carry another request, so it closes after
    // this answer (without, the next request on it would wait behind the unread bytes for ever);
    // an HTTP/2 stream drains them instead.
    if (req.httpVersionMajor === 1) headers.connection = "close";
    else req.resume();
  }
  res.writeHead(error.status, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

type Named = Exclude<OciRoute, { kind: "base" } | { kind: "catalog" } | { kind: "referrers" }>;

class OciApi {
  private readonly proxy: PullThrough | undefined;

  constructor(private readonly deps: OciDeps) {
    this.proxy = deps.upstreams ? new PullThrough(deps, deps.upstreams) : undefined;
  }

  async serve(req: Request, res: Response): Promise<void> {
    // The path exactly as sent: never normalised, so ".." cannot lead to another repository.
    const raw = req.url ?? "/";
    const queryAt = raw.indexOf("?");
    const path = queryAt < 0 ? raw : raw.slice(0, queryAt);
    const q = new URLSearchParams(queryAt < 0 ? "" : raw.slice(queryAt + 1));
    // No parameter of this API (n, last, digest, mount, from, artifactType) has a use for them,
    // and a NUL would otherwise reach the database.
    for (const [key, value] of q) {
      if (hasControlCharacter(key) || hasControlCharacter(value)) {
        throw badRequest(`query parameter ${JSON.stringify(key.slice(0, 40))} must not contain control characters`);
      }
    }
    const route = parseOciPath(path === "/v2" || path === "/v2/" ? "" : path.slice("/v2/".length));
    if (!route) throw new OciError(404, "NAME_UNKNOWN", `no registry API at ${path.slice(0, 200)}`);
    await this.authorize(req, route);
    // Every route but the API's own ping reads the database.
    if (route.kind !== "base" && this.deps.databaseDown?.()) throw databaseUnavailable();
    const method = req.method ?? "GET";
    if (route.kind === "manifest" && route.tagProblem !== undefined) refuseTag(method, route.reference, route.tagProblem);
    switch (route.kind) {
      case "base":
        allow(method, path, ["GET", "HEAD"]);
        return send(res, 200, { "content-type": "application/json", "content-length": 2 }, method === "HEAD" ? undefined : "{}");
      case "catalog":
        allow(method, path, ["GET"]);
        return catalog(this.deps, res, q);
      case "referrers":
        allow(method, path, ["GET"]);
        return referrers(this.deps, res, route.name, route.digest, q);
    }
    if (route.kind === "manifest" && (method === "GET" || method === "HEAD")) return this.pullManifest(req, res, method, path, route, q);
    const image = await this.deps.store.images.resolve(route.name.registry, route.name.namespace, route.name.repository);
    if (!image) throw nameUnknown(route.name.full);
    if (image.registry.kind === "remote") return this.remote(req, res, method, path, route, image, q);
    return this.hosted(req, res, method, path, route, image, q);
  }

  /** The most frequent request of all: name and manifest come in one database round trip. */
  private async pullManifest(
    req: Request,
    res: Response,
    method: string,
    path: string,
    route: Extract<Named, { kind: "manifest" }>,
    q: URLSearchParams,
  ): Promise<void> {
    const { name, reference } = route;
    const found = await this.deps.store.images.resolveManifest(name.registry, name.namespace, name.repository, reference);
    if (!found) throw nameUnknown(name.full);
    if (found.image.registry.kind === "remote") return this.remote(req, res, method, path, route, found.image, q);
    if (!found.image.repositoryId) throw nameUnknown(name.full);
    if (!found.manifest) throw manifestUnknown(referenceText(reference));
    serveManifest(req, res, found.manifest);
  }

  /** The one place where identity and permissions are decided (src/auth/registry-access.ts). */
  private async authorize(req: Request, route: OciRoute): Promise<void> {
    await registryAccessOf(this.deps).authorize(req, route);
  }

  private async hosted(req: Request, res: Response, method: string, path: string, route: Named, image: ResolvedImage, q: URLSearchParams): Promise<void> {
    const deps = this.deps;
    const existing = () => {
      if (!image.repositoryId) throw nameUnknown(route.name.full);
      return image.repositoryId;
    };
    switch (route.kind) {
      case "manifest":
        // GET and HEAD are answered by pullManifest().
        if (method === "PUT") return putManifest(deps, req, res, route.name, route.reference, () => this.forPush(route.name, image));
        if (method === "DELETE") return deleteManifest(deps, res, existing(), route.reference);
        break;
      case "blob":
        if (method === "GET" || method === "HEAD") return getBlob(deps, req, res, existing(), route.digest);
        if (method === "DELETE") return deleteBlob(deps, res, route.name, existing(), route.digest);
        break;
      case "uploads":
        if (method === "POST") return startUpload(deps, req, res, route.name, await this.forPush(route.name, image), q);
        break;
      case "upload":
        if (method === "PATCH") return patchUpload(deps, req, res, route.name, existing(), route.uploadId);
        if (method === "PUT") return finishUpload(deps, req, res, route.name, existing(), route.uploadId, q);
        if (method === "GET") return uploadStatus(deps, res, route.name, existing(), route.uploadId);
        if (method === "DELETE") return cancelUpload(deps, res, existing(), route.uploadId);
        break;
      case "tags":
        allow(method, path, ["GET"]);
        return listTags(deps, res, route.name, existing(), image.tagsVersion, q);
    }
    throw notAllowed(method, path);
  }

  /** REMOTE registries are read-only here: pulls go through the proxy, everything else is UNSUPPORTED. */
  private async remote(req: Request, res: Response, method: string, path: string, route: Named, image: ResolvedImage, q: URLSearchParams): Promise<void> {
    const read = method === "GET" || method === "HEAD";
    if (route.kind === "manifest" || route.kind === "blob" || route.kind === "tags") {
      if (!read) throw readOnly(route.name.registry);
      if (route.kind === "tags" && method !== "GET") throw notAllowed(method, path);
      if (!this.proxy) throw unsupported(`registry "${route.name.registry}" is REMOTE and this server has no upstream client configured`);
      if (route.kind === "manifest") return this.proxy.manifest(req, res, route.name, image, route.reference);
      if (route.kind === "blob") return this.proxy.blob(req, res, route.name, image, route.digest);
      return this.proxy.tags(res, route.name, image, q);
    }
    throw readOnly(route.name.registry);
  }

  /** For a push: the repository, created on first push when the HOSTED registry allows it. */
  private async forPush(name: ImageName, image: ResolvedImage): Promise<string> {
    if (image.repositoryId) return image.repositoryId;
    if (!image.registry.autoCreate) throw nameUnknown(name.full);
    return this.deps.store.images.ensureRepository(image.registry, name.namespace, name.repository);
  }
}

/**
 * A reference outside the tag grammar: a push is TAG_INVALID; a pull or delete asks for a manifest
 * that cannot exist, so 404 MANIFEST_UNKNOWN (the OCI conformance suite pulls ".INVALID_MANIFEST_NAME"
 * and accepts only 404). Other methods go on to their 405.
 */
function refuseTag(method: string, reference: Reference, problem: string): void {
  if (method === "PUT") throw new OciError(400, "TAG_INVALID", `invalid tag: ${problem}`);
  if (method === "GET" || method === "HEAD" || method === "DELETE") throw manifestUnknown(referenceText(reference).slice(0, 200));
}

function allow(method: string, path: string, methods: string[]): void {
  if (!methods.includes(method)) throw notAllowed(method, path, methods);
}

function notAllowed(method: string, path: string, methods?: string[]): OciError {
  return unsupported(`${method} is not supported on ${path.slice(0, 200)}${methods ? `; use ${methods.join(" or ")}` : ""}`);
}
