// A client for one upstream registry over the Docker Registry HTTP API v2 / OCI Distribution API:
// ping, manifests, blobs, tag lists and the catalog. Reads only; no database access.
// One file past 400 lines on purpose: every endpoint goes through the same request, auth-retry,
// redirect, size-limit and verification steps, and splitting it by endpoint would scatter them.
import { performance } from "node:perf_hooks";
import type { Readable } from "node:stream";
import { DomainError, invalidArgument } from "../domain/errors.js";
import { checkRepositoryName } from "../domain/names.js";
import { parseReference } from "../domain/reference.js";
import { parsePartialContentRange } from "../domain/byte-range.js";
import { parseRegistryUrl } from "../domain/registry-url.js";
import { AddressRefused, type AddressPolicy } from "./address-policy.js";
import { Authenticator } from "./auth.js";
import { parseChallenges } from "./challenge.js";
import { digestAlgorithm, digestOf, isDigest, parseDigest } from "../domain/digest.js";
import { UpstreamError, malformed, networkError, scrub, statusError, type Subject } from "./errors.js";
import { nextLink } from "./link.js";
import { NotBulk } from "./bulk.js";
import { checkManifest } from "./manifest.js";
import { bareMediaType, isSchema1, isSupportedManifestType, MANIFEST_ACCEPT } from "./media-types.js";
import type { RetryPolicy, UpstreamLimits, UpstreamSettings, UpstreamTimeouts } from "./settings.js";
import { discard, Dispatchers, forwardBody, header, readAll, send, TooLarge, withRetry, type RawResponse } from "./transport.js";

export interface PingResult {
  /** The upstream answered HTTP at all. */
  reachable: boolean;
  /** `/v2/` answered 200: the credential was accepted, or anonymous access is allowed. */
  authenticated: boolean;
  /** Status of the last `/v2/` answer (0 when there was none). */
  status: number;
  /** Time from sending the first request to its response headers (includes connecting). */
  rttMs: number;
  /** What happened, in words fit for a user (never a secret). */
  message: string;
  /** What the upstream asked for: nothing, Basic, or a Bearer token. */
  authScheme: "none" | "basic" | "bearer";
}

export interface Manifest {
  /** Digest of the bytes (the upstream's Docker-Content-Digest, checked against them). */
  digest: string;
  mediaType: string;
  size: number;
  /** Absent for HEAD. */
  bytes?: Buffer;
}

/** Inclusive byte range; `end` omitted = to the end. */
export interface BlobRange {
  start: number;
  end?: number;
}

export interface Blob {
  /** The bytes, backpressured; errors arrive as DomainErrors. Not verified: pipe through verifyDigest() for whole blobs. */
  body: Readable;
  /** 200 for the whole blob; 206 for a range (an upstream that ignores Range answers 200 with everything). */
  status: 200 | 206;
  /** Bytes in this response (Content-Length), when the upstream said. */
  size?: number;
  /** For 206: which bytes these are and the blob's total size when known. */
  contentRange?: { start: number; end: number; total?: number };
  /** Content-Type as served (registries usually say application/octet-stream). */
  mediaType?: string;
  /** Docker-Content-Digest as served, if any. */
  digest?: string;
}

export interface BlobInfo {
  size?: number;
  mediaType?: string;
  digest?: string;
}

export interface Page {
  /** Pass back as `{ next }` to read the following page; absent on the last page. Opaque. */
  next?: string;
  /** The `last` parameter of the next page's link, for callers that re-expose OCI pagination. */
  last?: string;
}

export interface TagPage extends Page {
  name: string;
  tags: string[];
}

export interface CatalogPage extends Page {
  repositories: string[];
}

