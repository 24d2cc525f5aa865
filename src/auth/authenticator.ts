// Who is calling: an API token (Bearer on the API, the Basic password on /v2/ and the token
// endpoint), a user's password (Basic), a robot's client certificate (mutual TLS, when no other
// credential is sent), or nobody (anonymous). A token is looked up by its hash
// and cached per process for 10 s, so a revocation, a disabled account or a changed role takes
// effect within 10 s on every replica. Failures are counted for the brute-force throttle and
// written to the audit log; no secret is ever logged or echoed.
import { createHmac, randomBytes } from "node:crypto";
import type { Logger } from "pino";
import type { ClientCertificate } from "../client-certificate.js";
import { DomainError } from "../domain/errors.js";
import type { AuditTrail } from "../store/audit.js";
import type { Store } from "../store/index.js";
import type { TokenOwner } from "../store/tokens.js";
import { verifyPassword } from "./passwords.js";
import type { Principal } from "./policy.js";
import { accountKey, addressKey, SignInThrottle } from "./throttle.js";
import { hashTokenSecret, sameHash } from "./tokens.js";

export type AuthMethod = "token" | "password" | "jwt" | "certificate" | "anonymous";

/** A caller: its principal, and how it proved who it is. */
export interface Caller {
  principal: Principal;
  via: AuthMethod;
  /** The API token presented, when one was. */
  tokenId?: string;
}

/** Where a request comes from, for the audit log and the throttle. */
export interface RequestInfo {
  requestId: string;
  clientAddress: string;
  /** The connection's client certificate, verified against TLS_CLIENT_CA_FILE (mutual TLS). */
  certificate?: ClientCertificate;
}

export interface AuthenticatorOptions {
  /** AUTH_ANONYMOUS_ADMIN: every caller is also a global admin. */
  anonymousAdmin: boolean;
  /** How long a checked token (or password) is trusted without asking the database again. */
  cacheMs?: number;
  throttle?: SignInThrottle;
}

const CACHE_MS = 10_000;
const CACHE_MAX = 10_000;
const TOUCH_EVERY_MS = 60_000;
const DEV_ADMIN = { role: "admin", scope: { kind: "global" } } as const;

export const unauthenticated = (message: string) => new DomainError("unauthenticated", message);

/** The audit trail of a caller's request (who and from where). */
export function trailOf(caller: Caller, info: RequestInfo): AuditTrail {
  return {
    actorId: caller.principal.account?.id ?? null,
    actorName: caller.principal.account?.name ?? "anonymous",
    requestId: info.requestId,
    clientAddress: info.clientAddress,
  };
}

interface Cached {
  caller: Caller;
  until: number;
}

