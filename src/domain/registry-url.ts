// A REMOTE registry's URL: one rule for the API, which stores it, and the upstream client, which
// dials it. The registry API lives at `/v2/` under the registry's root, so the URL is the root:
// http or https, a host and an optional port, nothing that would be lost or leak (a path, a query,
// credentials: those belong in the sealed credential).
import { invalidArgument } from "./errors.js";

const MAX_REGISTRY_URL = 2048;

export interface RegistryUrlOptions {
  /** Starts every message (`registry.url` on the API). */
  field?: string;
  /**
   * Accept the API's own path (`https://host/v2/`) as the root it is under. The upstream client
   * does (a pasted API URL names the same registry); the API does not, so what it stores is
   * always the bare root and a user is told what a registry URL is.
   */
  acceptApiPath?: boolean;
}

/**
 * The registry's root, `scheme://host[:port]` (host lower-cased, default port dropped), so equal
 * strings mean the same origin. DomainError invalid-argument naming what is wrong otherwise.
 */
export function parseRegistryUrl(value: string, options: RegistryUrlOptions = {}): URL {
  const field = options.field ?? "url";
  const fail = (why: string) => invalidArgument(`${field}: ${why}`);
  if (value === "") throw fail("is required (e.g. https://registry.example.com)");
  if (value.length > MAX_REGISTRY_URL) throw fail(`must be at most ${MAX_REGISTRY_URL} characters`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail(`${JSON.stringify(value.slice(0, 200))} is not a URL (e.g. https://registry.example.com)`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw fail(`must use http or https: start it with http:// or https:// (not ${url.protocol.replace(/:$/, "")})`);
  }
  if (url.username || url.password) throw fail("must not contain a user or password; set credential instead");
  if (url.search || url.hash) throw fail("must not have a query or fragment");
  const root = options.acceptApiPath ? /^\/(v2\/?)?$/ : /^\/$/;
  if (!root.test(url.pathname)) {
    throw fail(`must be the registry's root, without a path (e.g. ${url.origin}: the API lives at /v2/ below it), not ${url.pathname.slice(0, 200)}`);
  }
  return new URL(url.origin);
}