export interface PageOptions {
  /** Page size asked for (the upstream may send fewer or, if it ignores `n`, more). */
  n?: number;
  /** Start after this name. */
  last?: string;
  /** Continue from a previous page's `next` (then `n` and `last` are ignored). */
  next?: string;
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** Distribution answers 400 PAGINATION_NUMBER_INVALID above this. */
const MAX_PAGE_SIZE = 1000;
const MAX_LIST_BYTES = 64 * 1024 * 1024;
const MAX_ERROR_BODY = 64 * 1024;
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRY_STATUSES = new Set([429, 502, 503, 504]);
const USER_AGENT = "artifact-service";

interface Exchange {
  method: "GET" | "HEAD";
  url: URL;
  headers?: Record<string, string>;
  scopes: string[];
  subject: Subject;
  signal?: AbortSignal;
  retry?: Partial<RetryPolicy>;
  /** Called with the time each response's headers took (ping's round trip). */
  onHeaders?: (ms: number) => void;
  /** A blob's GET: read on a connection of its own in big buffers (src/upstream/bulk.ts). */
  bulk?: boolean;
}

export type ClientOptions = {
  limits: UpstreamLimits;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /** Jitter source (tests). */
  random?: () => number;
} & (
  | {
      /** Shared connection pools (UpstreamClients passes its own, made with the same limits). */
      dispatchers: Dispatchers;
    }
  | {
      /** Which addresses the client's own connection pools may reach. */
      policy: AddressPolicy;
    }
);

const pullScope = (repository: string) => `repository:${repository}:pull`;
const CATALOG_SCOPE = "registry:catalog:*";

export class UpstreamClient {
  /** The registry root, e.g. https://registry.example.com */
  readonly origin: URL;
  /** host[:port], as named in every error message. */
  readonly host: string;
  private readonly insecure: boolean;
  private readonly timeouts: UpstreamTimeouts;
  private readonly retry: RetryPolicy;
  private readonly maxManifestBytes: number;
  private readonly dispatchers: Dispatchers;
  private readonly ownsDispatchers: boolean;
  private readonly auth: Authenticator;
  private readonly hasCredential: boolean;
  private readonly random: () => number;

  constructor(settings: UpstreamSettings, options: ClientOptions) {
    this.origin = parseRegistryUrl(settings.url, { acceptApiPath: true });
    this.host = this.origin.host;
    this.insecure = settings.insecure ?? false;
    ({ timeouts: this.timeouts, retry: this.retry, maxManifestBytes: this.maxManifestBytes } = options.limits);
    this.ownsDispatchers = !("dispatchers" in options);
    this.dispatchers = "dispatchers" in options ? options.dispatchers : new Dispatchers({ policy: options.policy, timeouts: this.timeouts });
    this.random = options.random ?? Math.random;
    this.hasCredential = settings.credential !== undefined;
    this.auth = new Authenticator({
      host: this.host,
      credential: settings.credential,
      now: options.now ?? Date.now,
      getRealm: (url, headers, signal) => this.getRealm(url, headers, signal),
    });
  }

  /** Closes the connection pools if this client owns them (not when UpstreamClients shares them). */
  async close(): Promise<void> {
    if (this.ownsDispatchers) await this.dispatchers.close();
  }

  /**
   * Does the upstream answer `/v2/`, and does it accept the credential (or anonymous access)? Never
   * throws for upstream trouble; a refusal of the address policy is not that, and is thrown.
   */
  async ping(options: CallOptions = {}): Promise<PingResult> {
    let rttMs: number | undefined;
    const started = performance.now();
    const onHeaders = (ms: number) => (rttMs ??= ms);
    const subject = { what: "the API root /v2/" };
    const rtt = () => Math.round((rttMs ?? performance.now() - started) * 10) / 10;
    try {
      const status = await this.guard(() =>
        this.exchange({ method: "GET", url: this.url("/v2/"), scopes: [], subject, signal: options.signal, retry: { attempts: 1 }, onHeaders }, async (res) => {
          await discard(res.body);
          return res.status;
        }),
      );
      const how =
        this.auth.scheme === "none"
          ? "without authentication"
          : this.hasCredential
            ? `the credential was accepted (${this.auth.scheme})`
            : `anonymous ${this.auth.scheme} access is allowed`;
      return {
        reachable: true,
        authenticated: true,
        status,
        rttMs: rtt(),
        message: `upstream ${this.host} answers the registry API; ${how}`,
        authScheme: this.auth.scheme,
      };
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      const answered = err.status !== undefined;
      const message =
        err.status === 404 ? `upstream ${this.host} answered 404 for /v2/: it does not serve the Docker Registry v2 / OCI Distribution API there` : err.message;
      return { reachable: answered, authenticated: false, status: err.status ?? 0, rttMs: rtt(), message, authScheme: this.auth.scheme };
    }
  }

