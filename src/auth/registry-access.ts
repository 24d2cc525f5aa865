// The middleware in front of /v2/ (its hook is OciApi.authorize in src/oci/handler.ts): who
// calls (our JWT as Bearer, an API token as Bearer or as the Basic password, a user's password
// as Basic, or nobody), what the route needs (GET/HEAD → pull; POST/PUT/PATCH → pull+push;
// DELETE → delete; _catalog → registry:catalog:*), and the answer: go on, 401 UNAUTHORIZED with
// the Bearer challenge docker & co. follow to /auth/token, or 403 DENIED naming what is missing.
//
// A JWT is trusted for what it grants and never looked up again. When it lacks an action the
// policy would allow, the answer is 401 with error="insufficient_scope" (the client fetches a
// better token); when the policy would not allow it either, 403.
//
// Two answers depend on who asks beyond yes or no: the catalog lists only what the caller may
// see, and a cross-repository mount only takes blobs the caller may pull. For those requests the
// handler gets a store that knows the caller (storeFor). Writes, refusals and failed sign-ins
// are recorded in the audit log.
import type { Logger } from "pino";
import type { EventActor } from "../domain/events.js";
import { databaseUnavailable, ImmutableTagRefused } from "../domain/errors.js";
import { parseImageName } from "../domain/image-name.js";
import { OciError } from "../oci/errors.js";
import type { Request, Response } from "../oci/http.js";
import type { OciRoute } from "../oci/routes.js";
import { pickRequestId, REQUEST_ID_HEADER } from "../request-id.js";
import type { AccessStore } from "../store/access.js";
import type { AuditEvent, AuditStore, AuditTrail } from "../store/audit.js";
import type { Store } from "../store/index.js";
import type { Visibility } from "../store/listing.js";
import { type Authenticator, type Caller, type RequestInfo, trailOf } from "./authenticator.js";
import { socketAddress } from "./context.js";
import { clientCertificate } from "../http/client-certificate.js";
import type { RegistryClaims, RegistryTokens } from "./jwt.js";
import { imageResource, type Locator } from "./locate.js";
import { decide, readableScope, type Principal, type Resource } from "./policy.js";
import { allowedActions, formatScope, POLICY_ACTION, type Scope } from "./scopes.js";

export interface RegistryAccessOptions {
  authenticator: Authenticator;
  tokens: RegistryTokens;
  locate: Locator;
  access: AccessStore;
  audit: AuditStore;
  log: Logger;
  /** AUTH_SERVICE: the challenge's service, the JWT audience. */
  service: string;
  /** AUTH_TOKEN_REALM; default: the request's own origin + /auth/token. */
  realm?: string;
}

/** Who calls: a JWT's claims, or a caller that showed a token, a password or nothing. */
type Who = { kind: "jwt"; claims: RegistryClaims } | { kind: "caller"; caller: Caller };

interface RequestState {
  info: RequestInfo;
  /** The response, once begin() saw it: its close records what the request wrote (recordOnClose). */
  res?: Response;
  recording?: boolean;
  who?: Promise<Who>;
  /** Decided by authorize(), written when the response is done. */
  events: AuditEvent[];
  /** The audit trail, once the caller is known. */
  trail?: AuditTrail;
  /** A write to record when the response is done: the event without its outcome. */
  write?: AuditEvent;
  /** A tag's digest before a push moved it. */
  previousDigest?: string;
  /** Why an immutability rule refused the write (recorded as denied, naming the rule). */
  refusal?: string;
}

const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// What only a global role can decide: an action on a repository nobody else could be allowed.
const NOWHERE: Resource = { type: "missing", noun: "repository", id: "" };
const ACCESS = Symbol("registry access");

/** The /v2/ handler's dependencies with the access that guards them (read by the hook). */
export function withRegistryAccess<T extends object>(deps: T, access: RegistryAccess): T {
  return { ...deps, [ACCESS]: access };
}

