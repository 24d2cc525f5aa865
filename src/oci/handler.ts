// The OCI Distribution API (v1.1) on /v2/: a thin adapter over the image core (src/registry),
// which serves HOSTED registries from the store and REMOTE ones through the pull-through cache.
// These files only translate the protocol: paths (routes.ts), headers and statuses (http.ts,
// manifests.ts, blobs.ts, uploads.ts, listings.ts), errors (errors.ts). One middleware in front of
// it (authorize) is where identity and permissions are decided.
import { pickRequestId } from "../request-id.js";
import { databaseUnavailable, invalidArgument, manifestUnknown, nameUnknown, tagInvalid } from "../domain/errors.js";
import { referenceText, type Reference } from "../domain/reference.js";
import { hasControlCharacter } from "../domain/text.js";
import type { OciDeps } from "./deps.js";
import { errorBody, OciError, toOciError } from "./errors.js";
import { API_VERSION, closeAfter, send, type Headers, type Request, type Response } from "./http.js";
import { deleteBlob, getBlob } from "./blobs.js";
import { catalog, listTags, referrers } from "./listings.js";
import { deleteManifest, getManifest, putManifest } from "./manifests.js";
import { parseOciPath, type OciRoute } from "./routes.js";
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from "./uploads.js";
import { registryAccessOf, registryRequestFailed } from "../auth/registry-access.js";
import { clientCertificate } from "../http/client-certificate.js";

export type { OciLimits } from "./deps.js";

/** Returns a handler for paths under /v2/ (the caller routes them here). */
export function ociHandler(deps: OciDeps): (req: Request, res: Response) => void {
  const api = new OciApi(deps);
  return (req, res) => {
    const requestId = pickRequestId(req.headers["x-request-id"]);
    const started = performance.now();
    // Read while the connection is there: the log line below is written after the response.
    const clientSubject = clientCertificate(req)?.subject;
    res.setHeader("x-request-id", requestId);
    api.serve(req, res).then(
      () => {
        if (req.method === "GET" || req.method === "HEAD") {
          // Successful pulls are the flood: a line each at debug, built only when it is written.
          if (res.statusCode < 400 && !deps.log.isLevelEnabled("debug")) return;
        }
        logRequest();
      },
      (err: unknown) => {
        if (res.destroyed || req.socket?.destroyed) {
          // The client went away (an aborted upload, a cancelled pull): nobody to answer.
          deps.log.debug({ requestId, err }, "registry client went away");
          return logRequest();
        }
        if (res.headersSent) {
          // Mid-stream: the status is gone; cutting the connection is the only honest signal left.
          deps.log.warn({ requestId, err }, "registry response cut short");
          res.destroy?.();
          return logRequest();
        }
        registryRequestFailed(deps, req, err);
        const { error, unexpected, logDetails } = toOciError(err, requestId);
        if (unexpected) deps.log.error({ requestId, err }, "unexpected error on /v2/");
        else if (logDetails) deps.log.warn({ requestId, ...logDetails }, error.message);
        sendError(req, res, error);
        logRequest();
      },
    );
    function logRequest(): void {
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
          // Mutual TLS: who the connection's verified certificate names (as on the API's call lines).
          clientSubject,
        },
        "registry request",
      );
    }
  };
}