  /**
   * A manifest by tag or digest. GET returns the exact bytes; HEAD only the digest, media type and
   * size (falling back to GET when the upstream's headers do not say them). The digest is always
   * checked against the bytes; for a digest reference a mismatch is data-loss.
   */
  async getManifest(repository: string, reference: string, options: CallOptions & { method?: "GET" | "HEAD" } = {}): Promise<Manifest> {
    validateRepository(repository);
    const byDigest = "digest" in parseReference(reference);
    const method = options.method ?? "GET";
    const subject: Subject = { what: `manifest ${repository}${byDigest ? "@" : ":"}${reference}`, repository, notFound: "manifest-unknown" };
    return this.guard(async () => {
      const result = await this.exchange(
        {
          method,
          url: this.url(`/v2/${repository}/manifests/${reference}`),
          headers: { accept: MANIFEST_ACCEPT },
          scopes: [pullScope(repository)],
          subject,
          signal: options.signal,
        },
        async (res) => {
          const contentType = bareMediaType(header(res.headers, "content-type"));
          const served = header(res.headers, "docker-content-digest")?.trim();
          if (isSchema1(contentType)) {
            await discard(res.body);
            throw schema1Error(this.host, subject.what);
          }
          if (method === "HEAD") {
            await discard(res.body);
            const size = Number(header(res.headers, "content-length"));
            const digest = served && isDigest(served) ? served : byDigest ? reference : undefined;
            if (!digest || !isSupportedManifestType(contentType) || !Number.isSafeInteger(size)) return undefined; // not enough said: GET it
            if (byDigest && digest !== reference) throw mismatch(this.host, subject.what, reference, digest);
            return { digest, mediaType: contentType!, size } satisfies Manifest;
          }
          let bytes: Buffer;
          try {
            bytes = await readAll(res.body, this.maxManifestBytes, header(res.headers, "content-length"));
          } catch (err) {
            if (err instanceof TooLarge) throw malformed(this.host, subject.what, `it is larger than ${this.maxManifestBytes} bytes`);
            throw err;
          }
          return this.checkManifestBytes(bytes, contentType, served, reference, subject.what);
        },
      );
      if (result) return result;
      const full = await this.getManifest(repository, reference, { signal: options.signal });
      return { digest: full.digest, mediaType: full.mediaType, size: full.size };
    });
  }

  /**
   * A blob, or a range of it, streamed. Redirects (to storage backends) are followed, without the
   * Authorization header once they leave the registry's origin. Retries happen only before the
   * first byte is handed over.
   */
  async getBlob(repository: string, digest: string, options: CallOptions & { range?: BlobRange } = {}): Promise<Blob> {
    validateRepository(repository);
    parseDigest(digest);
    const range = options.range;
    const headers: Record<string, string> = {};
    if (range) {
      validateRange(range);
      headers.range = `bytes=${range.start}-${range.end ?? ""}`;
    }
    const subject: Subject = { what: `blob ${digest} of ${repository}`, repository, notFound: "blob-unknown" };
    return this.guard(() =>
      this.exchange(
        {
          method: "GET",
          url: this.url(`/v2/${repository}/blobs/${digest}`),
          headers,
          scopes: [pullScope(repository)],
          subject,
          signal: options.signal,
          bulk: true,
        },
        async (res, url) => {
          const length = header(res.headers, "content-length");
          const blob: Blob = {
            status: res.status === 206 ? 206 : 200,
            body: forwardBody(res.body, (err) => scrub(networkError(err, url.host, subject, this.timeouts), this.auth.secrets())),
            size: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
            mediaType: header(res.headers, "content-type"),
            digest: header(res.headers, "docker-content-digest"),
          };
          if (res.status === 206) {
            const range = parsePartialContentRange(header(res.headers, "content-range"));
            if (!range) {
              blob.body.destroy();
              throw malformed(url.host, `answer for ${subject.what}`, "a 206 without a valid Content-Range");
            }
            blob.contentRange = range;
          }
          return blob;
        },
      ),
    );
  }

  /** A blob's size and what the upstream says of it, without its bytes (HEAD). */
  async headBlob(repository: string, digest: string, options: CallOptions = {}): Promise<BlobInfo> {
    validateRepository(repository);
    parseDigest(digest);
    const subject: Subject = { what: `blob ${digest} of ${repository}`, repository, notFound: "blob-unknown" };
    return this.guard(() =>
      this.exchange(
        { method: "HEAD", url: this.url(`/v2/${repository}/blobs/${digest}`), scopes: [pullScope(repository)], subject, signal: options.signal },
        async (res) => {
          await discard(res.body);
          const length = header(res.headers, "content-length");
          return {
            size: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
            mediaType: header(res.headers, "content-type"),
            digest: header(res.headers, "docker-content-digest"),
          };
        },
      ),
    );
  }