export class Authenticator {
  readonly throttle: SignInThrottle;
  private readonly cacheMs: number;
  private readonly tokens = new Map<string, Cached>();
  // Successful password checks, keyed by an HMAC of name and password under a key of this process
  // only: a client that sends Basic credentials with every request does not pay argon2 each time.
  private readonly passwords = new Map<string, Cached>();
  private readonly passwordKey = randomBytes(32);
  private readonly subjects = new Map<string, Cached>();
  private readonly certificates = new Map<string, Cached>();
  private readonly touched = new Map<string, number>();
  // Lookups under way, by credential: a burst of requests with one credential the cache does not
  // hold yet (a client opening many connections at once) makes one lookup, not one each.
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly anonymous: Caller;

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly options: AuthenticatorOptions,
  ) {
    this.cacheMs = options.cacheMs ?? CACHE_MS;
    this.throttle = options.throttle ?? new SignInThrottle(store.throttle);
    this.anonymous = { principal: { bindings: options.anonymousAdmin ? [DEV_ADMIN] : [] }, via: "anonymous" };
  }

  /** The caller without credentials: anonymous (a global admin under AUTH_ANONYMOUS_ADMIN). */
  anonymousCaller(): Caller {
    return this.anonymous;
  }

  /**
   * An `Authorization` header's caller. `basic`: Basic credentials are accepted (the registry API
   * and the token endpoint); the API takes Bearer tokens only.
   */
  async fromHeader(header: string | undefined, info: RequestInfo, options: { basic: boolean }): Promise<Caller> {
    if (header === undefined || header === "") return info.certificate ? this.certificate(info.certificate) : this.anonymous;
    const space = header.indexOf(" ");
    const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
    const value = space < 0 ? "" : header.slice(space + 1).trim();
    if (scheme === "bearer" && value !== "") return this.token(value, info);
    if (scheme === "basic" && options.basic) {
      const credentials = parseBasic(value);
      if (!credentials) throw unauthenticated("malformed Basic credentials: expected base64 of <user>:<password or API token>");
      return this.basic(credentials.username, credentials.password, info);
    }
    throw unauthenticated(
      options.basic ? "unsupported Authorization: send Basic or Bearer credentials" : "unsupported Authorization: send `Bearer <API token>`",
    );
  }

  /** Basic credentials: an API token as the password (any user name), else the user's password. */
  async basic(username: string, password: string, info: RequestInfo): Promise<Caller> {
    // Tokens are long; a shorter password is no token and costs no lookup.
    const hash = password.length >= 32 ? hashTokenSecret(password) : undefined;
    if (hash) {
      const cached = this.cached(this.tokens, hash);
      if (cached) return cached;
      const caller = await this.once(`basic-token:${hash}`, async () => {
        const owner = await this.store.tokens.findByHash(hash);
        return owner ? this.acceptToken(owner, info, hash) : undefined;
      });
      if (caller) return caller;
    }
    return this.password(username, password, info);
  }

  /** An API token (the Bearer credential of the API). */
  async token(secret: string, info: RequestInfo): Promise<Caller> {
    const hash = hashTokenSecret(secret);
    const cached = this.cached(this.tokens, hash);
    if (cached) return cached;
    return this.once(`token:${hash}`, async () => {
      const owner = await this.store.tokens.findByHash(hash);
      if (!owner) return this.refuseToken(undefined, "unknown token", info);
      return this.acceptToken(owner, info, hash);
    });
  }

  /**
   * A verified client certificate without other credentials (mutual TLS): the CA the operator
   * named vouches for it, so a certificate whose CN is the name of a robot account signs in as that
   * robot. Users need their password or a token; a certificate naming no enabled robot is anonymous
   * (it proves a connection may be made, not who makes it).
   */
  async certificate(certificate: ClientCertificate): Promise<Caller> {
    const key = certificate.fingerprint256;
    const cached = this.cached(this.certificates, key);
    if (cached) return cached;
    return this.once(`certificate:${key}`, async () => {
      const account = certificate.commonName ? await this.store.accounts.findByName(certificate.commonName) : undefined;
      const caller: Caller =
        account && account.kind === "robot" && !account.disabled ? { principal: await this.principalOf(account), via: "certificate" } : this.anonymous;
      this.remember(this.certificates, key, caller, Math.min(Date.now() + this.cacheMs, certificate.notAfter.getTime()));
      return caller;
    });
  }

  /** A user's name and password. */
  async password(username: string, password: string, info: RequestInfo): Promise<Caller> {
    const key = createHmac("sha256", this.passwordKey).update(username).update("\0").update(password).digest("base64");
    const cached = this.cached(this.passwords, key);
    if (cached) return cached;
    return this.once(`password:${key}`, () => this.checkPassword(username, password, key, info));
  }

  private async checkPassword(username: string, password: string, key: string, info: RequestInfo): Promise<Caller> {
    const account = await this.passwordGuess(username, info, async () => {
      const account = username === "" ? undefined : await this.store.accounts.findByName(username);
      // A hash is checked whatever happens (a dummy one without an account): the time taken does not tell.
      const matches = await verifyPassword(account?.kind === "user" ? account.passwordHash : undefined, password);
      if (account && matches && !account.disabled) return { ok: account };
      const why = !account ? "no such account" : !matches ? "wrong password" : "account disabled";
      return { actor: { actorId: account?.id ?? null, actorName: username.slice(0, 128) || "(none)" }, detail: `password: ${why}` };
    });
    if (!account) throw unauthenticated("invalid user name or password");
    const caller: Caller = { principal: await this.principalOf(account), via: "password" };
    this.remember(this.passwords, key, caller);
    return caller;
  }

  /**
   * Whether `password` is the account's own (UpdateAccount's current_password). A guess like a
   * sign-in's, from someone who already holds a session (a stolen token must not make the API a
   * password oracle): the same throttle on the account's name and the address, the same audit of
   * a failure, and a success ends the account's streak as a sign-in does. Never cached.
   */
  async confirmPassword(account: { id: string; name: string; kind: "user" | "robot"; passwordHash: string | null }, password: string, info: RequestInfo) {
    const confirmed = await this.passwordGuess(account.name, info, async () =>
      (await verifyPassword(account.kind === "user" ? account.passwordHash : undefined, password))
        ? { ok: true }
        : { actor: { actorId: account.id, actorName: account.name }, detail: "current_password: wrong password" },
    );
    return confirmed === true;
  }

  /**
   * A password guess for the account named `username`, through the brute-force throttle: waits as
   * long as the account's and the address's failures in a row ask (src/auth/throttle.ts), then
   * `check`s. A failure counts for both keys and is audited as a failed sign-in; a success resets
   * the account's count (the address keeps its own). Undefined when the guess failed.
   */
  private async passwordGuess<T>(
    username: string,
    info: RequestInfo,
    check: () => Promise<{ ok: T } | { actor: Pick<AuditTrail, "actorId" | "actorName">; detail: string }>,
  ): Promise<T | undefined> {
    const keys = [accountKey(username), addressKey(info.clientAddress)];
    const waited = await this.throttle.wait(keys);
    const outcome = await check();
    if (!("ok" in outcome)) {
      await this.throttle.fail(keys);
      await this.recordFailure(outcome.actor, outcome.detail, waited, info);
      return undefined;
    }
    await this.throttle.reset(accountKey(username));
    return outcome.ok;
  }

  /** An account's principal now (its bindings read fresh). */
  async principalOf(account: { id: string; name: string; kind: "user" | "robot" }): Promise<Principal> {
    const bindings = await this.store.roleBindings.forAccount(account.id);
    return {
      account: { id: account.id, name: account.name, kind: account.kind },
      bindings: this.options.anonymousAdmin ? [...bindings, DEV_ADMIN] : bindings,
    };
  }

  /**
   * The principal of an account by id (a registry JWT's subject), cached like a token: for the few
   * /v2/ answers that need more than the JWT's grants (the catalog, a refused action). Undefined
   * when the account is gone or disabled.
   */
  async principalById(accountId: string): Promise<Principal | undefined> {
    const cached = this.cached(this.subjects, accountId);
    if (cached) return cached.principal;
    let account;
    try {
      account = await this.store.accounts.get(accountId);
    } catch (err) {
      if (err instanceof DomainError && err.kind === "not-found") return undefined;
      throw err;
    }
    if (account.disabled) return undefined;
    const caller: Caller = { principal: await this.principalOf(account), via: "jwt" };
    this.remember(this.subjects, accountId, caller);
    return caller.principal;
  }

  /** Forgets every cached caller (tests; a process that must see a change at once). */
  forget(): void {
    this.tokens.clear();
    this.passwords.clear();
    this.subjects.clear();
    this.certificates.clear();
  }

  private async acceptToken(owner: TokenOwner, info: RequestInfo, hash: string): Promise<Caller> {
    // The index found it by hash; this comparison is constant-time all the same.
    if (!sameHash(hash, owner.token.secretHash)) return this.refuseToken(owner, "unknown token", info);
    const now = Date.now();
    if (owner.token.revokeTime) return this.refuseToken(owner, "the token was revoked", info);
    if (owner.token.expireTime && owner.token.expireTime.getTime() <= now) return this.refuseToken(owner, "the token has expired", info);
    if (owner.account.disabled) return this.refuseToken(owner, "the token's account is disabled", info);
    const caller: Caller = { principal: await this.principalOf(owner.account), via: "token", tokenId: owner.token.id };
    const until = owner.token.expireTime ? Math.min(now + this.cacheMs, owner.token.expireTime.getTime()) : now + this.cacheMs;
    this.remember(this.tokens, hash, caller, until);
    this.touch(owner.token.id, now);
    return caller;
  }

  /** A token that does not work: only the failing address is slowed down (a robot's valid token never is). */
  private async refuseToken(owner: TokenOwner | undefined, why: string, info: RequestInfo): Promise<never> {
    const keys = [addressKey(info.clientAddress)];
    const waited = await this.throttle.wait(keys);
    await this.throttle.fail(keys);
    await this.recordFailure({ actorId: owner?.account.id ?? null, actorName: owner?.account.name ?? "(unknown token)" }, `token: ${why}`, waited, info);
    throw unauthenticated(owner ? why : "invalid API token");
  }

  private async recordFailure(actor: Pick<AuditTrail, "actorId" | "actorName">, detail: string, waited: number, info: RequestInfo): Promise<void> {
    await this.store.audit
      .record(
        { ...actor, requestId: info.requestId, clientAddress: info.clientAddress },
        {
          action: "auth.sign_in",
          resourceType: "account",
          resourceId: actor.actorId ?? "",
          resourceName: actor.actorName,
          outcome: "failure",
          detail: waited > 0 ? `${detail} (delayed ${waited} ms)` : detail,
        },
      )
      .catch((err: unknown) => this.log.warn({ err, requestId: info.requestId }, "could not record a failed sign-in in the audit log"));
  }

  /**
   * `load` once for all the requests that ask for `key` while it runs: they share its answer (or
   * its failure, audited once, with the first request's id and address).
   */
  private once<T>(key: string, load: () => Promise<T>): Promise<T> {
    const running = this.inFlight.get(key);
    if (running) return running as Promise<T>;
    const started = load().finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, started);
    return started;
  }

  private cached(cache: Map<string, Cached>, key: string): Caller | undefined {
    const hit = cache.get(key);
    if (!hit) return undefined;
    if (hit.until > Date.now()) return hit.caller;
    cache.delete(key);
    return undefined;
  }

  private remember(cache: Map<string, Cached>, key: string, caller: Caller, until = Date.now() + this.cacheMs): void {
    // A crude bound: callers are few; a flood of distinct valid credentials only costs lookups.
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(key, { caller, until });
  }

  /** last_use_time, at most once a minute per token from this process (the store also checks). */
  private touch(tokenId: string, now: number): void {
    if ((this.touched.get(tokenId) ?? 0) > now - TOUCH_EVERY_MS) return;
    if (this.touched.size >= CACHE_MAX) this.touched.clear();
    this.touched.set(tokenId, now);
    this.store.tokens.touch(tokenId).catch((err: unknown) => this.log.debug({ err }, "could not record a token's last use"));
  }
}

/** `user:password` from a Basic credential's base64 (the password may contain ":"). */
export function parseBasic(value: string): { username: string; password: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  const text = Buffer.from(value, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}
