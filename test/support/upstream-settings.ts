// How the tests' upstream clients behave: the service's own defaults (src/config.ts), loopback
// allowed (every test upstream listens there), and whatever a test shortens.
import { loadConfig, type Config } from "../../src/config.js";
import { parseAllowedNetworks } from "../../src/upstream/address-policy.js";
import type { RetryPolicy, UpstreamLimits, UpstreamTimeouts } from "../../src/upstream/settings.js";

const defaults = loadConfig({});

export interface UpstreamOverrides {
  timeouts?: Partial<UpstreamTimeouts>;
  retry?: Partial<RetryPolicy>;
}

/** Config.upstream for a test server: `allowed` as UPSTREAM_ALLOWED_NETWORKS (default loopback). */
export function testUpstream(overrides: UpstreamOverrides & { allowed?: string } = {}): Config["upstream"] {
  return {
    allowedNetworks: parseAllowedNetworks(overrides.allowed ?? "127.0.0.0/8").networks,
    timeouts: { ...defaults.upstream.timeouts, ...overrides.timeouts },
    retry: { ...defaults.upstream.retry, ...overrides.retry },
  };
}

/** Limits for an UpstreamClient a test builds itself. */
export function testUpstreamLimits(overrides: UpstreamOverrides & { maxManifestBytes?: number } = {}): UpstreamLimits {
  const { timeouts, retry } = testUpstream(overrides);
  return { timeouts, retry, maxManifestBytes: overrides.maxManifestBytes ?? defaults.registry.manifestMaxBytes };
}