/** The access that guards a /v2/ handler; without one nothing is served (fail closed). */
export function registryAccessOf(deps: object): RegistryAccess {
  const access = (deps as { [ACCESS]?: RegistryAccess })[ACCESS];
  if (!access) throw new Error("the registry API has no access control configured (withRegistryAccess)");
  return access;
}

/** Tells the access that guards a /v2/ handler how one of its requests failed (RegistryAccess.failed). */
export function registryRequestFailed(deps: object, req: Request, err: unknown): void {
  (deps as { [ACCESS]?: RegistryAccess })[ACCESS]?.failed(req, err);
}

export class RegistryAccess {
  private readonly requests = new WeakMap<Request, RequestState>();

  constructor(private readonly options: RegistryAccessOptions) {}

  /**
   * Called by the router before the /v2/ handler: settles the request id (so the handler's log,
   * its answer and the audit log agree) and records the request's audit events when it is done.
   */
  begin(req: Request, res: Response): void {
    const requestId = pickRequestId(req.headers[REQUEST_ID_HEADER]);
    req.headers[REQUEST_ID_HEADER] = requestId;
    const state: RequestState = { info: { requestId, clientAddress: socketAddress(req), certificate: clientCertificate(req) }, events: [], res };
    this.requests.set(req, state);
  }

  /**
   * Records the request's write (and anything denied on the way) once its response closes. Called
   * when authorize() finds the request is a write: a pull records nothing, and a listener on every
   * pull's response was measurable on the hot path.
   */
  private recordOnClose(state: RequestState): void {
    const res = state.res;
    if (!res || state.recording) return;
    state.recording = true;
    // "close" also comes when the client went away before an answer (then no status was sent).
    res.once("close", () => {
      if (state.events.length === 0 && state.write === undefined) return;
      const digest = res.headersSent ? res.getHeader("docker-content-digest") : undefined;
      this.flush(state, res.headersSent ? res.statusCode : 499, typeof digest === "string" ? digest : undefined).catch((err: unknown) =>
        this.options.log.warn({ err, requestId: state.info.requestId }, "could not record an audit event"),
      );
    });
  }

  /**
   * The hook's body: throws the /v2/ answer when the caller may not go on. `databaseDown`: the
   * handler's own probe; while it says so, nothing that needs the database is asked (the answer
   * is the handler's 503, at once, not a lookup that hangs).
   */
  async authorize(req: Request, route: OciRoute, databaseDown?: () => boolean): Promise<void> {
    if (route.kind !== "base" && databaseDown?.()) throw databaseUnavailable();
    const state = this.stateOf(req);
    const who = await this.identify(req, state);
    const method = req.method ?? "GET";
    if (route.kind === "base") {
      // docker sends credentials only after a challenge: an anonymous ping is always challenged.
      if (who.kind === "caller" && !who.caller.principal.account && who.caller.principal.bindings.length === 0) {
        throw this.challenge(req, "authentication required", undefined);
      }
      return;
    }
    if (route.kind === "catalog") {
      if (who.kind === "jwt" && !grants(who.claims, "registry", "catalog", ["*"])) {
        throw this.challenge(req, "the token does not grant registry:catalog:*", { type: "registry", name: "catalog", actions: ["*"] }, true);
      }
      return;
    }
    const actions = method === "GET" || method === "HEAD" ? ["pull"] : method === "DELETE" ? ["delete"] : ["pull", "push"];
    const name = route.name;
    const scope: Scope = { type: "repository", name: name.full, actions };
    // A mount reads its source: the challenge asks for pull there too, so the token the client
    // fetches lets the mount happen (as Distribution does); without it the client just uploads.
    // (Worked out only when a challenge is sent, not on every push.)
    const challenged = (): Scope[] => {
      const source = route.kind === "uploads" && method === "POST" ? mountSource(req.url) : undefined;
      return source ? [scope, { type: "repository", name: source, actions: ["pull"] }] : [scope];
    };
    const write = auditedWrite(method, route);
    if (write) {
      state.write = write;
      this.recordOnClose(state);
    }

    if (who.kind === "jwt") {
      if (grants(who.claims, "repository", name.full, actions)) return this.beforeWrite(state, route);
      // Would a new token carry it? Then the client should fetch one (401); else it is refused.
      const principal = who.claims.sub ? await this.options.authenticator.principalById(who.claims.sub) : undefined;
      const allowed = principal ? allowedActions(principal, await this.resourceOf(name)) : [];
      if (!principal?.account || actions.every((a) => allowed.includes(a))) {
        throw this.challenge(req, `the token does not grant ${formatScope(scope)}`, challenged(), true);
      }
      throw this.deny(state, `requested access to the resource is denied: needs ${missing(actions, allowed)} on ${name.full}`);
    }

    const principal = who.caller.principal;
    // A global role that allows every action decides without looking anything up.
    if (actions.every((a) => decide(principal, POLICY_ACTION[a]!, NOWHERE).allowed)) return this.beforeWrite(state, route);
    const resource = await this.resourceOf(name);
    for (const action of actions) {
      const decision = decide(principal, POLICY_ACTION[action]!, resource);
      if (decision.allowed) continue;
      if (!principal.account && principal.bindings.length === 0) {
        if (write) this.denied(state, write, decision.needs);
        throw this.challenge(req, `authentication required: ${decision.needs}`, challenged());
      }
      throw this.deny(state, `requested access to the resource is denied: ${decision.needs}`);
    }
    return this.beforeWrite(state, route);
  }

