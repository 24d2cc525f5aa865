// Manifest media types a client negotiates with a registry.

export const MANIFEST_MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
} as const;

/** Docker schema 1 (deprecated, signed JWS): recognised only to refuse it clearly. */
const DOCKER_SCHEMA1_MEDIA_TYPES = [
  "application/vnd.docker.distribution.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v1+prettyjws",
] as const;

const SUPPORTED = new Set<string>(Object.values(MANIFEST_MEDIA_TYPES));

/** Every kind we read, most specific first; schema 1 is not asked for. */
export const MANIFEST_ACCEPT = [
  MANIFEST_MEDIA_TYPES.ociIndex,
  MANIFEST_MEDIA_TYPES.ociManifest,
  MANIFEST_MEDIA_TYPES.dockerManifestList,
  MANIFEST_MEDIA_TYPES.dockerManifest,
].join(", ");

/** The media type without parameters, lower-cased ("application/json; charset=utf-8" → "application/json"). */
export function bareMediaType(contentType: string | undefined): string | undefined {
  const t = contentType?.split(";")[0]?.trim().toLowerCase();
  return t ? t : undefined;
}

export function isSupportedManifestType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && SUPPORTED.has(mediaType);
}

export function isSchema1(mediaType: string | undefined): boolean {
  return mediaType !== undefined && (DOCKER_SCHEMA1_MEDIA_TYPES as readonly string[]).includes(mediaType);
}
