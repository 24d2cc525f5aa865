// src/upstream: a client for remote registries over the Docker Registry HTTP API v2 / OCI
// Distribution API. Used by the image service, sync, ping and the /v2/ pull-through proxy.
export {
  UpstreamClient,
  MAX_PAGE_SIZE,
  CATALOG_SCOPE,
  pullScope,
  type Blob,
  type BlobInfo,
  type BlobRange,
  type CallOptions,
  type CatalogPage,
  type ClientOptions,
  type Manifest,
  type Page,
  type PageOptions,
  type PingResult,
  type TagPage,
} from "./client.js";
export { UpstreamClients, type ClientKey, type UpstreamDefaults } from "./clients.js";
export { AddressPolicy, AddressRefused, ALLOW_SETTING, parseAllowedNetworks, type AllowedNetwork, type Listening } from "./address-policy.js";
export { DigestVerifier, verifyDigest, digestOf, digestAlgorithm, isDigest, type DigestAlgorithm, type VerifyOptions } from "../domain/digest.js";
export { UpstreamError } from "./errors.js";
export { parseChallenges, type Challenge } from "./challenge.js";
export { MANIFEST_ACCEPT, MANIFEST_MEDIA_TYPES } from "./media-types.js";
export { DEFAULT_RETRY, DEFAULT_TIMEOUTS, type RetryPolicy, type UpstreamSettings, type UpstreamTimeouts } from "./settings.js";