  /** One page of a repository's tags (`GET /v2/<name>/tags/list?n=&last=`). */
  async listTags(repository: string, options: PageOptions = {}): Promise<TagPage> {
    validateRepository(repository);
    const subject: Subject = { what: `the tags of ${repository}`, repository, notFound: "name-unknown" };
    const url = options.next !== undefined ? this.continuation(options.next) : this.pageUrl(`/v2/${repository}/tags/list`, options);
    return this.guard(async () => {
      const { json, page } = await this.getJsonPage(url, [pullScope(repository)], subject, options.signal);
      const body = json as { name?: unknown; tags?: unknown };
      const tags = body.tags ?? [];
      if (!isStringArray(tags)) throw malformed(this.host, `tag list of ${repository}`, "`tags` is not an array of strings");
      return { name: typeof body.name === "string" ? body.name : repository, tags, ...page };
    });
  }

  /** One page of the catalog (`GET /v2/_catalog?n=&last=`); `n` is capped at 1000. */
  async catalog(options: PageOptions = {}): Promise<CatalogPage> {
    const subject: Subject = { what: "the catalog" };
    const url = options.next !== undefined ? this.continuation(options.next) : this.pageUrl("/v2/_catalog", options);
    return this.guard(async () => {
      const { json, page } = await this.getJsonPage(url, [CATALOG_SCOPE], subject, options.signal);
      const repositories = (json as { repositories?: unknown }).repositories ?? [];
      if (!isStringArray(repositories)) throw malformed(this.host, "catalog", "`repositories` is not an array of strings");
      return { repositories, ...page };
    });
  }