  /**
   * The handler failed: a write an immutability rule refused is recorded as denied, with the
   * refusal (which names the rule), rather than as a failure with its status.
   */
  failed(req: Request, err: unknown): void {
    const state = this.requests.get(req);
    if (state?.write && err instanceof ImmutableTagRefused) state.refusal = err.message;
  }

  /** Whether this request's answer depends on who asks beyond yes or no (the catalog, a mount): see storeFor. */
  needsOwnStore(req: Request): boolean {
    const url = req.url ?? "";
    return url === "/v2/_catalog" || url.startsWith("/v2/_catalog?") || (req.method === "POST" && /[?&]mount=/.test(url));
  }

  /**
   * The store the handler of a request that needsOwnStore() should use: one that lists, and
   * mounts from, only what the caller may see. Undefined when the caller is not known (the hook
   * then answers the failure, and no store is used).
   */
  async storeFor(req: Request, store: Store): Promise<Store | undefined> {
    let who: Who;
    try {
      who = await this.identify(req, this.stateOf(req));
    } catch {
      // authorize() answers the failure; the shared store is never reached.
      return undefined;
    }
    const principal = await this.principalOf(who);
    const visibility: Visibility | undefined = principal ? readableScope(principal) : { registries: [], namespaces: [] };
    const images = Object.create(store.images) as Store["images"];
    images.catalog = (n, after) => store.images.catalog(n, after, visibility);
    const blobs = Object.create(store.blobs) as Store["blobs"];
    blobs.mount = async (repositoryId, digest, fromRepositoryId) => {
      if (fromRepositoryId === undefined) return store.blobs.mount(repositoryId, digest, undefined, visibility);
      // A mount from a repository the caller may not pull is no mount: the client uploads.
      return (await this.mayPull(who, principal, fromRepositoryId)) ? store.blobs.mount(repositoryId, digest, fromRepositoryId) : undefined;
    };
    return { ...store, images, blobs };
  }

  private stateOf(req: Request): RequestState {
    let state = this.requests.get(req);
    if (!state) {
      state = {
        info: { requestId: pickRequestId(req.headers[REQUEST_ID_HEADER]), clientAddress: socketAddress(req), certificate: clientCertificate(req) },
        events: [],
      };
      this.requests.set(req, state);
    }
    return state;
  }

