// What a client needs to know about one upstream registry (its settings), and how every upstream
// client behaves (its limits: timeouts, retries, largest manifest), which come from src/config.ts.
// No defaults here: the settings' defaults live in src/config.ts.
import type { Credential } from "../secrets.js";

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
