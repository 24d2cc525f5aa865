// Parsing /v2/ paths: `/v2/<registry>/<namespace>/<repository...>/<action>`. The action is
// found from the end, so repositories may have components such as "manifests" or "blobs".
// Names are checked against the grammar here, before any storage access.
import { invalidArgument, isDomainError, uploadUnknown } from "../domain/errors.js";
import { parseDigest } from "../domain/digest.js";
import { parseImageName, type ImageName } from "../domain/image-name.js";
import { parseReference, type Reference } from "../domain/reference.js";

// Paths are taken as the client sent them, never normalised: "..", "." and percent-encoded
// variants are not path components of the grammar, so they are refused (NAME_INVALID) instead of
// being resolved to some other repository.

export type OciRoute =
  | { kind: "base" }
  | { kind: "catalog" }
  /** tagProblem: the reference is no tag of the grammar (refused on push, unknown on reads and deletes). */
  | { kind: "manifest"; name: ImageName; reference: Reference; tagProblem?: string }
  | { kind: "blob"; name: ImageName; digest: string }
  | { kind: "uploads"; name: ImageName }
  | { kind: "upload"; name: ImageName; uploadId: string }
  | { kind: "tags"; name: ImageName }
  | { kind: "referrers"; name: ImageName; digest: string };

const ACTIONS: [RegExp, (name: ImageName, arg: string) => OciRoute][] = [
  [/^(.+)\/manifests\/([^/]+)$/, manifestRoute],
  [/^(.+)\/blobs\/uploads\/?$/, (name) => ({ kind: "uploads", name })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (name, id) => ({ kind: "upload", name, uploadId: parseUploadId(id) })],
  [/^(.+)\/blobs\/([^/]+)$/, (name, digest) => ({ kind: "blob", name, digest: parseDigest(digest) })],
  [/^(.+)\/tags\/list$/, (name) => ({ kind: "tags", name })],
  [/^(.+)\/referrers\/([^/]+)$/, (name, digest) => ({ kind: "referrers", name, digest: parseDigest(digest) })],
];

/**
 * Paths parsed lately, and their routes: a pull asks for the same few paths over and over, and the
 * grammar checks were a measurable part of a cached manifest GET. Routes are never changed once
 * made (callers only read them); a path that fails to parse is not kept.
 */
const recent = new Map<string, OciRoute>();
const RECENT_MAX = 1024;

/** The route for a path under /v2/ (without the "/v2/" prefix), or undefined if none fits. */
export function parseOciPath(rest: string): OciRoute | undefined {
  const known = recent.get(rest);
  if (known !== undefined) return known;
  const route = parseUncached(rest);
  if (route !== undefined && rest.length <= 512) {
    if (recent.size >= RECENT_MAX) recent.clear();
    recent.set(rest, route);
  }
  return route;
}

function parseUncached(rest: string): OciRoute | undefined {
  if (rest === "") return { kind: "base" };
  if (rest === "_catalog") return { kind: "catalog" };
  for (const [pattern, make] of ACTIONS) {
    const m = pattern.exec(rest);
    if (m) return make(parseImageName(m[1]!), decodeSegment(m[2] ?? ""));
  }
  return undefined;
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalidArgument(`malformed percent-encoding in ${JSON.stringify(segment.slice(0, 80))}`);
  }
}

function manifestRoute(name: ImageName, value: string): OciRoute {
  try {
    return { kind: "manifest", name, reference: parseReference(value, "tag") };
  } catch (err) {
    // Which answer a reference outside the tag grammar gets depends on the method (handler.ts).
    if (!isDomainError(err) || err.reason !== "tag-invalid") throw err;
    return { kind: "manifest", name, reference: { tag: value }, tagProblem: err.message };
  }
}

function parseUploadId(value: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) {
    throw uploadUnknown(`blob upload unknown: ${value.slice(0, 80)}`);
  }
  return value;
}