function sendError(req: Request, res: Response, error: OciError): void {
  const body = errorBody(error);
  const headers: Headers = { ...API_VERSION, ...error.headers, "content-type": "application/json", "content-length": Buffer.byteLength(body) };
  if (error.status === 405 && headers.allow === undefined) {
    // A write the core refuses (a REMOTE repository, a blob a manifest still references): what
    // is left on the resource is reading it.
    const route = parseOciPath((req.url ?? "").split("?")[0]!.slice("/v2/".length));
    // An upload is a write whatever its method (its status too): nothing is left on it.
    const reads = route && route.kind !== "upload" && route.kind !== "uploads" ? METHODS[route.kind].filter((m) => m === "GET" || m === "HEAD") : [];
    headers.allow = reads.join(", ");
  }
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

class OciApi {
  constructor(private readonly deps: OciDeps) {}

  async serve(req: Request, res: Response): Promise<void> {
    // The path exactly as sent: never normalised, so ".." cannot lead to another repository.
    const raw = req.url ?? "/";
    const queryAt = raw.indexOf("?");
    const path = queryAt < 0 ? raw : raw.slice(0, queryAt);
    const q = new URLSearchParams(queryAt < 0 ? "" : raw.slice(queryAt + 1));
    // No parameter of this API (n, last, digest, mount, from, artifactType) has a use for them,
    // and a NUL would otherwise reach the database.
    if (queryAt >= 0) {
      for (const [key, value] of q) {
        if (hasControlCharacter(key) || hasControlCharacter(value)) {
          throw invalidArgument(`query parameter ${JSON.stringify(key.slice(0, 40))} must not contain control characters`);
        }
      }
    }
    const route = parseOciPath(path === "/v2" || path === "/v2/" ? "" : path.slice("/v2/".length));
    if (!route) throw nameUnknown(`no registry API at ${path.slice(0, 200)}`);
    await this.authorize(req, route);
    // Every route but the API's own ping reads the database.
    if (route.kind !== "base" && this.deps.databaseDown?.()) throw databaseUnavailable();
    const method = req.method ?? "GET";
    const read = method === "GET" || method === "HEAD";
    const deps = this.deps;
    switch (route.kind) {
      case "base":
        allow(method, path, METHODS.base);
        return send(res, 200, { "content-type": "application/json", "content-length": 2 }, method === "HEAD" ? undefined : "{}");
      case "catalog":
        allow(method, path, METHODS.catalog);
        return catalog(deps, res, q);
      case "referrers":
        allow(method, path, METHODS.referrers);
        return referrers(deps, res, route.name, route.digest, q);
    }
    if (route.kind === "manifest" && route.tagProblem !== undefined) refuseTag(method, route.reference, route.tagProblem);
    // A pull names its manifest with the repository: both come in one database round trip.
    const prefetch = route.kind === "manifest" && read ? { manifest: route.reference } : undefined;
    const repository = await deps.registries.repository(route.name, prefetch);
    // Who acts, for the events of a push, a delete or a pull (asked only when one is written).
    const actor = () => registryAccessOf(deps).actor(req);
    switch (route.kind) {
      case "manifest":
        if (read) return getManifest(deps, req, res, repository, route.reference, actor);
        if (method === "PUT") return putManifest(deps, req, res, repository, route.name, route.reference, actor);
        if (method === "DELETE") return deleteManifest(res, repository, route.reference, actor);
        break;
      case "blob":
        if (read) return getBlob(req, res, repository, route.digest);
        if (method === "DELETE") return deleteBlob(res, repository, route.digest);
        break;
      case "uploads":
        if (method === "POST") return startUpload(deps, req, res, repository, q);
        break;
      case "upload":
        if (method === "PATCH") return patchUpload(deps, req, res, repository, route.uploadId);
        if (method === "PUT") return finishUpload(deps, req, res, repository, route.uploadId, q);
        if (read) return uploadStatus(res, repository, route.uploadId);
        if (method === "DELETE") return cancelUpload(res, repository, route.uploadId);
        break;
      case "tags":
        allow(method, path, METHODS.tags);
        return listTags(res, repository, q);
    }
    throw notAllowed(method, path, METHODS[route.kind]);
  }

  /** The one place where identity and permissions are decided (src/auth/registry-access.ts). */
  private async authorize(req: Request, route: OciRoute): Promise<void> {
    await registryAccessOf(this.deps).authorize(req, route, this.deps.databaseDown);
  }
}

/**
 * A reference outside the tag grammar: a push is TAG_INVALID; a pull or delete asks for a manifest
 * that cannot exist, so 404 MANIFEST_UNKNOWN (the OCI conformance suite pulls ".INVALID_MANIFEST_NAME"
 * and accepts only 404). Other methods go on to their 405.
 */
function refuseTag(method: string, reference: Reference, problem: string): void {
  if (method === "PUT") throw tagInvalid(`invalid ${problem}`);
  if (method === "GET" || method === "HEAD" || method === "DELETE") throw manifestUnknown(`manifest unknown: ${referenceText(reference).slice(0, 200)}`);
}

/** The methods each route answers (the 405's Allow header). */
const METHODS: Record<OciRoute["kind"], string[]> = {
  base: ["GET", "HEAD"],
  // What answers GET answers HEAD (RFC 9110 §9.3.2): Node sends the head without the body.
  catalog: ["GET", "HEAD"],
  referrers: ["GET", "HEAD"],
  tags: ["GET", "HEAD"],
  manifest: ["GET", "HEAD", "PUT", "DELETE"],
  blob: ["GET", "HEAD", "DELETE"],
  uploads: ["POST"],
  upload: ["GET", "HEAD", "PATCH", "PUT", "DELETE"],
};

function allow(method: string, path: string, methods: string[]): void {
  if (!methods.includes(method)) throw notAllowed(method, path, methods);
}

/** 405 UNSUPPORTED with an Allow header (RFC 9110 §15.5.6): an HTTP matter, so an OCI error here at the edge. */
function notAllowed(method: string, path: string, methods: string[]) {
  return new OciError("UNSUPPORTED", `${method} is not supported on ${path.slice(0, 200)}; use ${methods.join(" or ")}`, { allow: methods.join(", ") });
}
