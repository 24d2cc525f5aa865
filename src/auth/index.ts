// Identity and access, assembled: who calls (authenticator), the registry's JWTs and their keys,
// where resources sit (locator), the /v2/ middleware and the token endpoint. The API's
// interceptor (src/api/interceptors/auth.ts) and these share the one policy (policy.ts).
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Sealer } from "../secrets.js";
import type { Store } from "../store/index.js";
import { Authenticator } from "./authenticator.js";
import { CLOCK_LEEWAY_SECONDS, RegistryTokens } from "./jwt.js";
import { Locator } from "./locate.js";
import { RegistryAccess } from "./registry-access.js";
import { rules } from "./rules.js";
import { SigningKeys } from "./signing-keys.js";
import { SignInThrottle, type ThrottleOptions } from "./throttle.js";
import { tokenEndpoint } from "./token-endpoint.js";

export interface Auth {
  authenticator: Authenticator;
  keys: SigningKeys;
  tokens: RegistryTokens;
  locate: Locator;
  rules: typeof rules;
  registry: RegistryAccess;
  tokenEndpoint: ReturnType<typeof tokenEndpoint>;
  close(): void;
}

export interface AuthSetup {
  /** Brute-force timings (tests shorten nothing by default). */
  throttle?: ThrottleOptions;
}

export async function createAuth(store: Store, sealer: Sealer, config: Config["auth"], log: Logger, setup: AuthSetup = {}): Promise<Auth> {
  const authenticator = new Authenticator(store, log, { anonymousAdmin: config.anonymousAdmin, throttle: new SignInThrottle(store.throttle, setup.throttle) });
  // A retired key verifies as long as a token it signed can live, and the leeway on top.
  const keys = new SigningKeys(store.signingKeys, sealer, log, { verifyRetiredForMs: (config.tokenTtlSeconds + 2 * CLOCK_LEEWAY_SECONDS) * 1000 });
  await keys.start();
  const tokens = new RegistryTokens(keys, { issuer: config.service, audience: config.service, ttlSeconds: config.tokenTtlSeconds });
  const locate = new Locator(store.access);
  const registry = new RegistryAccess({
    authenticator,
    tokens,
    locate,
    access: store.access,
    audit: store.audit,
    log,
    service: config.service,
    realm: config.tokenRealm,
  });
  return {
    authenticator,
    keys,
    tokens,
    locate,
    rules,
    registry,
    tokenEndpoint: tokenEndpoint({ authenticator, tokens, locate, store, log, service: config.service }),
    close: () => keys.stop(),
  };
}
