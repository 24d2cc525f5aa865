// The registry's bearer tokens: JWTs as Distribution's token auth defines them (docs/identity.md).
// Signed ES256 with `kid` = the key's RFC 7638 thumbprint; verified against an algorithm
// allow-list, issuer, audience (AUTH_SERVICE) and times with 60 s of leeway. A verified token is
// cached until it expires: it is never looked up again (a revoked credential stops its renewal).
import { randomUUID } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { unauthenticated } from "./authenticator.js";
import { ALGORITHM, type SigningKeys } from "./signing-keys.js";

/** One grant: `{type: "repository", name: "local/team/app", actions: ["pull", "push"]}`. */
export interface Access {
  type: string;
  name: string;
  actions: string[];
}

export interface RegistryClaims {
  /** The account's id; "" for anonymous. */
  sub: string;
  access: Access[];
  /** Expiry, epoch seconds. */
  exp: number;
}

export const CLOCK_LEEWAY_SECONDS = 60;
const CACHE_MAX = 10_000;

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: Date;
}

export class RegistryTokens {
  private readonly verified = new Map<string, RegistryClaims>();

  constructor(
    private readonly keys: SigningKeys,
    private readonly options: { issuer: string; audience: string; ttlSeconds: number },
  ) {}

  async issue(subject: string, access: Access[]): Promise<IssuedToken> {
    const { kid, key } = this.keys.signer();
    const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const seconds = issuedAt.getTime() / 1000;
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: ALGORITHM, kid, typ: "JWT" })
      .setIssuer(this.options.issuer)
      .setAudience(this.options.audience)
      .setSubject(subject)
      .setIssuedAt(seconds)
      .setNotBefore(seconds)
      .setExpirationTime(seconds + this.options.ttlSeconds)
      .setJti(randomUUID())
      .sign(key);
    return { token, expiresIn: this.options.ttlSeconds, issuedAt };
  }

  /** The claims of a token we issued and that is valid now; UNAUTHENTICATED otherwise. */
  async verify(token: string): Promise<RegistryClaims> {
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.exp + CLOCK_LEEWAY_SECONDS > Date.now() / 1000) return cached;
      this.verified.delete(token);
    }
    let payload;
    try {
      ({ payload } = await jwtVerify(token, async (header) => (await this.keys.verifier(header.kid)) ?? missingKey(), {
        algorithms: [ALGORITHM],
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: CLOCK_LEEWAY_SECONDS,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (err) {
      throw unauthenticated(`invalid registry token: ${describe(err)}`);
    }
    const claims: RegistryClaims = { sub: payload.sub ?? "", access: parseAccess(payload.access), exp: payload.exp! };
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(token, claims);
    return claims;
  }
}

function missingKey(): never {
  throw new errors.JWKSNoMatchingKey();
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "it has expired";
  if (err instanceof errors.JWTClaimValidationFailed) return `claim ${err.claim} is not valid (${err.reason})`;
  if (err instanceof errors.JOSEAlgNotAllowed) return `algorithm not allowed (only ${ALGORITHM})`;
  if (err instanceof errors.JWKSNoMatchingKey) return "signed by a key this service does not know";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "bad signature";
  return "not a token this service issued";
}

function parseAccess(value: unknown): Access[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((a: unknown) => {
    const entry = a as Partial<Access>;
    if (typeof entry?.type !== "string" || typeof entry.name !== "string" || !Array.isArray(entry.actions)) return [];
    return [{ type: entry.type, name: entry.name, actions: entry.actions.filter((x): x is string => typeof x === "string") }];
  });
}
