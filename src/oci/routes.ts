// Parsing /v2/ paths: `/v2/<registry>/<namespace>/<repository...>/<action>`. The action is
// found from the end, so repositories may have components such as "manifests" or "blobs".
// Names are checked against the grammar here, before any storage access.
import { checkDigest, checkPathComponent, checkRegistryName, checkRepositoryName, checkTagName } from "../domain/names.js";
import { digestInvalid, invalidArgument, nameInvalid, uploadUnknown } from "../domain/errors.js";

// Paths are taken as the client sent them, never normalised: "..", "." and percent-encoded
// variants are not path components of the grammar, so they are refused (NAME_INVALID) instead of
// being resolved to some other repository.

export interface ImageName {
  registry: string;
  namespace: string;
  repository: string;
  /** The whole name as the client wrote it. */
  full: string;
}

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

export type Reference = { tag: string } | { digest: string };

const ACTIONS: [RegExp, (name: ImageName, arg: string) => OciRoute][] = [
  [/^(.+)\/manifests\/([^/]+)$/, manifestRoute],
  [/^(.+)\/blobs\/uploads\/?$/, (name) => ({ kind: "uploads", name })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (name, id) => ({ kind: "upload", name, uploadId: parseUploadId(id) })],
  [/^(.+)\/blobs\/([^/]+)$/, (name, digest) => ({ kind: "blob", name, digest: parseDigest(digest) })],
  [/^(.+)\/tags\/list$/, (name) => ({ kind: "tags", name })],
  [/^(.+)\/referrers\/([^/]+)$/, (name, digest) => ({ kind: "referrers", name, digest: parseDigest(digest) })],
];

/** The route for a path under /v2/ (without the "/v2/" prefix), or undefined if none fits. */
export function parseOciPath(rest: string): OciRoute | undefined {
  if (rest === "") return { kind: "base" };
  if (rest === "_catalog") return { kind: "catalog" };
  for (const [pattern, make] of ACTIONS) {
    const m = pattern.exec(rest);
    if (m) return make(parseName(m[1]!), decodeSegment(m[2] ?? ""));
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

export function parseName(full: string): ImageName {
  const parts = full.split("/");
  if (parts.length < 3) {
    throw nameInvalid(`invalid repository name "${full.slice(0, 255)}": expected <registry>/<namespace>/<repository>`);
  }
  const [registry, namespace, ...rest] = parts as [string, string, ...string[]];
  const repository = rest.join("/");
  const problem =
    (checkRegistryName(registry) && `registry "${registry.slice(0, 80)}" ${checkRegistryName(registry)}`) ||
    (checkPathComponent(namespace) && `namespace "${namespace.slice(0, 80)}" ${checkPathComponent(namespace)}`) ||
    (checkRepositoryName(repository) && `repository ${checkRepositoryName(repository)}`) ||
    (full.length > 255 && `name is ${full.length} characters; at most 255 allowed`);
  if (problem) throw nameInvalid(`invalid repository name: ${problem}`);
  return { registry, namespace, repository, full };
}

export function parseDigest(value: string): string {
  const problem = checkDigest(value);
  if (problem) throw digestInvalid(`invalid digest: ${problem}`);
  return value;
}

function manifestRoute(name: ImageName, value: string): OciRoute {
  if (value.includes(":")) return { kind: "manifest", name, reference: { digest: parseDigest(value) } };
  const problem = checkTagName(value);
  return { kind: "manifest", name, reference: { tag: value }, ...(problem ? { tagProblem: problem } : {}) };
}

function parseUploadId(value: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) {
    throw uploadUnknown(`blob upload unknown: ${value.slice(0, 80)}`);
  }
  return value;
}
