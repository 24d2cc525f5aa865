// Image references on the command line: `<registry>/<namespace>/<repository>[:tag|@digest]`,
// the repository possibly several components (`local/team/app/web:1.0`). Only the structure is
// checked here; the server judges the names themselves (its grammar lives there, once).
import { usageError } from "./exit.js";

export interface ImageName {
  registry: string;
  namespace: string;
  /** One or more `/`-separated components. */
  repository: string;
}

export interface ImageRef extends ImageName {
  tag?: string;
  digest?: string;
}

const DIGEST = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export const isDigest = (text: string) => DIGEST.test(text);

/** `local/team/app`. */
export const imagePath = (name: ImageName) => `${name.registry}/${name.namespace}/${name.repository}`;

/** `local/team/app:1.0` or `local/team/app@sha256:…`. */
export const refText = (ref: ImageRef) => imagePath(ref) + (ref.digest ? `@${ref.digest}` : ref.tag !== undefined ? `:${ref.tag}` : "");

function splitName(text: string, what: string, min: number, max = Infinity): string[] {
  const parts = text.split("/");
  if (parts.some((p) => p === "")) throw usageError(`${what} ${JSON.stringify(text)}: empty path component`);
  if (parts[0]!.includes(".") || parts[0]!.includes(":")) {
    throw usageError(`${what} ${JSON.stringify(text)}: leave out the host; names here are <registry>/<namespace>/<repository>`);
  }
  if (parts.length < min || parts.length > max) {
    const shape = ["<registry>", "<namespace>", "<repository>"].slice(0, Math.max(min, Math.min(max, 3))).join("/");
    throw usageError(`${what} ${JSON.stringify(text)}: expected ${shape}`);
  }
  return parts;
}

/** `<registry>/<namespace>/<repository>` with no tag or digest. */
export function parseImageName(text: string, what = "image"): ImageName {
  if (text.includes("@") || text.slice(text.lastIndexOf("/") + 1).includes(":")) {
    throw usageError(`${what} ${JSON.stringify(text)}: expected <registry>/<namespace>/<repository> without a tag or digest`);
  }
  const [registry, namespace, ...repository] = splitName(text, what, 3);
  return { registry: registry!, namespace: namespace!, repository: repository.join("/") };
}

/**
 * An image with an optional tag or digest; `require` makes one of them mandatory
 * ("tag": a tag; "reference": a tag or a digest).
 */
export function parseImageRef(text: string, what = "image", require?: "tag" | "reference"): ImageRef {
  let rest = text;
  let digest: string | undefined;
  let tag: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw usageError(`${what} ${JSON.stringify(text)}: ${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`);
  }
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === "") throw usageError(`${what} ${JSON.stringify(text)}: empty tag after ":"`);
  }
  if (require === "tag" && (tag === undefined || digest !== undefined))
    throw usageError(`${what} ${JSON.stringify(text)}: expected <registry>/<namespace>/<repository>:<tag>`);
  if (require === "reference" && tag === undefined && digest === undefined) {
    throw usageError(`${what} ${JSON.stringify(text)}: add a tag (:1.0) or a digest (@sha256:…)`);
  }
  return { ...parseImageName(rest, what), tag, digest };
}

/** `<registry>` or `<registry>/<namespace>`. */
export function parseScope(text: string, what: string): { registry: string; namespace?: string } {
  const [registry, namespace] = splitName(text, what, 1, 2);
  return { registry: registry!, namespace };
}