  private identify(req: Request, state: RequestState): Promise<Who> {
    state.who ??= (async (): Promise<Who> => {
      const header = req.headers.authorization;
      try {
        if (header?.slice(0, 7).toLowerCase() === "bearer ") {
          const token = header.slice(7).trim();
          if (JWT.test(token)) return { kind: "jwt", claims: await this.options.tokens.verify(token) };
        }
        const caller = await this.options.authenticator.fromHeader(header, state.info, { basic: true });
        state.trail = trailOf(caller, state.info);
        return { kind: "caller", caller };
      } catch (err) {
        const message = err instanceof Error ? err.message : "authentication failed";
        throw this.challenge(req, message, undefined);
      }
    })();
    return state.who;
  }

  private async principalOf(who: Who): Promise<Principal | undefined> {
    if (who.kind === "caller") return who.caller.principal;
    return who.claims.sub ? this.options.authenticator.principalById(who.claims.sub) : undefined;
  }

  private async mayPull(who: Who, principal: Principal | undefined, repositoryId: string): Promise<boolean> {
    const resource = await this.options.locate.repository(repositoryId);
    if (who.kind === "jwt" && resource.type === "repository") {
      return grants(who.claims, "repository", `${resource.registry.name}/${resource.namespaceName}/${resource.repository}`, ["pull"]);
    }
    return principal !== undefined && decide(principal, "read", resource).allowed;
  }

  private async resourceOf(name: { registry: string; namespace: string; repository: string }): Promise<Resource> {
    return imageResource(await this.options.access.image(name.registry, name.namespace, name.repository), name.registry, name.namespace, name.repository);
  }

  /** A push by tag: what the tag named before, so its audit event can tell a push from a move. */
  private async beforeWrite(state: RequestState, route: OciRoute): Promise<void> {
    if (state.write?.action !== "tag.push" || route.kind !== "manifest" || !("tag" in route.reference)) return;
    // A tag outside the grammar (NUL included) is refused by the handler with TAG_INVALID; it names
    // nothing to look up, and must not reach the database.
    if (route.tagProblem !== undefined) return;
    const place = await this.options.access.image(route.name.registry, route.name.namespace, route.name.repository);
    if (place?.repository) state.previousDigest = await this.options.access.tagDigest(place.repository.id, route.reference.tag);
  }

  /** Who makes this request's change or pull, for its event: the caller's account, or anonymous. */
  async actor(req: Request): Promise<EventActor> {
    const state = this.stateOf(req);
    const trail = state.trail ?? (await this.jwtTrail(state));
    return { id: trail.actorId, name: trail.actorName };
  }

  private challenge(req: Request, message: string, scope: Scope | Scope[] | undefined, insufficient = false): OciError {
    const parts = [`realm="${this.realm(req)}"`, `service="${this.options.service}"`];
    if (scope) parts.push(`scope="${[scope].flat().map(formatScope).join(" ")}"`);
    if (insufficient) parts.push(`error="insufficient_scope"`);
    return new OciError("UNAUTHORIZED", message, { "www-authenticate": `Bearer ${parts.join(",")}` });
  }

  private deny(state: RequestState, message: string): OciError {
    if (state.write) this.denied(state, state.write, message);
    return new OciError("DENIED", message);
  }

  private denied(state: RequestState, write: AuditEvent, detail: string): void {
    state.events.push({ ...write, outcome: "denied", detail });
    state.write = undefined;
  }

  /** The token endpoint's URL: AUTH_TOKEN_REALM, or this request's own origin. */
  realm(req: Request): string {
    if (this.options.realm) return this.options.realm;
    const forwarded = String(req.headers["x-forwarded-proto"] ?? "")
      .split(",")[0]!
      .trim()
      .toLowerCase();
    // Behind a proxy, what it says; else what this connection is (a TLS listener is https).
    let encrypted = false;
    try {
      encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
    } catch {
      // An HTTP/2 stream whose session is already gone: the client will not read the answer.
    }
    const proto = forwarded === "https" || forwarded === "http" ? forwarded : encrypted ? "https" : "http";
    const host = String(req.headers[":authority"] ?? req.headers.host ?? "localhost");
    // The host goes between quotes in a header: nothing that could end them.
    return `${proto}://${/^[A-Za-z0-9.:[\]_-]{1,255}$/.test(host) ? host : "localhost"}/auth/token`;
  }