  /** Every tag of a repository, following the pages. */
  async *allTags(repository: string, options: { pageSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    let page = await this.listTags(repository, { n: options.pageSize ?? MAX_PAGE_SIZE, signal: options.signal });
    const seen = new Set<string>();
    for (;;) {
      yield* page.tags;
      if (!page.next) return;
      this.checkAdvances(seen, page.next, `tag list of ${repository}`);
      page = await this.listTags(repository, { next: page.next, signal: options.signal });
    }
  }

  /** Every repository in the catalog, following the pages. */
  async *allRepositories(options: { pageSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    let page = await this.catalog({ n: options.pageSize ?? MAX_PAGE_SIZE, signal: options.signal });
    const seen = new Set<string>();
    for (;;) {
      yield* page.repositories;
      if (!page.next) return;
      this.checkAdvances(seen, page.next, "catalog");
      page = await this.catalog({ next: page.next, signal: options.signal });
    }
  }

  // ---- internals ----

  private url(path: string): URL {
    return new URL(path, this.origin);
  }

  private pageUrl(path: string, options: PageOptions): URL {
    const url = this.url(path);
    if (options.n !== undefined) {
      if (!Number.isSafeInteger(options.n) || options.n < 1) throw invalidArgument(`page size n must be a positive integer, not ${options.n}`);
      url.searchParams.set("n", String(Math.min(options.n, MAX_PAGE_SIZE)));
    }
    if (options.last !== undefined && options.last !== "") url.searchParams.set("last", options.last);
    return url;
  }

  /** A `next` token back into a URL: only a /v2/ path on this upstream. */
  private continuation(next: string): URL {
    const url = new URL(next, this.origin);
    if (url.origin !== this.origin.origin || !url.pathname.startsWith("/v2/")) {
      throw invalidArgument("page token does not belong to this upstream");
    }
    return url;
  }

  private checkAdvances(seen: Set<string>, next: string, what: string): void {
    if (seen.has(next)) throw malformed(this.host, `${what} pagination`, `the next-page link ${next.slice(0, 200)} repeats, so paging would never end`);
    seen.add(next);
  }

  private async getJsonPage(url: URL, scopes: string[], subject: Subject, signal?: AbortSignal): Promise<{ json: object; page: Page }> {
    return this.exchange({ method: "GET", url, headers: { accept: "application/json" }, scopes, subject, signal }, async (res, at) => {
      let bytes: Buffer;
      try {
        bytes = await readAll(res.body, MAX_LIST_BYTES, header(res.headers, "content-length"));
      } catch (err) {
        if (err instanceof TooLarge) throw malformed(this.host, subject.what, `it is larger than ${MAX_LIST_BYTES} bytes`);
        throw err;
      }
      let json: unknown;
      try {
        json = JSON.parse(bytes.toString("utf8"));
      } catch (err) {
        throw malformed(this.host, subject.what, `not JSON (${(err as Error).message})`);
      }
      if (typeof json !== "object" || json === null || Array.isArray(json)) throw malformed(this.host, subject.what, "not a JSON object");
      const link = nextLink(res.headers.link);
      if (link === undefined) return { json, page: {} };
      let target: URL;
      try {
        target = new URL(link, at);
      } catch {
        throw malformed(this.host, `${subject.what} pagination`, `the next-page link ${JSON.stringify(link.slice(0, 200))} is not a URL`);
      }
      if (target.origin !== this.origin.origin || !target.pathname.startsWith("/v2/")) {
        throw malformed(this.host, `${subject.what} pagination`, "the next-page link leaves the registry's /v2/ API");
      }
      const next = `${target.pathname}${target.search}`;
      return { json, page: { next, last: target.searchParams.get("last") ?? undefined } };
    });
  }

  private checkManifestBytes(bytes: Buffer, contentType: string | undefined, served: string | undefined, reference: string, what: string): Manifest {
    const byDigest = isDigest(reference);
    // Hash with the algorithm the reference (or the upstream) uses, sha256 otherwise.
    const algorithm = byDigest ? digestAlgorithm(reference) : served && isDigest(served) ? digestAlgorithm(served) : "sha256";
    const digest = digestOf(bytes, algorithm);
    if (byDigest && digest !== reference) throw mismatch(this.host, what, reference, digest);
    // The upstream's own claim must hold too (a tag's digest is what the catalog will record).
    const servedAlgorithm = served && isDigest(served) ? digestAlgorithm(served) : undefined;
    if (served && servedAlgorithm) {
      const actual = servedAlgorithm === algorithm ? digest : digestOf(bytes, servedAlgorithm);
      if (actual !== served) throw mismatch(this.host, what, served, actual);
    }
    const check = checkManifest(bytes, contentType);
    if (!check.ok) {
      if (check.schema1) throw schema1Error(this.host, what);
      throw malformed(this.host, what, check.why);
    }
    return { digest, mediaType: check.mediaType, size: bytes.length, bytes };
  }

  /** Runs `fn`; whatever it throws leaves without secrets in its message. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw scrub(err, this.auth.secrets());
    }
  }

  /**
   * One logical request: authentication (anonymous first, then per challenge, one renewal on
   * 401), redirects, status → error mapping, and retries of the whole thing (including `consume`,
   * which must not hand bytes to a caller before it returns).
   */
  private exchange<T>(req: Exchange, consume: (res: RawResponse, url: URL) => Promise<T>): Promise<T> {
    const policy = { ...this.retry, ...req.retry };
    return withRetry(policy, req.signal, () => this.attempt(req, consume), this.random);
  }

  private async attempt<T>(req: Exchange, consume: (res: RawResponse, url: URL) => Promise<T>): Promise<T> {
    let url = req.url;
    let authorization = await this.auth.upfront(req.scopes, req.signal);
    let atRegistry = true;
    let renewed = false;
    for (let hops = 0; ;) {
      const headers: Record<string, string> = { "user-agent": USER_AGENT, ...req.headers };
      if (atRegistry && authorization) headers.authorization = authorization;
      const res = await this.send(url, req, headers);
      const status = res.status;

      if (status === 401 && atRegistry && !renewed) {
        renewed = true;
        await discard(res.body);
        const next = await this.auth.renew(req.scopes, res.headers["www-authenticate"], authorization, req.signal);
        if (next !== undefined) {
          authorization = next;
          continue;
        }
        throw this.failure(status, url, req, res, undefined);
      }

      if (REDIRECTS.has(status)) {
        await discard(res.body);
        const location = header(res.headers, "location");
        if (!location) throw malformed(url.host, `answer for ${req.subject.what}`, `a ${status} redirect without a Location`);
        if (++hops > MAX_REDIRECTS) throw malformed(url.host, `answer for ${req.subject.what}`, `more than ${MAX_REDIRECTS} redirects`);
        let target: URL;
        try {
          target = new URL(location, url);
        } catch {
          throw malformed(url.host, `answer for ${req.subject.what}`, "a redirect to something that is not a URL");
        }
        if (target.protocol !== "http:" && target.protocol !== "https:")
          throw malformed(url.host, `answer for ${req.subject.what}`, `a redirect to ${target.protocol} (only http and https are followed)`);
        // Credentials are for the registry alone: never forwarded to a storage backend.
        if (target.origin !== this.origin.origin) atRegistry = false;
        url = target;
        continue;
      }

      if (status < 200 || status >= 300) {
        const body = req.method === "HEAD" ? undefined : await readAll(res.body, MAX_ERROR_BODY).catch(() => undefined);
        if (body === undefined) await discard(res.body);
        throw this.failure(status, url, req, res, body);
      }
      try {
        return await consume(res, url);
      } catch (err) {
        if (!res.body.destroyed) res.body.destroy();
        if (err instanceof DomainError) throw err;
        if (req.signal?.aborted) throw req.signal.reason ?? err;
        throw networkError(err, url.host, req.subject, this.timeouts);
      }
    }
  }

  private async send(url: URL, req: Exchange, headers: Record<string, string>): Promise<RawResponse> {
    const started = performance.now();
    try {
      const res = await this.bulkOrUndici(url, req, headers);
      req.onHeaders?.(performance.now() - started);
      return res;
    } catch (err) {
      if (req.signal?.aborted) throw req.signal.reason ?? err;
      // A refusal of the address policy is the operator's rule, not the upstream failing: kept as it is, never retried.
      if (err instanceof AddressRefused) {
        throw url.origin === this.origin.origin
          ? err
          : new AddressRefused(`${req.subject.what} from upstream ${this.host} led to ${url.origin}: ${err.message}`);
      }
      throw networkError(err, url.host, req.subject, this.timeouts);
    }
  }

  private async bulkOrUndici(url: URL, req: Exchange, headers: Record<string, string>): Promise<RawResponse> {
    if (req.bulk && req.method === "GET") {
      try {
        return await this.dispatchers.bulk(this.insecure).get(url, headers, req.signal);
      } catch (err) {
        // Not framed by Content-Length: undici reads every other kind of answer.
        if (!(err instanceof NotBulk)) throw err;
      }
    }
    return send(this.dispatchers.get(this.insecure), this.timeouts, { url, method: req.method, headers, signal: req.signal });
  }

  private failure(status: number, url: URL, req: Exchange, res: RawResponse, body: Buffer | undefined): UpstreamError {
    const challengeError = parseChallenges(res.headers["www-authenticate"]).find((c) => c.params.error)?.params.error;
    return statusError(status, url.host, req.subject, {
      body,
      hasCredential: this.hasCredential && url.origin === this.origin.origin,
      challengeError,
      retryAfter: res.headers["retry-after"],
    });
  }

  /** A token realm GET. Not retried here: it runs inside an attempt, which the caller's retry repeats. */
  private async getRealm(
    url: URL,
    headers: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<{ status: number; headers: RawResponse["headers"]; body: Buffer }> {
    const subject: Subject = { what: "a token" };
    const res = await this.send(url, { method: "GET", url, scopes: [], subject, signal }, { "user-agent": USER_AGENT, ...headers });
    if (RETRY_STATUSES.has(res.status)) {
      await discard(res.body);
      throw statusError(res.status, url.host, subject, { hasCredential: false, retryAfter: res.headers["retry-after"] });
    }
    try {
      return { status: res.status, headers: res.headers, body: await readAll(res.body, 1024 * 1024, header(res.headers, "content-length")) };
    } catch (err) {
      if (err instanceof TooLarge) throw malformed(this.host, `token response from ${url.host}`, `it is larger than ${err.limit} bytes`);
      throw networkError(err, url.host, subject, this.timeouts);
    }
  }
}

function validateRepository(repository: string): void {
  const problem = checkRepositoryName(repository);
  if (problem) throw invalidArgument(`repository ${problem}`);
}

function validateRange(range: BlobRange): void {
  const ok =
    Number.isSafeInteger(range.start) && range.start >= 0 && (range.end === undefined || (Number.isSafeInteger(range.end) && range.end >= range.start));
  if (!ok)
    throw new DomainError("invalid-argument", `byte range ${range.start}-${range.end ?? ""} is not valid (need 0 <= start <= end)`, {
      reason: "range-mismatch",
    });
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === "string");
}

function mismatch(host: string, what: string, expected: string, actual: string): UpstreamError {
  return new UpstreamError("data-loss", `upstream ${host} sent ${what} whose bytes have digest ${actual}, not ${expected}`, host, {
    reason: "digest-mismatch",
  });
}

function schema1Error(host: string, what: string): UpstreamError {
  return new UpstreamError(
    "failed-precondition",
    `upstream ${host} serves ${what} as a Docker schema 1 manifest, which is deprecated and not supported; push it again as Docker schema 2 or OCI`,
    host,
    { reason: "unsupported" },
  );
}
