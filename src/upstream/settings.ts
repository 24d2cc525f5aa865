// What a client needs to know about one upstream registry, and the defaults for what it may omit.
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
  timeouts?: Partial<UpstreamTimeouts>;
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  /** Largest manifest accepted (the OCI spec suggests registries accept at least 4 MiB). */
  maxManifestBytes?: number;
}

export const DEFAULT_TIMEOUTS: UpstreamTimeouts = { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000 };
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 200, maxDelayMs: 10_000 };
export const DEFAULT_USER_AGENT = "artifact-service";
export const DEFAULT_MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
