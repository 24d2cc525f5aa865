// Registry authentication as Docker clients do it (distribution "token authentication" spec):
// the first request goes out anonymously; a 401 carries a WWW-Authenticate challenge, which the
// client remembers so later requests authenticate up front.
// - Basic: send the username and password.
// - Bearer: GET the challenge's realm with `service` and one `scope` per wanted access (Basic
//   credentials attached when configured, anonymous otherwise), take `token` or `access_token`,
//   and keep it per scope set until `expires_in` (default 60 s) minus a margin.
// A credential of kind "token" is a registry token: it is sent as `Authorization: Bearer <token>`
// as it is, without asking a realm (Docker's `registrytoken`; also what GitHub, GitLab and cloud
// registries hand out as pre-issued access tokens). It cannot answer a Basic challenge.
import type { Credential } from "../secrets.js";
import { parseChallenges, pickChallenge, type Challenge } from "./challenge.js";
import { UpstreamError, malformed, statusError } from "./errors.js";
import type { Headers } from "./transport.js";

interface RealmResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

export interface AuthDeps {
  /** The registry host, for messages. */
  host: string;
  credential?: Credential;
  /** GET of a token realm URL (retries and timeouts included). */
  getRealm(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<RealmResponse>;
  now(): number;
}

/** Spec: a token without `expires_in` lives 60 s. */
const DEFAULT_TOKEN_SECONDS = 60;
const MAX_MARGIN_MS = 10_000;

interface CachedToken {
  token: string;
  expiresAt: number;
}

function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly deps: AuthDeps) {}

  /** The scheme the upstream asked for ("none" until it challenged us). */
  get scheme(): "none" | "basic" | "bearer" {
    return (this.challenge?.scheme as "basic" | "bearer" | undefined) ?? "none";
  }

  /** Strings that must never appear in a message: the credential, its encodings, live tokens. */
  secrets(): string[] {
    const c = this.deps.credential;
    const out: string[] = [...[...this.tokens.values()].map((t) => t.token)];
    if (c?.kind === "basic") out.push(c.password, basicHeader(c.username, c.password).slice("Basic ".length));
    if (c?.kind === "token") out.push(c.token);
    return out;
  }

  /** Authorization to send with a first try, from what the upstream asked for before. */
  async upfront(scopes: string[], signal?: AbortSignal): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return undefined;
    return this.answer(challenge, scopes, signal);
  }

  /**
   * After a 401: learns its challenge and returns the authorization to retry with, or undefined
   * when another try cannot succeed (no usable challenge, or the same answer was just refused).
   */
  async renew(scopes: string[], wwwAuthenticate: string | string[] | undefined, sent: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const challenge = pickChallenge(parseChallenges(wwwAuthenticate));
    if (!challenge) return undefined;
    this.challenge = challenge;
    const wanted = [...new Set([...scopes, ...(challenge.params.scope ?? "").split(" ").filter(Boolean)])];
    if (sent?.startsWith("Bearer ")) this.tokens.delete(this.key(challenge, scopes));
    const next = await this.answer(challenge, scopes, signal, wanted);
    return next === sent ? undefined : next;
  }

  private key(challenge: Challenge, scopes: string[]): string {
    return JSON.stringify([challenge.params.realm ?? "", challenge.params.service ?? "", [...scopes].sort()]);
  }

  private async answer(challenge: Challenge, scopes: string[], signal: AbortSignal | undefined, wanted = scopes): Promise<string | undefined> {
    const credential = this.deps.credential;
    if (challenge.scheme === "basic") {
      if (credential?.kind === "basic") return basicHeader(credential.username, credential.password);
      if (credential?.kind === "token") {
        throw new UpstreamError(
          "unauthenticated",
          `upstream ${this.deps.host} asks for Basic authentication (a username and password), but the registry's credential is a token`,
          this.deps.host,
          { status: 401 },
        );
      }
      return undefined;
    }
    if (credential?.kind === "token") return `Bearer ${credential.token}`;
    const key = this.key(challenge, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.deps.now()) return `Bearer ${cached.token}`;
    this.tokens.delete(key);
    // One realm request per scope set, however many callers want it at once.
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(challenge, wanted, key, signal).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    return `Bearer ${await p}`;
  }

  private async fetchToken(challenge: Challenge, scopes: string[], key: string, signal: AbortSignal | undefined): Promise<string> {
    const host = this.deps.host;
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm ?? "");
      if (realm.protocol !== "https:" && realm.protocol !== "http:") throw new Error("not http(s)");
    } catch {
      throw malformed(
        host,
        "authentication challenge",
        `the Bearer realm ${JSON.stringify((challenge.params.realm ?? "").slice(0, 100))} is not an http(s) URL`,
      );
    }
    if (challenge.params.service) realm.searchParams.set("service", challenge.params.service);
    for (const s of scopes) realm.searchParams.append("scope", s);
    const credential = this.deps.credential;
    const headers: Record<string, string> = { accept: "application/json" };
    if (credential?.kind === "basic") headers.authorization = basicHeader(credential.username, credential.password);

    const service = `token service ${realm.host} of upstream ${host}`;
    let res: RealmResponse;
    try {
      res = await this.deps.getRealm(realm, headers, signal);
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      throw new UpstreamError(err.kind, `${service}: ${err.message}`, host, {
        status: err.status,
        reason: err.reason,
        retryable: err.retryable,
        retryAfterMs: err.retryAfterMs,
        cause: err,
      });
    }
    if (res.status === 401) {
      throw new UpstreamError(
        "unauthenticated",
        credential ? `${service} rejected the registry's credential` : `${service} requires credentials; set the registry's credential`,
        host,
        { status: 401 },
      );
    }
    if (res.status !== 200) {
      const err = statusError(
        res.status,
        realm.host,
        { what: `a token for ${scopes.join(" ") || "the registry"}` },
        {
          body: res.body,
          hasCredential: credential !== undefined,
        },
      );
      throw new UpstreamError(err.kind, `${err.message} (${service})`, host, { status: res.status, retryable: false });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body.toString("utf8")) as typeof body;
    } catch (err) {
      throw malformed(host, `token response from ${realm.host}`, (err as Error).message);
    }
    const token = typeof body.token === "string" && body.token ? body.token : typeof body.access_token === "string" ? body.access_token : "";
    if (!token) throw malformed(host, `token response from ${realm.host}`, "it has neither `token` nor `access_token`");
    const seconds = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    const lifetime = seconds * 1000;
    // Counted from receipt (the upstream's clock may differ), minus a margin for the trip.
    this.tokens.set(key, { token, expiresAt: this.deps.now() + lifetime - Math.min(MAX_MARGIN_MS, lifetime / 2) });
    return token;
  }
}
