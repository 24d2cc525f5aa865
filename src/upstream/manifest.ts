// Checks that manifest bytes from an upstream are a manifest we can serve, and finds their media
// type. Only the shape is checked here (enough that later parsing cannot crash); what the
// manifest means is for the image service.
import { isSchema1, isSupportedManifestType, MANIFEST_MEDIA_TYPES } from "./media-types.js";

export type ManifestCheck = { ok: true; mediaType: string } | { ok: false; schema1: boolean; why: string };

type Json = Record<string, unknown>;

function descriptorProblem(d: unknown, where: string): string | undefined {
  if (typeof d !== "object" || d === null || Array.isArray(d)) return `${where} is not an object`;
  const o = d as Json;
  if (typeof o.digest !== "string") return `${where}.digest is not a string`;
  if (typeof o.mediaType !== "string") return `${where}.mediaType is not a string`;
  if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size < 0) return `${where}.size is not a non-negative integer`;
  return undefined;
}

function listProblem(list: unknown, where: string): string | undefined {
  if (!Array.isArray(list)) return `${where} is not an array`;
  for (let i = 0; i < list.length; i++) {
    const p = descriptorProblem(list[i], `${where}[${i}]`);
    if (p) return p;
  }
  return undefined;
}

/** `contentType` is the response's bare Content-Type (it wins when it names a manifest kind). */
export function checkManifest(bytes: Buffer, contentType: string | undefined): ManifestCheck {
  if (isSchema1(contentType)) return { ok: false, schema1: true, why: "Docker schema 1" };
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString("utf8"));
  } catch (err) {
    return { ok: false, schema1: false, why: `not JSON (${(err as Error).message})` };
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return { ok: false, schema1: false, why: "not a JSON object" };
  const m = json as Json;
  if (m.schemaVersion === 1) return { ok: false, schema1: true, why: "Docker schema 1" };
  if (m.schemaVersion !== 2) return { ok: false, schema1: false, why: `schemaVersion is ${JSON.stringify(m.schemaVersion)}, expected 2` };
  const own = typeof m.mediaType === "string" ? m.mediaType : undefined;
  const isIndex = Array.isArray(m.manifests) || own === MANIFEST_MEDIA_TYPES.ociIndex || own === MANIFEST_MEDIA_TYPES.dockerManifestList;
  const mediaType = isSupportedManifestType(contentType)
    ? contentType!
    : isSupportedManifestType(own)
      ? own!
      : isIndex
        ? MANIFEST_MEDIA_TYPES.ociIndex
        : MANIFEST_MEDIA_TYPES.ociManifest;
  const index = mediaType === MANIFEST_MEDIA_TYPES.ociIndex || mediaType === MANIFEST_MEDIA_TYPES.dockerManifestList;
  const problem = index ? listProblem(m.manifests, "manifests") : (descriptorProblem(m.config, "config") ?? listProblem(m.layers, "layers"));
  if (problem) return { ok: false, schema1: false, why: problem };
  return { ok: true, mediaType };
}
