// What a manifest says, read strictly enough to refuse garbage (MANIFEST_INVALID) and to know
// what it references, and loosely enough to keep any artifact OCI allows. The bytes themselves
// are never re-serialised: clients get exactly what was pushed.
import { manifestInvalid } from "./errors.js";
import { checkDigest, checkMediaType } from "./names.js";
import { checkStorableText } from "./text.js";

const MEDIA_TYPES = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  ociEmpty: "application/vnd.oci.empty.v1+json",
} as const;

/** Manifest media types we accept on push and ask upstreams for. */
const MANIFEST_MEDIA_TYPES: readonly string[] = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifest, MEDIA_TYPES.dockerManifestList];

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string; "os.version"?: string; "os.features"?: string[] };
}

export interface ParsedManifest {
  mediaType: string;
  /** True for an OCI index or a Docker manifest list. */
  isIndex: boolean;
  config?: Descriptor;
  layers: Descriptor[];
  /** Children of an index. */
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const invalid = (message: string) => manifestInvalid(`manifest invalid: ${message}`);

function descriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(`${where} is not a descriptor object`);
  const d = value as Record<string, unknown>;
  if (typeof d.mediaType !== "string" || checkMediaType(d.mediaType) !== undefined || d.mediaType === "") {
    throw invalid(`${where}.mediaType is missing or not a media type`);
  }
  if (typeof d.digest !== "string" || checkDigest(d.digest) !== undefined) throw invalid(`${where}.digest is missing or not a digest`);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where}.size is missing or not a size`);
  return {
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    artifactType: artifactType(d.artifactType, `${where}.artifactType`),
    annotations: annotations(d.annotations, `${where}.annotations`),
    platform: d.platform as Descriptor["platform"],
  };
}

/** An artifact type is a media type (OCI image-spec: it MUST comply with RFC 6838); "" counts as absent. */
function artifactType(value: unknown, where: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value !== "string" || checkMediaType(value) !== undefined) throw invalid(`${where} is not a media type`);
  return value;
}

function annotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "object" || Array.isArray(value) || !Object.values(value).every((v) => typeof v === "string")) {
    throw invalid(`${where} must map strings to strings`);
  }
  // Annotations are stored in PostgreSQL (jsonb), which holds neither U+0000 nor a lone surrogate
  // (JSON's \ud800 escape parses to one): what it cannot store is refused, not a 500.
  for (const [key, text] of Object.entries(value as Record<string, string>)) {
    const problem = checkStorableText(key) ?? checkStorableText(text);
    if (problem !== undefined) throw invalid(`${where} ${JSON.stringify(key.slice(0, 60))}: ${problem}`);
  }
  return value as Record<string, string>;
}

/**
 * Parses manifest bytes. `contentType` is what the client declared (Content-Type); when the
 * manifest has its own mediaType field the two must agree.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    throw invalid("not valid JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw invalid("not a JSON object");
  const m = doc as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw invalid("schemaVersion must be 2 (Docker schema 1 is not supported)");
  const declared = contentType?.split(";")[0]!.trim() || undefined;
  const own = typeof m.mediaType === "string" ? m.mediaType : undefined;
  if (declared && own && declared !== own) throw invalid(`Content-Type ${declared} differs from the manifest's mediaType ${own}`);
  const mediaType = own ?? declared ?? (Array.isArray(m.manifests) ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
  if (!MANIFEST_MEDIA_TYPES.includes(mediaType)) throw invalid(`unsupported manifest media type ${mediaType}`);

  const isIndex = INDEX_TYPES.has(mediaType);
  const list = (key: string): Descriptor[] => {
    const value = m[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw invalid(`${key} must be an array`);
    return value.map((v, i) => descriptor(v, `${key}[${i}]`));
  };
  const parsed: ParsedManifest = {
    mediaType,
    isIndex,
    layers: isIndex ? [] : list("layers"),
    manifests: isIndex ? list("manifests") : [],
    subject: m.subject === undefined ? undefined : descriptor(m.subject, "subject"),
    artifactType: artifactType(m.artifactType, "artifactType"),
    annotations: annotations(m.annotations, "annotations"),
  };
  if (!isIndex) {
    if (m.config === undefined) throw invalid("config is required in an image manifest");
    parsed.config = descriptor(m.config, "config");
  } else if (m.manifests === undefined) {
    throw invalid("manifests is required in an index");
  }
  return parsed;
}

/** The artifact type the referrers API reports: artifactType, else the config's media type. */
export function effectiveArtifactType(m: ParsedManifest): string | undefined {
  return m.artifactType ?? (m.isIndex ? undefined : m.config?.mediaType);
}
