// What a client needs to know about one upstream registry (its settings), and how every upstream
// client behaves (its limits: timeouts, retries, largest manifest), which come from src/config.ts.
// No defaults here: the settings' defaults live in src/config.ts.
import type { Credential } from "../secrets.js";
import { DomainError } from "../domain/errors.js";

export interface UpstreamTimeouts {
  /** TCP (and TLS) connection set-up. */
  connectMs: number;
  /** From sending a request to the end of the response headers. */
  headersMs: number;
  /** Longest pause between two chunks of a response body. */
  bodyIdleMs: number;
}

export interface RetryPolicy {
  /** Tries per request, the first included (1 = never retry). */
  attempts: number;
  /** First backoff; each later one doubles, with jitter. */
  baseDelayMs: number;
  /** Longest wait between tries; a Retry-After beyond it is not waited for. */
  maxDelayMs: number;
}

export interface UpstreamSettings {
  /** The registry's root, http or https (e.g. "https://registry.example.com"); `/v2/` is appended. */
  url: string;
  /** Skip TLS certificate verification for everything this client requests. */
  insecure?: boolean;
  /** Already opened (src/secrets.ts seals it at rest); never logged, never in an error. */
  credential?: Credential;
}

/** How every upstream client behaves: UPSTREAM_* and MANIFEST_MAX_BYTES (src/config.ts). */
export interface UpstreamLimits {
  timeouts: UpstreamTimeouts;
  retry: RetryPolicy;
  /** Largest manifest read from an upstream: the same limit a push to /v2/ has. */
  maxManifestBytes: number;
}

/**
 * The registry root as a URL with an empty path. Accepts "https://host[:port]" with an optional
 * trailing "/" or "/v2/"; refuses other paths (the API lives at the root), credentials in the URL
 * (they belong in the credential, sealed) and anything but http/https.
 */
export function parseUpstreamUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DomainError("invalid-argument", `url ${JSON.stringify(url.slice(0, 200))} is not a URL; expected e.g. https://registry.example.com`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new DomainError("invalid-argument", `url must use http or https, not ${parsed.protocol.replace(/:$/, "")}`);
  }
  if (parsed.username || parsed.password) {
    throw new DomainError("invalid-argument", "url must not contain a user name or password; set the registry's credential instead");
  }
  if (parsed.search || parsed.hash) throw new DomainError("invalid-argument", "url must not have a query or fragment");
  if (!/^\/?(v2\/?)?$/.test(parsed.pathname)) {
    throw new DomainError("invalid-argument", `url must be the registry's root (e.g. ${parsed.origin}), not a path below it (${parsed.pathname})`);
  }
  return new URL(parsed.origin);
}