  private async flush(state: RequestState, status: number, digest: string | undefined): Promise<void> {
    const events = [...state.events];
    if (state.write) {
      const write = { ...state.write, detail: digest ?? "" };
      if (write.action === "tag.push" && state.previousDigest !== undefined && state.previousDigest !== digest) {
        write.action = "tag.move";
        write.detail = `${state.previousDigest} -> ${digest}`;
      }
      if (state.refusal !== undefined) events.push({ ...write, outcome: "denied", detail: state.refusal });
      else events.push(status < 400 ? write : { ...write, outcome: "failure", detail: status === 499 ? "the client went away" : `HTTP ${status}` });
    }
    if (events.length === 0) return;
    const trail = state.trail ?? (await this.jwtTrail(state));
    for (const event of events) await this.options.audit.record(trail, event);
  }

  /** A JWT caller's trail: the subject's name is looked up (cached) only when there is something to record. */
  private async jwtTrail(state: RequestState): Promise<AuditTrail> {
    const who = await state.who?.catch(() => undefined);
    const principal = who?.kind === "jwt" && who.claims.sub ? await this.options.authenticator.principalById(who.claims.sub) : undefined;
    return {
      actorId: principal?.account?.id ?? null,
      actorName: principal?.account?.name ?? "anonymous",
      requestId: state.info.requestId,
      clientAddress: state.info.clientAddress,
    };
  }
}

function grants(claims: RegistryClaims, type: string, name: string, actions: string[]): boolean {
  const granted = new Set(claims.access.filter((a) => a.type === type && a.name === name).flatMap((a) => a.actions));
  return granted.has("*") || actions.every((a) => granted.has(a));
}

function missing(actions: string[], allowed: string[]): string {
  return actions.filter((a) => !allowed.includes(a)).join(",");
}

/** The audit event of a /v2/ write (blob uploads are recorded by the manifest push that uses them). */
function auditedWrite(method: string, route: OciRoute): AuditEvent | undefined {
  // A tag outside the grammar is refused before any write (TAG_INVALID, MANIFEST_UNKNOWN): nothing
  // happens to audit, and its text (a NUL, say) could not be stored.
  if (route.kind === "manifest" && route.tagProblem !== undefined) return undefined;
  if (route.kind === "manifest" && method === "PUT") {
    return "tag" in route.reference
      ? { action: "tag.push", resourceType: "tag", resourceName: `${route.name.full}:${route.reference.tag}` }
      : { action: "manifest.push", resourceType: "manifest", resourceName: `${route.name.full}@${route.reference.digest}` };
  }
  if (route.kind === "manifest" && method === "DELETE") {
    return "tag" in route.reference
      ? { action: "tag.delete", resourceType: "tag", resourceName: `${route.name.full}:${route.reference.tag}` }
      : { action: "manifest.delete", resourceType: "manifest", resourceName: `${route.name.full}@${route.reference.digest}` };
  }
  if (route.kind === "blob" && method === "DELETE") return { action: "blob.delete", resourceType: "blob", resourceName: `${route.name.full}@${route.digest}` };
  return undefined;
}

/** The repository a mount request reads from (`?mount=…&from=…`), when it names one that can be a scope. */
function mountSource(url: string | undefined): string | undefined {
  const query = new URLSearchParams((url ?? "").split("?")[1] ?? "");
  const from = query.get("from");
  if (query.get("mount") === null || from === null) return undefined;
  // Only an image name (nothing that could break out of the header's quotes): anything else
  // gets no mount anyway (the handler uploads).
  try {
    return parseImageName(from).full;
  } catch {
    return undefined;
  }
}
